"""python bench/train_overhead.py [--features DIR --tokenizer DIR] [--config stage.json] [--steps 20] [--rounds 3] [--threads 2]

Overhead of asrsweep.acoustic.train's loop (batching, padding, SpecAugment, per-step seeding, NaN checks,
logging, checkpoint cadence) over a bare forward/backward/step loop on the same batches.
The two alternate in rounds of --steps steps in one process (fair under a noisy, shared CPU);
dev evaluation is real model work, not overhead: it is timed separately. Without --features it
fabricates a corpus (random 80-mel features, char tokenizer). Goal: overhead <= 5%.
"""

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from asrsweep.acoustic.batching import epoch_batches, pad_batch, pad_targets  # noqa: E402
from asrsweep.acoustic.model import ModelConfig, build_model  # noqa: E402
from asrsweep.acoustic.train import Trainer, TrainConfig, TrainPaths  # noqa: E402

DEFAULT = {"seed": 1, "model": {}, "train": {"checkpoint_every": 10}}


def fabricate(root: Path) -> tuple[Path, Path]:
    """A corpus of 300 utterances (150-450 frames, 80 mels) with a char tokenizer."""
    from test_train import fake_corpus  # the tests' fabricator, reused

    corpus = fake_corpus(root, n_train=300, n_dev=20, n_mels=80)
    return corpus["features"], corpus["tokenizer"]


def bare_loop(model, opt, feats, targets, batches, grad_clip):
    """The minimum: pad, forward, CTC, backward, clip, step."""
    for idx in batches:
        x, lengths = pad_batch(feats, idx)
        y, y_lengths = pad_targets(targets, idx)
        logits, out_lengths = model(x, lengths)
        loss = F.ctc_loss(logits.log_softmax(-1).transpose(0, 1), y, out_lengths, y_lengths, reduction="sum") / len(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()


def batch_sequence(trainer: Trainer, total: int) -> list[list[int]]:
    """The first `total` batches the trainer will take (epochs in order)."""
    out, epoch = [], 0
    while len(out) < total:
        out += epoch_batches(trainer.train["lengths"], trainer.cfg.batch_frames, trainer.seed, epoch)
        epoch += 1
    return out[:total]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features")
    parser.add_argument("--tokenizer")
    parser.add_argument("--config", help="stage config.json (seed, model, train); default: recipe defaults")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    stage = json.loads(Path(args.config).read_text()) if args.config else DEFAULT
    work = Path(tempfile.mkdtemp(prefix="train_overhead."))
    features, tokenizer = (Path(args.features), Path(args.tokenizer)) if args.features else fabricate(work)
    train_cfg = TrainConfig(**stage["train"])
    train_cfg = dataclasses.replace(train_cfg, eval_every=0, max_steps=args.steps * (args.rounds + 1))
    paths = TrainPaths(features, tokenizer, work / "out", work / "ckpt")
    trainer = Trainer(train_cfg, ModelConfig(**stage["model"]), stage.get("seed", 1), paths, threads=args.threads)
    trainer.eval_and_log = lambda: None  # timed separately below
    batches = batch_sequence(trainer, train_cfg.max_steps)
    torch.manual_seed(0)
    model = build_model(trainer.model_args)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr)
    real, bare = [], []
    for rnd in range(args.rounds + 1):  # round 0 warms both up and is not counted
        span = batches[rnd * args.steps:(rnd + 1) * args.steps]
        trainer.cfg = dataclasses.replace(train_cfg, max_steps=(rnd + 1) * args.steps)
        t0 = time.perf_counter()
        trainer.run()
        t1 = time.perf_counter()
        bare_loop(model, opt, trainer.train["feats"], trainer.train["targets"], span, train_cfg.grad_clip)
        t2 = time.perf_counter()
        if rnd:
            real.append(t1 - t0)
            bare.append(t2 - t1)
            print(f"round {rnd}: train loop {t1 - t0:.2f} s, bare loop {t2 - t1:.2f} s", flush=True)
    t0 = time.perf_counter()
    trainer.evaluate()
    eval_s = time.perf_counter() - t0
    ratio = sum(real) / sum(bare)
    print(f"model {trainer.model_args}\nsteps/round {args.steps}, rounds {args.rounds}, threads {args.threads}, "
          f"checkpoint_every {train_cfg.checkpoint_every}")
    print(f"train loop {sum(real):.2f} s  bare loop {sum(bare):.2f} s  ratio {ratio:.3f}  "
          f"overhead {100 * (ratio - 1):+.1f}%  (goal <= +5%)")
    print(f"one dev evaluation ({len(trainer.dev['feats'])} utts): {eval_s:.2f} s; "
          f"per step {1000 * sum(real) / (args.rounds * args.steps):.0f} ms")
    if not math.isfinite(ratio):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
