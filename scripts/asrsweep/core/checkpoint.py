"""Training checkpoints for `asrsweep.acoustic.train` (not a step): save, prune, find the newest valid one.

A checkpoint `ckpt-<step>.pt` describes itself: model args and weights, optimizer, scheduler,
step, sampler position (epoch, index in epoch), RNG states, best-so-far weights, log rows, and the
train config it ran with. Written atomically; a truncated or corrupt one is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import random
import re
import sys
from pathlib import Path

import numpy as np
import torch

from asrsweep.core.common import UserError, torch_save_atomic

NAME = re.compile(r"^ckpt-(\d+)\.pt$")


@dataclasses.dataclass
class Progress:
    """Everything about the run's position that a checkpoint must restore."""

    step: int = 0
    epoch: int = 0
    index: int = 0  # next batch within the epoch
    loss_sum: float = 0.0  # train loss since the last log row
    loss_n: int = 0
    seconds: float = 0.0  # training wall time of earlier processes
    log: list = dataclasses.field(default_factory=list)
    best: dict | None = None  # {"step", "dev_cer", "dev_loss", "state_dict"}


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


REQUIRED = {"model_args", "model", "optimizer", "scheduler", "step", "epoch", "index", "rng"}


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


def read_checkpoint(path: str | Path) -> dict:
    """Load one checkpoint on CPU; raise ValueError when it is unreadable or incomplete."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated zip, garbage bytes, pickling errors: all mean "corrupt"
        raise ValueError(f"{type(err).__name__}: {err}") from None
    if not isinstance(blob, dict) or not REQUIRED <= set(blob):
        raise ValueError(f"missing keys {sorted(REQUIRED - set(blob or {}))}")
    return blob


def latest_valid(ckdir: str | Path) -> dict | None:
    """The newest checkpoint in `ckdir` that loads; corrupt ones are reported and skipped."""
    for step, path in list_checkpoints(ckdir):
        try:
            return read_checkpoint(path)
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


def load_init_weights(source: str | Path) -> tuple[dict, dict]:
    """(model_args, state_dict) from a checkpoint, a model.pt, or a dir holding either (for init_from)."""
    source = Path(source)
    if source.is_dir():
        if (source / "model.pt").is_file():
            source = source / "model.pt"
        else:
            blob = latest_valid(source)
            if blob is None:
                raise UserError(f"train.init_from: {source}: no model.pt and no valid ckpt-*.pt inside")
            return blob["model_args"], blob["model"]
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
