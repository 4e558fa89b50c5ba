"""Run folders, summaries, the report, and the collect/status commands."""
