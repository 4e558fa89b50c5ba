"""Experiment files: loading, expansion into runs, validation, the workflow index, plan and explain."""
