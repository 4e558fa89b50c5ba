"""python -m asrsweep.acoustic.emissions --model <R/E/train/k>/model.pt --features <R/E/features/k> --outdir <R/E/emissions/k> [--splits dev test] [--threads N] [--batch-frames N]

Runs the trained CTC model over feature splits (on CUDA when available) and writes `{split}.pt` =
{"utt_ids", "texts", "logprobs": list of float16 [T', V] log-softmax rows (blank at column 0),
"tokens": list[str]}. --batch-frames counts the model's `batch_lengths`: input frames of a
built-in model (default 40000), encoder frames of a pretrained `hf` one (default 4000 = 80 s of
audio at wav2vec2's 20 ms).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from asrsweep.acoustic.forward import batched_forward, load_features, resolve_device, use_threads
from asrsweep.core.common import cli_main, open_outdir, torch_save_atomic

DEFAULT_BATCH_FRAMES = {"builtin": 40000, "hf": 4000}


def split_emissions(model, tokens: list[str], store, batch_frames: int, device) -> dict:
    """Emissions dict for one features split (a `FeatureStore`, read a batch at a time), in index order."""
    logprobs: list[torch.Tensor | None] = [None] * len(store)
    for idx, logp, out_lens in batched_forward(model, store, store.frames, batch_frames, device):
        for row, i in enumerate(idx):
            logprobs[i] = logp[row, : int(out_lens[row])].to(torch.float16).cpu().clone()
    return {"utt_ids": list(store.utt_ids), "texts": list(store.texts), "logprobs": logprobs,
            "tokens": list(tokens)}


def run(argv: list[str] | None = None) -> dict:
    """Write one emissions file per split; returns {split: number of utterances}."""
    from asrsweep.acoustic.model import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model.pt written by asrsweep.acoustic.train")
    parser.add_argument("--features", required=True, help="features dir holding {split}.index.tsv and its shards")
    parser.add_argument("--outdir", required=True, help="output dir for {split}.pt")
    parser.add_argument("--splits", nargs="+", default=["dev", "test"], help="splits (default: dev test)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch-frames", type=int, default=None,
                        help="padded frames per batch (default 40000; 4000 encoder frames for an hf model)")
    args = parser.parse_args(argv)
    use_threads(args.threads)
    outdir = open_outdir(args.outdir, argv)
    device = resolve_device("auto")
    model, tokens = load_model(args.model)
    model.to(device)
    batch_frames = args.batch_frames or DEFAULT_BATCH_FRAMES["hf" if model.args.get("encoder") == "hf" else "builtin"]
    counts = {}
    for split in args.splits:
        out = split_emissions(model, tokens, load_features(Path(args.features), split), batch_frames, device)
        torch_save_atomic(out, outdir / f"{split}.pt")
        counts[split] = len(out["utt_ids"])
        print(f"emissions: {split}: {counts[split]} utterances -> {outdir / split}.pt", flush=True)
    return counts


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
