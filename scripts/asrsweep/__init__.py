"""asrsweep: one experiment file -> a complete ASR sweep, as a Snakemake workflow.

Each step is a module with a command-line interface (`python -m asrsweep.<step> --help`).
"""

__version__ = "0.1.0"
