"""python -m asrsweep.experiment.write_config --experiment config/experiments/demo.yaml --stage train --key <key> --out results/demo/train/<key>/config.json

Write the `--config` file of one stage job: the part of the resolved config that the stage
reads (`sweep.stage_config`), for the runs whose `<stage>` folder is `<key>`. The job computes
it from the experiment file itself, so its shell command stays one short line (a failed job
prints its command; an inline config blob made that unreadable).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asrsweep.core.common import UserError, cli_main, write_json_atomic
from asrsweep.core.stages import BY_NAME
from asrsweep.experiment.sweep import load_experiment, stage_config


def config_of(experiment: str, stage: str, key: str) -> dict:
    """The stage config of the runs of `experiment` whose `stage` key is `key`."""
    if stage not in BY_NAME:
        raise UserError(f"--stage {stage}: unknown; use one of {', '.join(BY_NAME)}")
    for candidate in load_experiment(experiment).runs:
        if candidate.keys[stage] == key:
            return stage_config(candidate.config, stage)
    raise UserError(f"{experiment}: no run has {stage} key {key}: the experiment file (or a file "
                    f"it names) changed after the workflow was planned; run snakemake again")


def run(argv: list[str] | None = None) -> None:
    """Write the stage config of `--stage`/`--key` to `--out`, atomically."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.experiment.write_config", description=run.__doc__)
    parser.add_argument("--experiment", required=True, help="the experiment file")
    parser.add_argument("--stage", required=True, help="the stage (core.stages)")
    parser.add_argument("--key", required=True, help="the stage folder's key")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    write_json_atomic(args.out, config_of(args.experiment, args.stage, args.key))


def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
