"""Features in, a model run on a device (not a step): device and thread choice, autocast, feature
splits (with CTC targets for training), batched CTC forward.

Used by the trainers (`asrsweep.acoustic.train`, `asrsweep.rescoring.train_lm`), the emissions step
and LM scoring (`asrsweep.rescoring.score_lm`), so that all of them pick a device, a thread count
and an autocast precision the same way.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator

import torch

from asrsweep.acoustic.batching import pad_batch
from asrsweep.core.common import UserError
from asrsweep.data.feature_store import FeatureStore, Subset, index_path
from asrsweep.core.tokens import Tokens

DEVICES = "auto | cpu | cuda | cuda:N"


def use_threads(threads: int | None) -> None:
    """Apply a `--threads N` flag (the rule's `{threads}`) to torch; None leaves torch's default."""
    if threads is None:
        return
    if threads < 1:
        raise UserError(f"--threads {threads}: give 1 or more CPU threads")
    torch.set_num_threads(threads)


def resolve_device(name: str) -> torch.device:
    """`--device`: 'auto' -> CUDA when available, else CPU; 'cpu', 'cuda', 'cuda:N' as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device; use {DEVICES}") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name}: not a device; use {DEVICES}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available here; use --device auto or cpu")
    return device


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype of a precision setting: bf16 when asked (or 'auto' on a bf16 GPU), None = fp32."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to `dtype` on `device`, or a no-op context for full precision (dtype None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def load_features(folder: Path, split: str) -> FeatureStore:
    """Open one split of a features folder lazily (its index now, shard rows when read)."""
    store = FeatureStore(folder, split)
    if not len(store):
        raise UserError(f"{index_path(folder, split)}: no utterances")
    return store


def load_split(folder: Path, split: str, tokens: Tokens, model, drop_short: bool,
               store: FeatureStore | None = None) -> dict:
    """Features (read lazily) + CTC targets of one split; with `drop_short`, drop utterances CTC cannot align.

    "lengths" are what train.batch_frames counts (`model.batch_lengths`: input frames for
    log-mels, encoder frames for waveforms), taken from the index. `store`: the split when already open.
    """
    store = store or load_features(folder, split)
    texts = store.texts
    targets = [tokens.encode(t) for t in texts]
    keep = list(range(len(store)))
    inputs = torch.tensor(store.frames)
    if drop_short:
        out = model.output_lengths(inputs).tolist()
        # CTC needs one frame per token plus a blank between repeated tokens.
        need = [len(t) + sum(a == b for a, b in zip(t, t[1:])) for t in targets]
        keep = [i for i in keep if out[i] >= need[i]]
        if len(keep) < len(store):
            print(f"warning: {index_path(folder, split)}: dropped {len(store) - len(keep)} utterances too short "
                  "for their text", file=sys.stderr, flush=True)
    if not keep:
        raise UserError(f"{index_path(folder, split)}: no usable utterances")
    lengths = model.batch_lengths(inputs).tolist()
    return {"feats": Subset(store, keep), "texts": [texts[i] for i in keep],
            "targets": [targets[i] for i in keep], "lengths": [lengths[i] for i in keep],
            "frames": [store.frames[i] for i in keep]}


def sorted_batches(lengths: list[int], batch_frames: int) -> list[list[int]]:
    """Index batches in length order with padded size (n * longest) <= batch_frames."""
    batches, current = [], []
    for i in sorted(range(len(lengths)), key=lambda j: (lengths[j], j)):
        if current and lengths[i] * (len(current) + 1) > batch_frames:
            batches.append(current)
            current = []
        current.append(i)
    return batches + ([current] if current else [])


@torch.no_grad()
def batched_forward(model, feats, frames: list[int], batch_frames: int, device: torch.device,
                    dtype: torch.dtype | None = None) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (indices, logprobs [B, T', V] float32 on device, out_lengths [B]) over all utterances.

    `feats[i]` is utterance i [frames[i], dim] (a list or a lazily read `FeatureStore`); only a
    batch's utterances are read at a time. `dtype` (e.g. torch.bfloat16) turns on autocast;
    log-softmax is always taken in float32. `batch_frames` counts `model.batch_lengths` (input
    frames, or encoder frames of waveforms).
    """
    lengths = model.batch_lengths(torch.tensor(frames, dtype=torch.long)).tolist()
    for idx in sorted_batches(lengths, batch_frames):
        x, lens = pad_batch(feats, idx)
        with autocast(device, dtype):
            logits, out_lens = model(x.to(device), lens.to(device))
        yield idx, logits.float().log_softmax(-1), out_lens
