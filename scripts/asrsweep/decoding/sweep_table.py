"""Cached emissions in, sweep tables out: what every decoding step reads and writes.

Library module (no CLI), used by `python -m asrsweep.decoding.decode_sweep`, `merge_sweep` and
`decode_frozen`. A sweep table (shards/i-of-n.tsv, sweep.tsv) has one row per decoder setting
on dev: the setting's knobs, then its scores, and the share of dev they are on (`dev_share`: 1.0
for grid and random; a halving search leaves settings it dropped early on a smaller share).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asrsweep.core.common import UserError
from asrsweep.decoding.decoder import KNOBS, Setting

COLUMNS = ["setting", "decoder", *KNOBS, "split", "wer", "cer", "words", "substitutions",
           "deletions", "insertions", "seconds", "dev_share"]


def load_emissions(emissions_dir: Path, split: str) -> dict:
    """{"utt_ids", "texts", "logprobs": list of float32 arrays [T, V], "tokens"} of one split."""
    import torch

    path = Path(emissions_dir) / f"{split}.pt"
    if not path.is_file():
        raise UserError(f"{path}: file not found; run asrsweep.acoustic.emissions first")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    blob["logprobs"] = [np.ascontiguousarray(x.float().numpy()) for x in blob["logprobs"]]
    return blob


def check_tokens(blob: dict, tokens: list[str], where: str) -> None:
    """Emissions and tokens.txt must describe the same output columns."""
    if "tokens" in blob and list(blob["tokens"]) != tokens:
        raise UserError(f"{where}: emissions tokens differ from tokens.txt; mixed runs?")


def setting_row(index, setting: Setting | None, result, seconds: float, split: str = "dev",
                share: float = 1.0) -> dict:
    """One sweep.tsv row; `setting=None` is the greedy row (knobs left empty)."""
    knobs = setting.as_dict() if setting else {"decoder": "greedy", **{k: "" for k in KNOBS}}
    return {"setting": index, **knobs, "split": split, **result.row(), "seconds": round(seconds, 3),
            "dev_share": share}
