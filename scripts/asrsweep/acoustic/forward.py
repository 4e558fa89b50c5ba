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


def load_features(path: Path) -> dict:
    """Read a features `{split}.pt` and check its keys and per-utterance lists."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; run asrsweep.data.compute_features first")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    keys = ("utt_ids", "texts", "feats")
    if not isinstance(blob, dict) or any(k not in blob for k in keys):
        raise UserError(f"{path}: needs keys {', '.join(keys)}")
    if not (len(blob["utt_ids"]) == len(blob["texts"]) == len(blob["feats"])):
        raise UserError(f"{path}: utt_ids, texts and feats differ in length")
    return blob


def load_split(path: Path, tokens: Tokens, model, drop_short: bool, blob: dict | None = None) -> dict:
    """Features + CTC targets of one split; with `drop_short`, drop utterances CTC cannot align.

    "lengths" are what train.batch_frames counts (`model.batch_lengths`: input frames for
    log-mels, encoder frames for waveforms). `blob`: the file's content when already read.
    """
    blob = blob or load_features(path)
    feats, texts = blob["feats"], blob["texts"]
    targets = [tokens.encode(t) for t in texts]
    keep = list(range(len(feats)))
    inputs = torch.tensor([f.shape[0] for f in feats])
    if drop_short:
        out = model.output_lengths(inputs).tolist()
        # CTC needs one frame per token plus a blank between repeated tokens.
        need = [len(t) + sum(a == b for a, b in zip(t, t[1:])) for t in targets]
        keep = [i for i in keep if out[i] >= need[i]]
        if len(keep) < len(feats):
            print(f"warning: {path}: dropped {len(feats) - len(keep)} utterances too short for their text",
                  file=sys.stderr, flush=True)
    if not keep:
        raise UserError(f"{path}: no usable utterances")
    lengths = model.batch_lengths(inputs).tolist()
    return {"feats": [feats[i] for i in keep], "texts": [texts[i] for i in keep],
            "targets": [targets[i] for i in keep], "lengths": [lengths[i] for i in keep]}


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
def batched_forward(model, feats: list[torch.Tensor], batch_frames: int, device: torch.device,
                    dtype: torch.dtype | None = None) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (indices, logprobs [B, T', V] float32 on device, out_lengths [B]) over all utterances.

    `dtype` (e.g. torch.bfloat16) turns on autocast; log-softmax is always taken in float32.
    `batch_frames` counts `model.batch_lengths` (input frames, or encoder frames of waveforms).
    """
    lengths = model.batch_lengths(torch.tensor([f.shape[0] for f in feats])).tolist()
    for idx in sorted_batches(lengths, batch_frames):
        x, lens = pad_batch(feats, idx)
        with autocast(device, dtype):
            logits, out_lens = model(x.to(device), lens.to(device))
        yield idx, logits.float().log_softmax(-1), out_lens
