"""python -m asrsweep.results.run_result --experiment config/experiments/demo.yaml --runs-dir results/demo/runs

Write every run folder of an experiment.

One job per experiment (not per run: a 1,000-run sweep would otherwise schedule 1,000 jobs
that each take a fraction of a second). --runs-dir is <results>/<experiment>/runs; the stage
folders are read from <results>/<experiment>/<stage>/<key>. Into <runs-dir>/<run id>/ it writes:
- `config.yaml`: the run's fully resolved config;
- `result.json`: the run's varied values, the leaf results of its stages and their paths;
- `provenance.json`: workflow git commit and dirty flag, package versions, python, host, the
  corpus (source, path, utterances and hours per split) and the fingerprint of every file the
  config names (path, hash, files, bytes);
- `commands/<stage>.sh`: the exact command each stage's step ran (copied from its folder;
  sweep shards as `<stage>.shards.<i>-of-<n>.sh`);
- `stages.json`: stage -> main output path (read by `asrsweep status`).
The runs folder is built next to its place and swapped in whole, so a failed job leaves the
previous one (or none) rather than a half-written one.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

from asrsweep.core.common import UserError, cli_main, read_json, write_json_atomic, write_text_atomic
from asrsweep.experiment.configio import dump_yaml
from asrsweep.experiment.sweep import load_experiment
from asrsweep.experiment.workflow import SweepIndex
from asrsweep.results.gather import result_of, stage_dirs

PACKAGES = ("asrsweep", "torch", "snakemake", "snakemake-executor-plugin-slurm", "transformers",
            "sentencepiece", "flashlight-text", "jiwer", "numpy", "pandas", "ufal.kenlm", "kenlm")


def git_state(cwd: Path) -> dict:
    """{'commit': sha or None, 'dirty': bool or None} of the workflow checkout."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that shape the numbers."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance() -> dict:
    """Where and with what code the run's numbers were made."""
    return {"git": git_state(Path.cwd()), "packages": package_versions(),
            "python": platform.python_version(), "host": platform.node()}


def copy_commands(stages: dict[str, str], run_dir: Path) -> dict[str, str]:
    """Copy every command.sh of each stage folder into run_dir/commands/; return name -> path.

    <stage>/command.sh becomes <stage>.sh; a sweep shard's shards/0-of-2/command.sh becomes
    <stage>.shards.0-of-2.sh.
    """
    commands = {}
    for stage, folder in stage_dirs(stages).items():
        for source in [folder / "command.sh", *sorted(folder.glob("shards/*/command.sh"))]:
            if not source.exists():
                continue
            name = ".".join([stage, *source.parent.relative_to(folder).parts])
            target = run_dir / "commands" / f"{name}.sh"
            write_text_atomic(target, source.read_text())
            shutil.copymode(source, target)
            commands[name] = str(target)
    return commands


def corpus_of(stages: dict[str, str], config: dict) -> dict:
    """The corpus a run used: source, path, utterances and hours per split (the data stage's
    report.json), so a number in the summary names the data it was measured on."""
    report = read_json(Path(stages["data"]).parent / "report.json")
    data = config.get("data", {})
    return {"source": data.get("source"), "path": data.get("path") or None,
            "utterances": report.get("kept"), "hours": report.get("hours")}


def write_run(run_dir: Path, experiment: str, run_id: str, config: dict, values: dict,
              stages: dict[str, str], prov: dict) -> None:
    """Write config.yaml, stages.json, provenance.json, commands/ and result.json of one run."""
    write_text_atomic(run_dir / "config.yaml", dump_yaml(config))
    write_json_atomic(run_dir / "stages.json", stages)
    write_json_atomic(run_dir / "provenance.json", prov)
    result = result_of(experiment, run_id, values, stages)
    result["commands"] = copy_commands(stages, run_dir)
    write_json_atomic(run_dir / "result.json", result)


def swap_in(built: Path, target: Path) -> None:
    """Replace the folder `target` by `built` (two renames; the old folder is removed after)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old-"))
        os.replace(target, old / target.name)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old)


def results_root(runs_dir: Path, name: str, experiment: str) -> Path:
    """The results root R of `runs_dir` = R/<name>/runs; `name` may be nested (`examples/yesno`)."""
    depth = len(Path(name).parts)
    exp_dir = runs_dir.parent
    if runs_dir.name != "runs" or exp_dir.parts[-depth:] != Path(name).parts:
        raise UserError(f"--runs-dir {runs_dir}: expected <results>/{name}/runs for the experiment "
                        f"file {experiment}")
    return exp_dir.parents[depth - 1]


def run(argv: list[str] | None = None) -> None:
    """Write the run folders of one experiment under <results>/<experiment>/runs."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.results.run_result", description=run.__doc__)
    parser.add_argument("--experiment", required=True, help="the experiment file")
    parser.add_argument("--runs-dir", required=True, type=Path, help="<results>/<experiment>/runs")
    args = parser.parse_args(argv)
    target = args.runs_dir
    name = load_experiment(args.experiment).name
    index = SweepIndex(args.experiment, results_root(target, name, args.experiment))
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}.*-*"):  # of a run_result job killed mid-way
        shutil.rmtree(leftover, ignore_errors=True)
    built = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.new-"))
    umask = os.umask(0)
    os.umask(umask)
    built.chmod(0o777 & ~umask)  # mkdtemp makes it private; the runs folder is not
    try:
        prov = provenance()
        for (exp, run_id), run_dir in index.run_dirs().items():
            spec = index.run(exp, run_id)
            stages = index.stages(exp, run_id)
            # The fingerprints of the files the config names (PATH_SETTINGS of sweep) pin the inputs.
            write_run(built / run_dir.name, exp, run_id, spec.config, spec.values, stages,
                      {**prov, "inputs": spec.inputs, "corpus": corpus_of(stages, spec.config)})
    except BaseException:
        shutil.rmtree(built, ignore_errors=True)
        raise
    swap_in(built, target)
    print(f"run_result: {len(index.run_dirs())} run folders in {target}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
