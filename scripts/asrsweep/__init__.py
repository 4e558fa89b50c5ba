"""asrsweep: one experiment file -> a complete ASR sweep, as a Snakemake workflow.

Each step is a module with a command-line interface (`python -m asrsweep.<stage>.<step> --help`,
e.g. `python -m asrsweep.acoustic.train --help`).
"""

__version__ = "0.1.0"
