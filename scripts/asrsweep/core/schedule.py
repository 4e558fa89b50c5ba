"""The learning-rate schedule of every trainer: linear warmup, then decay to a floor.

Library module (no CLI), used by `python -m asrsweep.acoustic.train` (cosine or linear decay to
0) and `python -m asrsweep.rescoring.train_lm` (linear decay to 0.1).
"""

from __future__ import annotations

import math

SHAPES = ("cosine", "linear")


def lr_factor(step: int, warmup: int, max_steps: int, shape: str = "cosine", floor: float = 0.0) -> float:
    """LR multiplier for 0-based `step`: (step + 1) / warmup during warmup, then from 1 down to
    `floor` at `max_steps` along `shape` (and `floor` after it)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    decay = 1.0 - progress if shape == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
    return floor + (1.0 - floor) * decay
