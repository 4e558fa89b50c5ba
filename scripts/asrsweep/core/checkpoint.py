"""Training checkpoints of every trainer (not a step): folder lock, save + keep-N, newest valid, stop signals.

Used by `asrsweep.acoustic.train` and `asrsweep.rescoring.train_lm`. A checkpoint `ckpt-<step>.pt`
describes itself: at least model args and weights, optimizer, scheduler, step and RNG states
(`REQUIRED`); each trainer adds what else its position needs (sampler position, log rows, best
weights, tokenizer) and the config section it ran with. Written atomically; a truncated or corrupt
one is skipped with a warning. SIGTERM/SIGUSR1 ask for a checkpoint at the next step boundary,
then the trainer exits `EXIT_PREEMPTED` (75), which the SLURM profile resubmits. Resuming under
other settings is reported (`resume_record`), and refused past the new max_steps.
"""

from __future__ import annotations

import contextlib
import fcntl
import random
import re
import signal
import sys
from pathlib import Path

import numpy as np
import torch

from asrsweep.core.common import UserError, torch_save_atomic

NAME = re.compile(r"^ckpt-(\d+)\.pt$")
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: "saved, run me again"; the SLURM profile's retries rely on it
REQUIRED = frozenset({"model_args", "model", "optimizer", "scheduler", "step", "rng"})
# Settings a resumed run may change without any effect on what it computes (exact resume).
BOOKKEEPING = ("checkpoint_every", "keep_checkpoints", "loader_workers")


@contextlib.contextmanager
def exclusive(ckdir: Path):
    """Hold an exclusive lock on a checkpoint folder for the whole training.

    Two jobs must never write one folder's checkpoints (a restarted controller, or two trainings
    that share a folder): the second waits, then resumes from what the first left.
    """
    ckdir.mkdir(parents=True, exist_ok=True)
    with open(ckdir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another job that trains into {ckdir}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def rng_state() -> dict:
    """All RNG states (python, numpy, torch CPU, CUDA when present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` captured (CUDA only if both sides have it)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def list_checkpoints(ckdir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every `ckpt-<step>.pt` in `ckdir`, newest first."""
    ckdir = Path(ckdir)
    if not ckdir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckdir.iterdir() if (m := NAME.match(p.name))]
    return sorted(found, reverse=True)


def read_checkpoint(path: str | Path, required: frozenset = REQUIRED) -> dict:
    """Load one checkpoint on CPU; raise ValueError when it is unreadable or lacks a `required` key."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, garbage bytes, pickling errors: all mean "corrupt"
        raise ValueError(f"{type(err).__name__}: {err}") from None
    if not isinstance(blob, dict) or not required <= set(blob):
        raise ValueError(f"missing keys {sorted(required - set(blob if isinstance(blob, dict) else {}))}")
    return blob


def latest_valid(ckdir: str | Path, required: frozenset = REQUIRED) -> tuple[Path, dict] | None:
    """(path, checkpoint) of the newest checkpoint in `ckdir` that loads; corrupt ones are reported and skipped."""
    for _, path in list_checkpoints(ckdir):
        try:
            return path, read_checkpoint(path, required)
        except ValueError as err:
            print(f"warning: skipping corrupt checkpoint {path} ({err})", file=sys.stderr, flush=True)
    return None


def save_checkpoint(ckdir: str | Path, state: dict, keep: int) -> Path:
    """Write `ckpt-<step>.pt` atomically, then delete all but the newest `keep` (>= 1)."""
    path = Path(ckdir) / f"ckpt-{state['step']}.pt"
    torch_save_atomic(state, path)
    for _, old in list_checkpoints(ckdir)[max(1, keep):]:
        old.unlink(missing_ok=True)
    return path


class StopSignal:
    """While entered, SIGTERM and SIGUSR1 only set `requested`; the train loop checkpoints at the
    next step boundary and exits `EXIT_PREEMPTED` (stopping mid-step would lose the step's state)."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.requested = False
        self._old: dict = {}

    def __enter__(self) -> StopSignal:
        self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame) -> None:
        self.requested = True


def config_changes(saved: dict, current: dict, prefix: str = "") -> dict[str, list]:
    """{dotted setting: [checkpoint's value, current value]} for each setting that differs (not BOOKKEEPING)."""
    changed = {}
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed.update(config_changes(old, new, f"{prefix}{key}."))
        elif old != new and prefix + key not in BOOKKEEPING:
            changed[prefix + key] = [old, new]
    return changed


def resume_record(path: Path, step: int, saved: dict, current: dict, section: str) -> dict | None:
    """Check resuming checkpoint `path` (at `step`, trained with config section `saved`) under `current`.

    Refused when the checkpoint is past the current max_steps: its lr schedule ran to another end.
    Other changed settings are warned about and returned as {"step", "checkpoint", "changed"} for
    the run's result; None when nothing changed.
    """
    ckdir = Path(path).parent
    if step > current["max_steps"]:
        raise UserError(f"{path}: checkpoint is at step {step}, past {section}.max_steps {current['max_steps']}; "
                        f"raise {section}.max_steps to {step} or more, or start a new run (remove {ckdir})")
    changed = config_changes(saved, current)
    if not changed:
        return None
    what = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())
    print(f"warning: {path} was trained with other {section} settings ({what}); continuing from step {step} "
          "under the current ones", file=sys.stderr, flush=True)
    return {"step": step, "checkpoint": str(path), "changed": changed}


def load_init_weights(source: str | Path) -> tuple[dict, dict]:
    """(model_args, state_dict) from a checkpoint, a model.pt, or a dir holding either (for init_from)."""
    source = Path(source)
    if source.is_dir():
        if (source / "model.pt").is_file():
            source = source / "model.pt"
        else:
            found = latest_valid(source)
            if found is None:
                raise UserError(f"train.init_from: {source}: no model.pt and no valid ckpt-*.pt inside")
            return found[1]["model_args"], found[1]["model"]
    if not source.is_file():
        raise UserError(f"train.init_from: {source}: not found; give a model.pt, ckpt-*.pt or a dir")
    try:
        blob = torch.load(source, map_location="cpu", weights_only=False)
    except Exception as err:
        raise UserError(f"train.init_from: {source}: unreadable ({type(err).__name__})") from None
    weights = blob.get("model", blob.get("state_dict")) if isinstance(blob, dict) else None
    if weights is None or "model_args" not in blob:
        raise UserError(f"train.init_from: {source}: not an asrsweep checkpoint or model.pt")
    return blob["model_args"], weights
