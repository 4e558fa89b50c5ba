"""The small shared core every stage uses: errors and the CLI entry, atomic files, the CTC
vocabulary, the checkpointer."""
