"""Gather one run's results and provenance: `python -m asrsweep.run_result --experiment demo --run order=3 --run-dir results/demo/runs/order=3 --config-json '{...}' --values '{"ngram.order": 3}' --stages '{...}'`.

Writes into the run folder:
- `config.yaml`: the run's fully resolved config;
- `result.json`: the run's varied values, the leaf results of its stages and their paths;
- `provenance.json`: workflow git commit and dirty flag, package versions, python, host;
- `commands/<stage>.sh`: the exact command each stage's step ran (copied from its folder);
- `stages.json`: stage -> main output path (read by `asrsweep status`).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from asrsweep.common import UserError, cli_main, read_json, write_json_atomic, write_text_atomic
from asrsweep.configio import dump_yaml

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


def stage_dirs(stages: dict[str, str]) -> dict[str, Path]:
    """stage -> its folder (the parent of its main output)."""
    return {stage: Path(path).parent for stage, path in stages.items()}


def copy_commands(stages: dict[str, str], run_dir: Path) -> dict[str, str]:
    """Copy each stage's command.sh into run_dir/commands/<stage>.sh; return stage -> path."""
    commands = {}
    for stage, folder in stage_dirs(stages).items():
        source = folder / "command.sh"
        if source.exists():
            target = run_dir / "commands" / f"{stage}.sh"
            write_text_atomic(target, source.read_text())
            shutil.copymode(source, target)
            commands[stage] = str(target)
    return commands


def optional_json(path: Path) -> dict | None:
    return read_json(path) if path.exists() else None


def gather(stages: dict[str, str]) -> dict:
    """The leaf results of a run's stages, as written by their steps."""
    dirs = stage_dirs(stages)
    beam = {"best_on_dev": read_json(dirs["decode"] / "best_on_dev.json"),
            "test": read_json(dirs["decode"] / "test.json")}
    # The decoder sweep scores greedy decoding on dev and test for reference.
    dev_greedy, test_greedy = beam["best_on_dev"].get("greedy", {}), beam["test"].get("greedy", {})
    return {
        "train": read_json(dirs["train"] / "train.json"),
        "greedy": {"dev_wer": dev_greedy.get("dev_wer"), "dev_cer": dev_greedy.get("dev_cer"),
                   "test_wer": test_greedy.get("wer"), "test_cer": test_greedy.get("cer")},
        "beam": beam,
        "rescore": {"best_on_dev": optional_json(dirs["rescore"] / "best_on_dev.json"),
                    "test": optional_json(dirs["rescore"] / "test.json")},
        "lm": optional_json(dirs["lm"] / "lm.json"),
        "paths": {**{stage: str(folder) for stage, folder in dirs.items()},
                  "train_log": str(dirs["train"] / "train_log.tsv"),
                  "lm_log": str(dirs["lm"] / "train_log.tsv"),
                  "sweep": str(dirs["decode"] / "sweep.tsv"),
                  "grid": str(dirs["rescore"] / "grid.tsv")},
    }


def main(argv: list[str] | None = None) -> None:
    """Write config.yaml, result.json, provenance.json, stages.json and commands/ of one run."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.run_result", description=main.__doc__)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--config-json", required=True, help="the run's resolved config (JSON)")
    parser.add_argument("--values", required=True, help="the run's varied values (JSON)")
    parser.add_argument("--stages", required=True, help="stage -> main output path (JSON)")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.config_json)
        values, stages = json.loads(args.values), json.loads(args.stages)
    except json.JSONDecodeError as err:
        raise UserError(f"--values/--stages: not valid JSON ({err.msg})") from None
    write_text_atomic(args.run_dir / "config.yaml", dump_yaml(config))
    write_json_atomic(args.run_dir / "stages.json", stages)
    write_json_atomic(args.run_dir / "provenance.json", provenance())
    result = {"experiment": args.experiment, "run": args.run, "values": values, **gather(stages)}
    result["commands"] = copy_commands(stages, args.run_dir)
    write_json_atomic(args.run_dir / "result.json", result)


if __name__ == "__main__":
    cli_main(main)
