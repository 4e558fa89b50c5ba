"""python -m asrsweep.results.status E.yaml [--results results] [--run RUN] [--json]   (`asrsweep status E.yaml`)
   python -m asrsweep.results.status --results results/demo [--workdir .] [--run RUN] [--json]

Show where each run of an experiment stands: which stages are done, running, failed or pending.

With an experiment file, the stages of every run come from it (runs not yet started included)
and --results is the results root the workflow wrote to (its `results=`, default results);
without one, --results is the experiment's folder R/<experiment> and the stages come from its
run folders, which one job writes once every run of the experiment has finished:

`<results>/runs/<run>/stages.json` ({"stage": "path of its main output"}, written by the
workflow; a value may also be {"output": path, "rule": rule name} to consider only that rule's
jobs and logs). Stages are listed in pipeline order (`core.stages`) either way. Relative paths
are relative to --workdir, the directory snakemake runs in.
A job or log belongs to a stage when its wildcard values all occur in the stage's output path,
one of them below --results (the stage key, not just the experiment name). A stage is
- done:    its output exists;
- running: a SLURM job of this user belongs to it (`squeue --me`: the slurm executor puts
           `rule_<rule>_wildcards_<values>` in the job's comment), or snakemake has marked the
           output incomplete while a snakemake holds locks in this workdir (local runs);
- failed:  not done, not running, but a log belongs to it: the newest SLURM log under
           `.snakemake/slurm_logs/rule_<rule>/` or rule log under `logs/<rule>/` (in --workdir
           or --results), shown with its cause when the SLURM log names one;
- pending: none of the above (not started yet, or waiting for upstream stages).
Works without SLURM: squeue missing or failing only means no job ids are shown.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from asrsweep.core.common import UserError, cli_main, read_json
from asrsweep.core.stages import STAGES

SQUEUE = ["squeue", "--me", "--noheader", "--format=%i|%T|%M|%k"]
# Path and wildcard strings are compared as sets of tokens: the slurm executor joins wildcard
# values with "_" and replaces "/" by "_", so that is all that survives of their structure.
TOKEN_SPLIT = re.compile(r"[/_.-]+")
CAUSES = [  # (pattern in a SLURM log, cause shown)
    (re.compile(r"DUE TO TIME LIMIT"), "time limit"),
    (re.compile(r"oom[-_ ]kill|out of memory|OUT_OF_MEMORY", re.IGNORECASE), "out of memory"),
    (re.compile(r"DUE TO PREEMPTION|CANCELLED"), "cancelled"),
]
# stages.json is written key-sorted; runs list their stages in pipeline order, unknown names last.
PIPELINE_ORDER = {stage.name: i for i, stage in enumerate(STAGES)}


@dataclass(frozen=True)
class SlurmJob:
    """One line of `squeue --me`: job id, state (RUNNING, PENDING, ...), elapsed, comment."""

    jobid: str
    state: str
    elapsed: str
    comment: str


@dataclass(frozen=True)
class StageStatus:
    """The state of one stage of one run, with a job id or log path as detail."""

    run: str
    stage: str
    state: str  # done | running | failed | pending
    output: str
    detail: str = ""


def tokens(text: str) -> set[str]:
    """The non-empty tokens of a path or wildcard string, e.g. "a/b_c.pt" -> {"a", "b", "c", "pt"}; "-" splits too."""
    return {t for t in TOKEN_SPLIT.split(text) if t}


def parse_comment(comment: str) -> tuple[str, str]:
    """`rule_<rule>_wildcards_<values>` (the slurm executor's --comment) -> (rule, values)."""
    if not comment.startswith("rule_"):
        return "", ""
    rule, _, values = comment[len("rule_"):].partition("_wildcards_")
    return rule, values


def parse_squeue(text: str) -> list[SlurmJob]:
    """Parse the output of `SQUEUE` (one `id|state|elapsed|comment` line per job)."""
    jobs = []
    for line in text.splitlines():
        parts = line.strip().split("|", 3)
        if len(parts) == 4:
            jobs.append(SlurmJob(*parts))
    return jobs


def query_squeue() -> list[SlurmJob] | None:
    """This user's SLURM jobs, or None when squeue is missing or fails (no SLURM here)."""
    try:
        proc = subprocess.run(SQUEUE, capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return parse_squeue(proc.stdout) if proc.returncode == 0 else None


def read_stages(run_dir: Path) -> dict[str, tuple[str, str | None]]:
    """`stages.json` of one run -> {stage: (output path, rule name or None = any rule)}."""
    path = run_dir / "stages.json"
    stages = read_json(path)
    if not isinstance(stages, dict):
        raise UserError(f"{path}: expected a mapping stage -> output path")
    result = {}
    for stage, value in sorted(stages.items(), key=lambda item: PIPELINE_ORDER.get(item[0], len(STAGES))):
        if isinstance(value, str):
            result[stage] = (value, None)
        elif isinstance(value, dict) and set(value) <= {"output", "rule"} and "output" in value:
            result[stage] = (value["output"], value.get("rule"))
        else:
            raise UserError(f"{path}: {stage}: expected a path or {{\"output\": path, \"rule\": name}}")
    return result


def incomplete_outputs(workdir: Path) -> set[Path]:
    """Outputs snakemake has marked incomplete (job started, not finished) in `workdir`.

    Markers are `.snakemake/incomplete/<urlsafe base64 of the path>`; long names are split into
    directory chunks whose names start with "@".
    """
    root = workdir / ".snakemake" / "incomplete"
    found = set()
    for marker in root.rglob("*") if root.is_dir() else []:
        if not marker.is_file() or marker.name == "migration_underway":
            continue
        encoded = "".join(part.lstrip("@") for part in marker.relative_to(root).parts)
        try:
            found.add(resolve(base64.urlsafe_b64decode(encoded).decode(), workdir))
        except (ValueError, UnicodeDecodeError):
            continue
    return found


def snakemake_active(workdir: Path) -> bool:
    """True when a snakemake holds locks in `workdir` (it is running there now)."""
    locks = workdir / ".snakemake" / "locks"
    return locks.is_dir() and any(locks.iterdir())


def resolve(path: str, workdir: Path) -> Path:
    """An output path as snakemake sees it (relative to its workdir), made absolute."""
    p = Path(path)
    return (p if p.is_absolute() else workdir / p).resolve()


def matches(wildcards: str, output: Path, results: Path) -> bool:
    """True when every token of a wildcard string occurs in `output`, one of them below `results`.

    The second condition keeps a job whose only wildcard is the experiment (a summary) from
    matching every stage.
    """
    wanted = tokens(wildcards)
    below = tokens(str(output.relative_to(results))) if output.is_relative_to(results) else tokens(str(output))
    return bool(wanted & below) and wanted <= tokens(str(output))


def belongs(job_rule: str, values: str, stage: str, rule: str | None, output: Path, results: Path) -> bool:
    """True when a job (or log) of `job_rule` with wildcard `values` works on this stage.

    `rule` None means any rule may; a rule without wildcards must be named like the stage.
    """
    if rule is not None and job_rule != rule:
        return False
    if not tokens(values):
        return job_rule == (rule or stage)
    return matches(values, output, results)


def find_job(jobs: list[SlurmJob], stage: str, rule: str | None, output: Path, results: Path) -> SlurmJob | None:
    """The SLURM job working on this output, if any."""
    for job in jobs:
        job_rule, values = parse_comment(job.comment)
        if job_rule and belongs(job_rule, values, stage, rule, output, results):
            return job
    return None


def newest_log(ctx: dict, stage: str, rule: str | None, output: Path) -> Path | None:
    """The newest SLURM log or rule log belonging to this output, if any."""
    candidates = []
    slurm_root = ctx["workdir"] / ".snakemake" / "slurm_logs"
    for rule_dir in slurm_root.glob("rule_*") if slurm_root.is_dir() else []:
        job_rule = rule_dir.name[len("rule_"):]
        candidates += [log for log in rule_dir.rglob("*.log") if belongs(
            job_rule, str(log.parent.relative_to(rule_dir)), stage, rule, output, ctx["results"])]
    for logs in {ctx["workdir"] / "logs", ctx["results"] / "logs"}:
        for rule_dir in logs.iterdir() if logs.is_dir() else []:
            if rule_dir.is_dir():
                candidates += [log for log in rule_dir.rglob("*.log") if belongs(
                    rule_dir.name, str(log.relative_to(rule_dir).with_suffix("")), stage, rule,
                    output, ctx["results"])]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def failure_cause(log: Path) -> str:
    """A short cause from a SLURM log ("time limit", "out of memory", ...), or ""."""
    try:
        text = log.read_text(errors="replace")[-20000:]
    except OSError:
        return ""
    for pattern, cause in CAUSES:
        if pattern.search(text):
            return cause
    return ""


def stage_status(run: str, stage: str, output: str, rule: str | None, ctx: dict) -> StageStatus:
    """Decide done / running / failed / pending for one stage (see the module docstring)."""
    out = resolve(output, ctx["workdir"])
    if out.exists():
        return StageStatus(run, stage, "done", output)
    job = find_job(ctx["jobs"] or [], stage, rule, out, ctx["results"])
    if job:
        detail = f"job {job.jobid} {job.state} {job.elapsed} ({parse_comment(job.comment)[0]})"
        return StageStatus(run, stage, "running", output, detail)
    if out in ctx["incomplete"] and ctx["active"]:
        return StageStatus(run, stage, "running", output, "snakemake (not a SLURM job)")
    log = newest_log(ctx, stage, rule, out)
    if log:
        cause = failure_cause(log)
        return StageStatus(run, stage, "failed", output, f"{cause + ': ' if cause else ''}{log}")
    return StageStatus(run, stage, "pending", output)


def stages_from_disk(results: Path) -> dict[str, dict[str, tuple[str, str | None]]]:
    """{run: stages} from the `stages.json` of every run folder under `results`/runs."""
    runs_dir = results / "runs"
    if not runs_dir.is_dir():
        raise UserError(f"{runs_dir}: not found; check --results (results/<experiment>) or run the workflow first")
    return {d.name: read_stages(d) for d in sorted(runs_dir.iterdir()) if (d / "stages.json").is_file()}


def stages_from_experiment(experiment: Path, results_root: Path) -> tuple[Path, dict]:
    """(results/<experiment>, {run: stages}) computed from the experiment file itself, so that
    runs that have not finished (no stages.json yet) are shown too."""
    from asrsweep.experiment.workflow import SweepIndex

    index = SweepIndex(str(experiment), str(results_root))
    (name,) = index.experiments
    stages = {run_id: {stage: (path, None) for stage, path in index.stages(exp, run_id).items()}
              for exp, run_id in index.run_dirs()}
    return results_root / name, stages


def collect(results: Path, workdir: Path, run: str | None, jobs: list[SlurmJob] | None,
            runs: dict[str, dict] | None = None) -> list[StageStatus]:
    """The status of every stage of every run (or only `run`); `runs` defaults to stages.json files."""
    runs = stages_from_disk(results) if runs is None else runs
    if run:
        if run not in runs:
            raise UserError(f"{results}: no run '{run}'; runs: {', '.join(runs) or 'none yet'}")
        runs = {run: runs[run]}
    ctx = {"workdir": workdir.resolve(), "results": results.resolve(), "jobs": jobs,
           "incomplete": incomplete_outputs(workdir.resolve()), "active": snakemake_active(workdir)}
    return [stage_status(name, stage, output, rule, ctx)
            for name, stages in runs.items() for stage, (output, rule) in stages.items()]


def format_table(rows: list[StageStatus], squeue_ok: bool) -> str:
    """Rows as an aligned text table, one summary line per run."""
    lines = []
    if not squeue_ok:
        lines.append("(squeue not available: SLURM job ids are not shown)")
    width = max([len(r.stage) for r in rows] + [5])
    for run in dict.fromkeys(r.run for r in rows):
        mine = [r for r in rows if r.run == run]
        counts = {s: sum(r.state == s for r in mine) for s in ("done", "running", "failed", "pending")}
        lines.append(f"{run}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
        for r in mine:
            lines.append(f"  {r.stage:<{width}}  {r.state:<7}  {r.detail}".rstrip())
    return "\n".join(lines)


def run(argv: list[str] | None = None) -> None:
    """Print the state of every stage of every run (a table, or JSON records)."""
    parser = argparse.ArgumentParser(
        prog="asrsweep status", description=run.__doc__,
        usage="%(prog)s E.yaml [--results DIR] [--workdir .] [--run RUN] [--json]\n"
              "       %(prog)s --results DIR/E [--workdir .] [--run RUN] [--json]")
    parser.add_argument("experiment", type=Path, nargs="?", metavar="E.yaml",
                        help="experiment file: every run, finished or not (with --results = the results root)")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="the results root with an experiment file (default: results), else the "
                             "results/<experiment> folder")
    parser.add_argument("--workdir", type=Path, default=Path("."), help="where snakemake runs (default: .)")
    parser.add_argument("--run", help="show only this run")
    parser.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    args = parser.parse_args(argv)
    if args.experiment is None and args.results is None:
        parser.error("give an experiment file, or --results results/<experiment>")
    jobs = query_squeue()
    results, runs = args.results, None
    if args.experiment:
        results, runs = stages_from_experiment(args.experiment, args.results or Path("results"))
    rows = collect(results, args.workdir, args.run, jobs, runs)
    if args.experiment and not results.is_dir():
        print(f"({results}: no such folder; if the workflow ran with --config results=DIR, pass "
              f"--results DIR)", file=sys.stderr)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print(format_table(rows, jobs is not None))


def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
