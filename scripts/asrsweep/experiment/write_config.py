"""Write a resolved config the workflow computed: `python -m asrsweep.experiment.write_config --json '{...}' --out results/demo/train/<key>/config.json`.

`.json` outputs are written as JSON (a step's `--config`), `.yaml` outputs as YAML (a run's
resolved config, for people). The text comes in as a flag so that the file is a pure function
of the command, which snakemake keeps with the job.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asrsweep.core.common import UserError, cli_main, write_json_atomic, write_text_atomic
from asrsweep.experiment.configio import dump_yaml


def run(argv: list[str] | None = None) -> None:
    """Write `--json` to `--out` (JSON or YAML by the suffix), atomically."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.experiment.write_config", description=run.__doc__)
    parser.add_argument("--json", required=True, help="the config as JSON text")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.json)
    except json.JSONDecodeError as err:
        raise UserError(f"--json: not valid JSON ({err.msg})") from None
    if args.out.suffix in (".yaml", ".yml"):
        write_text_atomic(args.out, dump_yaml(config))
    else:
        write_json_atomic(args.out, config)



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
