"""python -m asrsweep.acoustic.emissions --model <R/E/train/k>/model.pt --features <R/E/features/k> --outdir <R/E/emissions/k> [--splits dev test] [--threads N] [--batch-frames N]

Runs the trained CTC model over feature splits and writes `{split}.pt` = {"utt_ids", "texts",
"logprobs": list of float16 [T', V] log-softmax rows (blank at column 0), "tokens": list[str]}.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Iterator

import torch

from asrsweep.acoustic.batching import pad_batch
from asrsweep.core.common import UserError, cli_main, record_command, torch_save_atomic


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


def autocast(device: torch.device, dtype: torch.dtype | None):
    """Autocast to `dtype` on `device`, or a no-op context for full precision (dtype None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


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
    """
    lengths = [f.shape[0] for f in feats]
    for idx in sorted_batches(lengths, batch_frames):
        x, lens = pad_batch(feats, idx)
        with autocast(device, dtype):
            logits, out_lens = model(x.to(device), lens.to(device))
        yield idx, logits.float().log_softmax(-1), out_lens


def split_emissions(model, tokens: list[str], blob: dict, batch_frames: int, device) -> dict:
    """Emissions dict for one features split, utterances in their original order."""
    logprobs: list[torch.Tensor | None] = [None] * len(blob["feats"])
    for idx, logp, out_lens in batched_forward(model, blob["feats"], batch_frames, device):
        for row, i in enumerate(idx):
            logprobs[i] = logp[row, : int(out_lens[row])].to(torch.float16).cpu().clone()
    return {"utt_ids": list(blob["utt_ids"]), "texts": list(blob["texts"]), "logprobs": logprobs,
            "tokens": list(tokens)}


def main(argv: list[str] | None = None) -> None:
    """Parse flags and write one emissions file per split."""
    cli_main(_run, argv)


def _run(argv: list[str] | None) -> None:
    from asrsweep.acoustic.model import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model.pt written by asrsweep.acoustic.train")
    parser.add_argument("--features", required=True, help="features dir holding {split}.pt")
    parser.add_argument("--outdir", required=True, help="output dir for {split}.pt")
    parser.add_argument("--splits", nargs="+", default=["dev", "test"], help="splits (default: dev test)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch-frames", type=int, default=40000, help="padded frames per batch")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    outdir = Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    record_command(outdir)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, tokens = load_model(args.model)
    model.to(device)
    for split in args.splits:
        blob = load_features(Path(args.features) / f"{split}.pt")
        out = split_emissions(model, tokens, blob, args.batch_frames, device)
        torch_save_atomic(out, outdir / f"{split}.pt")
        print(f"emissions: {split}: {len(out['utt_ids'])} utterances -> {outdir / split}.pt", flush=True)


if __name__ == "__main__":
    main()
