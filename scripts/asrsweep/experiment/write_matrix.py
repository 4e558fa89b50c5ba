"""python -m asrsweep.experiment.write_matrix config/experiments/demo.yaml [--out R/E/matrix.tsv]

The run matrix of an experiment as TSV: one line per run, its id and the value of every varied
key (written by rule `write_matrix`; printed when --out is not given).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asrsweep.core.common import cli_main, write_text_atomic
from asrsweep.experiment.sweep import Experiment, format_value, load_experiment


def matrix_tsv(exp: Experiment) -> str:
    """`matrix.tsv`: one line per run, its id and the value of every varied key."""
    columns = list(dict.fromkeys(k for run in exp.runs for k in run.values))
    lines = ["\t".join(["run", *columns])]
    for run in exp.runs:
        lines.append("\t".join([run.run_id, *(format_value(run.values.get(c, "")) for c in columns)]))
    return "\n".join(lines) + "\n"


def run(argv: list[str] | None = None) -> None:
    """Print (or write) the run matrix of an experiment as TSV: run id, then the varied values."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.experiment.write_matrix", description=run.__doc__)
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--out", type=Path, help="write matrix.tsv here instead of stdout")
    args = parser.parse_args(argv)
    table = matrix_tsv(load_experiment(args.experiment))
    if args.out:
        write_text_atomic(args.out, table)
    else:
        print(table, end="")


def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
