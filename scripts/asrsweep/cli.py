"""The `asrsweep` command: `asrsweep plan|explain|collect|status <experiment.yaml>`.

Each subcommand is a module of its own (`python -m asrsweep.experiment.plan E.yaml` is the same
as `asrsweep plan E.yaml`, flags included); this file only dispatches.
"""

from __future__ import annotations

import importlib
import sys

from asrsweep.core.common import UserError, cli_main

COMMANDS = {
    "plan": "preview runs and jobs per stage; writes nothing",
    "explain": "every setting with its value, default and description",
    "collect": "print the best settings and WERs of an experiment's runs",
    "status": "per run: which stages are done, running, failed or pending",
}
MODULES = {
    "plan": "asrsweep.experiment.plan",
    "explain": "asrsweep.experiment.explain",
    "collect": "asrsweep.results.collect",
    "status": "asrsweep.results.status",
}


def run(argv: list[str] | None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:8} {text}" for name, text in COMMANDS.items()]
        print("usage: asrsweep <command> ...\n\ncommands:\n" + "\n".join(lines))
        if argv and argv[0] not in ("-h", "--help"):
            raise UserError(f"unknown command '{argv[0]}'; use one of {', '.join(COMMANDS)}")
        return
    module = importlib.import_module(MODULES[argv[0]])
    module.main(argv[1:])


def main(argv: list[str] | None = None) -> None:
    cli_main(run, argv)


if __name__ == "__main__":
    main()
