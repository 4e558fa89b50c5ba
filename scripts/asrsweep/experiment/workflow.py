"""The experiments of one `snakemake` invocation, indexed for the rules (not a step; no CLI).

The Snakefile builds one `SweepIndex` from `--config experiment=a.yaml,b.yaml results=DIR`;
input functions ask it which upstream stage folder a job reads, and the overwrite guard runs
here before any job is scheduled. This module never imports snakemake.
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from asrsweep.core.common import UserError
from asrsweep.core.stages import STAGES, result_files
from asrsweep.experiment.configio import parse_yaml
from asrsweep.experiment.nested import flatten
from asrsweep.experiment.sweep import Run, load_experiment

@contextmanager
def long_lived():
    """Build data that lives as long as the process (the index, the rules) without collector passes,
    then move everything alive into the collector's permanent generation (`gc.freeze`).

    The index of a 1,000-run sweep holds ~500,000 config values. Without this, every full pass
    of the cyclic collector while snakemake builds the DAG walks them all again: measured on that
    sweep, `snakemake -n` took 10.4 CPU s, with it 9.0 (nothing in the index forms a cycle
    that would need collecting).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class SweepIndex:
    """All runs of the requested experiments and their stage folders under `results`."""

    def __init__(self, experiments: str, results: str, root: Path | None = None):
        paths = [p.strip() for p in str(experiments).split(",") if p.strip()]
        if not paths:
            raise UserError("workflow config: experiment: give at least one experiment file")
        self.results = Path(results)
        # Folder paths as text, normalised as `Path` would ("./r/" -> "r/"): input functions ask
        # for them per job, thousands of times, and joining Paths costs ~100x an f-string.
        self.prefix = str(self.results / "_")[:-1]
        self.experiments = {}
        for path in paths:
            exp = load_experiment(path, root)
            if exp.name in self.experiments:
                raise UserError(f"{path}: experiment name '{exp.name}' is used twice")
            self.experiments[exp.name] = exp
        self._by_key = {(name, stage, key): run for name, exp in self.experiments.items()
                        for run in exp.runs for stage, key in run.keys.items()}
        self._runs = {(name, run.run_id): run for name, exp in self.experiments.items()
                      for run in exp.runs}
        self._run_dirs = {(name, run_id): self.results / name / "runs" / run_id
                          for name, run_id in self._runs}

    def run(self, exp: str, run_id: str) -> Run:
        """The run `run_id` of experiment `exp`."""
        return self._runs[(exp, run_id)]

    def any_run(self, exp: str, stage: str, key: str) -> Run:
        """A run that uses folder `key` of `stage` (all such runs agree on its upstream)."""
        return self._by_key[(exp, stage, key)]

    def stage_dir(self, exp: str, stage: str, key: str) -> Path:
        """results/<experiment>/<stage>/<key> (`folder` as a Path)."""
        return Path(self.folder(exp, stage, key))

    def folder(self, exp: str, stage: str, key: str) -> str:
        """`stage_dir` as text."""
        return f"{self.prefix}{exp}/{stage}/{key}"

    def upstream_dir(self, exp: str, stage: str, key: str, upstream: str) -> str:
        """Folder of stage `upstream` that the job `stage/key` reads."""
        return f"{self.prefix}{exp}/{upstream}/{self._by_key[(exp, stage, key)].keys[upstream]}"

    def run_dirs(self) -> dict[tuple[str, str], Path]:
        """(experiment, run id) -> results/<experiment>/runs/<run id>."""
        return self._run_dirs

    def result_inputs(self, exp: str) -> list[str]:
        """The leaf files that the run folders of `exp` gather (each listed once)."""
        files = result_files()
        return sorted({f"{self.folder(exp, stage, run.keys[stage])}/{name}"
                       for run in self.experiments[exp].runs for stage, name in files})

    def run_finished(self, exp: str, run_id: str) -> bool:
        """True when every leaf file of the run exists (its result can be gathered)."""
        return all(path.exists() for path in self._result_files(exp, self.run(exp, run_id)))

    def _result_files(self, exp: str, run: Run) -> list[Path]:
        """The leaf result files (`core.stages`) of one run."""
        return [self.stage_dir(exp, stage, run.keys[stage]) / filename for stage, filename in result_files()]

    def stages(self, exp: str, run_id: str) -> dict[str, str]:
        """{stage: main output path} of a run, in pipeline order, for `asrsweep status`."""
        run = self.run(exp, run_id)
        return {stage.name: str(self.stage_dir(exp, stage.name, run.keys[stage.name]) / stage.output)
                for stage in STAGES}


def config_changes(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every leaf setting that differs."""
    flat_old, flat_new = flatten(old), flatten(new)
    return [f"{k}: {flat_old.get(k, '<absent>')!r} -> {flat_new.get(k, '<absent>')!r}"
            for k in sorted(set(flat_old) | set(flat_new)) if flat_old.get(k) != flat_new.get(k)]


def run_state(run_dir: Path, run: Run) -> tuple[str, list[str]]:
    """('new' | 'done' | 'pending' | 'changed', changes) of a run folder on disk."""
    config_file = run_dir / "config.yaml"
    if not config_file.exists():
        return "new", []
    changes = config_changes(parse_yaml(config_file.read_text(), str(config_file)), run.config)
    if changes:
        return "changed", changes
    return ("done" if (run_dir / "result.json").exists() else "pending"), []


def guard(index: SweepIndex, overwrite: bool) -> None:
    """Refuse run ids whose folder holds a different resolved config, unless `overwrite`."""
    if overwrite:
        return
    problems = []
    for (exp, run_id), run_dir in index.run_dirs().items():
        state, changes = run_state(run_dir, index.run(exp, run_id))
        if state == "changed":
            shown = "; ".join(changes[:5]) + (f"; ... {len(changes) - 5} more" if len(changes) > 5 else "")
            problems.append(f"{run_dir}/config.yaml: run '{run_id}' exists with a different "
                            f"config ({shown})")
    if problems:
        problems.append("ways forward: rename the experiment file (new results folder), or rerun with "
                        "--config overwrite=true to point these ids at the new config (existing "
                        "checkpoints and artifacts are kept in their own stage folders)")
        raise UserError("\n".join(problems))


def environment_first_on_path() -> None:
    """Put the running interpreter's bin folder first on PATH (inherited by every job)."""
    bindir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
