"""python -m asrsweep.experiment.plan config/experiments/demo.yaml [--results results]   (`asrsweep plan E.yaml`)

Preview an experiment without writing anything.

Prints every run with its varied values and its state on disk (new, pending, done or changed,
with what changed), then the number of jobs per stage: distinct stage folders, how many are
already done, and how many runs share them.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from asrsweep.core.common import cli_main
from asrsweep.experiment.sweep import format_value
from asrsweep.core.stages import STAGES
from asrsweep.experiment.workflow import SweepIndex, run_state


def run_lines(index: SweepIndex) -> list[str]:
    """One line per run: experiment/run id, state, varied values (and changes if any)."""
    lines = []
    for (exp, run_id), run_dir in index.run_dirs().items():
        run = index.run(exp, run_id)
        state, changes = run_state(run_dir, run)
        values = " ".join(f"{k}={format_value(v)}" for k, v in run.values.items())
        lines.append(f"  {state:8} {exp}/{run_id}  {values}")
        lines += [f"           changed {c}" for c in changes]
    return lines


def stage_lines(index: SweepIndex) -> list[str]:
    """One line per stage: jobs (distinct folders), done, to run, runs per folder."""
    lines = [f"  {'stage':10} {'jobs':>5} {'done':>5} {'to run':>6}  shared by"]
    for stage, output in ((s.name, s.output) for s in STAGES):
        uses = Counter((name, run.keys[stage]) for name, exp in index.experiments.items()
                       for run in exp.runs)
        done = sum((index.stage_dir(name, stage, key) / output).exists() for name, key in uses)
        shared = max(uses.values())
        lines.append(f"  {stage:10} {len(uses):5d} {done:5d} {len(uses) - done:6d}  "
                     f"up to {shared} run(s)")
    return lines


def run(argv: list[str] | None = None) -> None:
    """Print the runs of the experiment(s) and the jobs per stage; write nothing."""
    parser = argparse.ArgumentParser(prog="asrsweep plan", description=run.__doc__)
    parser.add_argument("experiments", nargs="+", type=Path)
    parser.add_argument("--results", default="results", help="results root (default: results)")
    args = parser.parse_args(argv)
    index = SweepIndex(",".join(map(str, args.experiments)), args.results)
    total = sum(len(exp.runs) for exp in index.experiments.values())
    print(f"{total} run(s) in {len(index.experiments)} experiment(s), results under {args.results}/")
    print("\n".join(run_lines(index)))
    print("\njobs per stage:")
    print("\n".join(stage_lines(index)))



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
