"""Wall time of previewing a 1,000-run experiment: `python bench/plan_dryrun.py`.

Builds an experiment of 10 learning rates × 10 seeds × 10 beam sizes (100 trainings, 1,000
decoder runs), then times `asrsweep plan` (goal < 2 s) and `snakemake -n` (goal < 15 s on
2 cores) on it, side by side in one run, and prints both with their ratio to the goal.

Every snakemake start imports the SLURM executor plugin, which runs `scontrol show config`
(timeout 10 s). Where a SLURM client is installed but its controller is unreachable (e.g. a
stopped test cluster whose slurm.conf was left behind) that call alone waits ~9 s; the script
times it too and says so, rather than hiding it in the snakemake figure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXPERIMENT = """\
description: 1,000 runs for the dry-run benchmark.
variables:
  train.lr: [0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005]
  decode.beam_size: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
seeds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
"""


def timed(cmd: list[str]) -> tuple[float, str]:
    """Seconds a command takes, and its output (it must succeed)."""
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def scontrol_probe() -> str:
    """How long the SLURM plugin's `scontrol show config` takes here (part of every start)."""
    if shutil.which("scontrol") is None:
        return "no scontrol here: the SLURM plugin's startup probe costs nothing"
    start = time.perf_counter()
    subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=15)
    seconds = time.perf_counter() - start
    note = " (a SLURM controller named in slurm.conf is not answering)" if seconds > 1 else ""
    return f"scontrol show config: {seconds:.2f} s, included in the snakemake -n figure{note}"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "bench1000.yaml"
        exp.write_text(EXPERIMENT)
        results = f"{tmp}/results"
        plan_s, plan_out = timed([str(BIN / "asrsweep"), "plan", str(exp), "--results", results])
        dry_s, dry_out = timed([str(BIN / "snakemake"), "-n", "--config",
                                f"experiment={exp}", f"results={results}"])
    runs = plan_out.splitlines()[0]
    jobs = next((line.split()[-1] for line in dry_out.splitlines() if line.startswith("total")), "?")
    print(f"experiment: {runs}; snakemake jobs: {jobs}")
    print(f"asrsweep plan : {plan_s:6.2f} s  (goal 2 s:  {plan_s / 2:.2f} of the goal)")
    print(f"snakemake -n  : {dry_s:6.2f} s  (goal 15 s: {dry_s / 15:.2f} of the goal)")
    print(f"ratio snakemake -n / plan: {dry_s / plan_s:.1f}x")
    print(scontrol_probe())


if __name__ == "__main__":
    main()
