"""python -m asrsweep.acoustic.train --config <stage>/config.json --features <R/E/features/k> --tokenizer <R/E/tokenizer/k> --outdir <R/E/train/k> --checkpoint-dir <R/E/checkpoints/train-k> [--threads N] [--continue]

Trains the CTC model (sections `model`, `train`, top-level `seed`): a built-in encoder from
scratch, or fine-tunes a pretrained one (`model.encoder: hf`, see `asrsweep.acoustic.hf_encoder`). Resumes from the newest valid
checkpoint in --checkpoint-dir (bit-exact on CPU); SIGTERM/SIGUSR1 save a checkpoint at the next
step boundary and exit 75. Writes model.pt (best dev CER), train_log.tsv and train.json (whose
`resumed_from` lists resumes from a checkpoint trained under other `train` settings).
Under torchrun (WORLD_SIZE > 1) it runs DDP: nccl on CUDA, gloo on CPU; the global batch is
WORLD_SIZE x train.batch_frames and each rank reads only its share of it (asrsweep.acoustic.loader),
so the losses equal one process's with the same global batch. Over several nodes (`train.nodes`)
the workflow starts it through `asrsweep.acoustic.launch` (srun + torchrun).
"""

import argparse
import contextlib
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from asrsweep.acoustic.batching import SpecAugmentConfig, epoch_batches, pad_targets, spec_augment
from asrsweep.acoustic.finetune import new_model, param_groups
from asrsweep.acoustic.forward import autocast, autocast_dtype, batched_forward, load_features, load_split, use_threads
from asrsweep.acoustic.loader import Batch, share_batches
from asrsweep.acoustic.model import ModelConfig, architecture, count_params
from asrsweep.core.checkpoint import (EXIT_PREEMPTED, REQUIRED, StopSignal, exclusive, latest_valid, list_checkpoints,
                                      load_init_weights, resume_record, rng_state, save_checkpoint, set_rng_state)
from asrsweep.core.common import (UserError, cli_main, load_section, open_outdir, read_json, torch_save_atomic,
                                  write_json_atomic, write_text_atomic)
from asrsweep.core.schedule import lr_factor
from asrsweep.core.tokens import Tokens, ctc_collapse, decode_ids

LOG_COLUMNS = ("step", "epoch", "lr", "train_loss", "dev_loss", "dev_cer", "seconds")
CHECKPOINT_KEYS = REQUIRED | {"epoch", "index", "train_config"}


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
    resumes: list = dataclasses.field(default_factory=list)  # resumes under changed settings (resume_record)


@dataclasses.dataclass(frozen=True)
class TrainPaths:
    """Where a training reads and writes (the step's path flags)."""

    features: Path  # train and dev of the feature store (asrsweep.data.feature_store)
    tokenizer: Path  # spm.model / tokens.txt
    outdir: Path  # model.pt, train_log.tsv, train.json
    checkpoint_dir: Path  # ckpt-<step>.pt, resumed from when present


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Section `train` of the recipe (defaults: workflow/schemas/recipe.schema.yaml)."""

    max_steps: int = 580  # optimizer steps in total (raise it to continue a finished run)
    batch_frames: int = 16000  # padded input frames per batch and rank (global batch: ranks x this)
    lr: float = 2e-3  # peak AdamW learning rate
    warmup_steps: int = 100  # linear warmup steps
    schedule: str = "cosine"  # decay after warmup to 0 at max_steps: cosine | linear
    weight_decay: float = 0.01  # AdamW weight decay (matrices only, not biases/norms)
    grad_clip: float = 5.0  # max global gradient norm
    eval_every: int = 100  # dev loss + greedy CER every N steps (and at the end); 0 = end only
    checkpoint_every: int = 100  # checkpoint every N steps (and at the end, and on SIGTERM); 0 = not periodic
    keep_checkpoints: int = 2  # newest checkpoints kept in --checkpoint-dir
    specaugment: SpecAugmentConfig = dataclasses.field(default_factory=SpecAugmentConfig)
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | fp32 | bf16
    compile: bool = False  # torch.compile the model (CUDA only; ignored with a note on CPU)
    init_from: str | None = None  # fork: weights of a model.pt / ckpt-*.pt / dir of another run
    encoder_lr_mult: float = 1.0  # LR multiplier of every parameter but the CTC head
    head_lr_mult: float = 1.0  # LR multiplier of the CTC head
    freeze_encoder_steps: int = 0  # encoder hf: first N steps train the head only (encoder without gradients)
    loader_workers: int = 2  # on CUDA: processes reading and padding batches ahead of the step (0 = in the trainer)
    nodes: int = 1  # SLURM nodes of the training job, `gpus` each (the workflow launches it; > 1: srun + torchrun)

    def __post_init__(self):
        if isinstance(self.specaugment, dict):  # built directly (tests, bench) rather than by load_section
            object.__setattr__(self, "specaugment", SpecAugmentConfig(**self.specaugment))
        checks = {
            "max_steps": self.max_steps >= 1, "batch_frames": self.batch_frames >= 1, "lr": self.lr > 0,
            "warmup_steps": self.warmup_steps >= 0, "schedule": self.schedule in ("cosine", "linear"),
            "grad_clip": self.grad_clip > 0, "eval_every": self.eval_every >= 0,
            "checkpoint_every": self.checkpoint_every >= 0, "keep_checkpoints": self.keep_checkpoints >= 1,
            "precision": self.precision in ("auto", "fp32", "bf16"), "encoder_lr_mult": self.encoder_lr_mult >= 0,
            "head_lr_mult": self.head_lr_mult > 0, "freeze_encoder_steps": self.freeze_encoder_steps >= 0,
            "loader_workers": self.loader_workers >= 0, "nodes": self.nodes >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UserError(f"train.{bad[0]}: invalid value {getattr(self, bad[0])!r}")


def setup_device(threads: int | None) -> tuple[int, int, torch.device]:
    """(rank, world, device); starts the DDP process group under torchrun. CPU when CUDA is absent."""
    use_threads(threads)
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    # CUDA_VISIBLE_DEVICES may be set on a GPU-less node (fake SLURM GPUs): trust is_available only.
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
        torch.use_deterministic_algorithms(True)  # exact resume is promised on CPU
    if world > 1:
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


class Trainer:
    """Setup -> `run()` (train loop with eval and checkpoints) -> `finish()` writes the outputs."""

    def __init__(self, cfg: TrainConfig, model_cfg: ModelConfig, seed: int, paths: TrainPaths,
                 threads: int | None = None, resume_required: bool = False):
        self.cfg, self.seed, self.paths = cfg, seed, paths
        self.rank, self.world, self.device = setup_device(threads)
        self.tokens = Tokens.load(paths.tokenizer)
        train_store = load_features(paths.features, "train")
        n_mels = train_store.dim()
        self.model, self.model_args, self.pretrained = new_model(model_cfg, cfg, n_mels, self.tokens.vocab_size, seed)
        self.model.to(self.device)
        self.train = load_split(paths.features, "train", self.tokens, self.model, True, train_store)
        self.dev = load_split(paths.features, "dev", self.tokens, self.model, drop_short=False)
        groups = param_groups(self.model, cfg.lr, cfg.weight_decay, cfg.encoder_lr_mult, cfg.head_lr_mult)
        self.opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self.lr_at)
        self.progress = Progress()
        self.restore(paths.checkpoint_dir, resume_required)
        self.dtype = autocast_dtype(cfg.precision, self.device)
        self.net = self.wrap()
        self.stop = StopSignal()  # entered around `run()` by the CLI; the bench never signals
        self.t0 = time.time()

    def lr_at(self, step: int) -> float:
        """The LR multiplier of 0-based `step` under this run's schedule."""
        return lr_factor(step, self.cfg.warmup_steps, self.cfg.max_steps, self.cfg.schedule)

    def restore(self, ckdir: Path, required: bool) -> None:
        """Resume from the newest valid checkpoint, else fork from init_from, else start fresh."""
        found = latest_valid(ckdir, CHECKPOINT_KEYS)
        if found is None and required:
            raise UserError(f"{ckdir}: --continue given but no valid checkpoint there; drop --continue to start fresh")
        if found is None:
            if self.cfg.init_from:
                self.load_weights(*load_init_weights(self.cfg.init_from), self.cfg.init_from)
            return
        path, blob = found
        if blob["model_args"] != self.model_args:
            diff = sorted(k for k in set(blob["model_args"]) | set(self.model_args)
                          if blob["model_args"].get(k) != self.model_args.get(k))
            raise UserError(f"{ckdir}: checkpoint model differs from config in {', '.join(diff)}; "
                            "use a new --checkpoint-dir or train.init_from")
        self.model.load_state_dict(blob["model"])
        self.opt.load_state_dict(blob["optimizer"])
        self.sched.load_state_dict(blob["scheduler"])
        set_rng_state(blob["rng"])  # the step RNGs are reseeded per step; this covers everything else
        fields = {f.name for f in dataclasses.fields(Progress)}
        self.progress = Progress(**{k: blob[k] for k in fields if k in blob})
        changed = resume_record(path, blob["step"], blob["train_config"], dataclasses.asdict(self.cfg), "train")
        if changed:
            self.progress.resumes.append(changed)
        self.say(f"resumed from {path} (step {blob['step']})")

    def load_weights(self, args: dict, weights: dict, source: str) -> None:
        """Fork: copy another run's weights (same architecture up to dropout); optimizer stays fresh."""
        mine, theirs = architecture(self.model_args), architecture(args)
        diff = [k for k in mine if theirs.get(k) != mine[k]]
        if diff:
            raise UserError(f"train.init_from: {source}: model differs in {', '.join(diff)}")
        self.model.load_state_dict(weights)
        self.say(f"initialised weights from {source}")

    def wrap(self):
        """The module the train step calls: DDP and/or torch.compile around `self.model`."""
        net = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # layer drop and the frozen warm-up leave encoder parameters without gradients
            net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids,
                                                            find_unused_parameters=self.pretrained is not None)
        if self.cfg.compile and self.device.type == "cuda":
            net = torch.compile(net, dynamic=True)
        elif self.cfg.compile:
            self.say("note: train.compile applies to CUDA only; running eager on CPU")
        return net

    def say(self, message: str) -> None:
        """Print on rank 0 only."""
        if self.rank == 0:
            print(message, file=sys.stderr, flush=True)

    def step_seed(self, step: int) -> int:
        """Seed of the RNGs used in `step` (dropout, SpecAugment): a pure function of seed, step, rank."""
        return (self.seed * 1_000_003 + step) * 1024 + self.rank

    def train_step(self, batch: Batch) -> float:
        """One optimizer step on this rank's share of a global batch; returns the global batch's mean
        CTC loss per utterance (the same number on every rank, and for any number of ranks)."""
        seed = self.step_seed(self.progress.step)
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)  # the HF encoders draw their time/feature masks from numpy
        feats, lengths, spec = batch.feats, batch.lengths, self.cfg.specaugment
        if self.pretrained is not None:  # the encoder masks its own frames (model.hf), not the input
            self.model.frozen = self.progress.step < self.cfg.freeze_encoder_steps
        elif spec.freq_masks or spec.time_masks:
            feats = spec_augment(feats, lengths, spec, torch.Generator().manual_seed(seed))
        with autocast(self.device, self.dtype):
            logits, out_lengths = self.net(feats.to(self.device, non_blocking=True), lengths.to(self.device))
        logp = logits.float().log_softmax(-1).transpose(0, 1)  # [T', B, V]
        loss = F.ctc_loss(logp, batch.targets.to(self.device), out_lengths, batch.target_lengths.to(self.device),
                          reduction="sum") / batch.total
        self.opt.zero_grad(set_to_none=True)
        # DDP averages the gradients over ranks: scaled by world they are those of the global mean.
        (loss * self.world if self.world > 1 else loss).backward()
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip))
        value = self.global_sum(loss.detach())
        if not (math.isfinite(value) and math.isfinite(norm)):
            self.diverged(value, norm)
        self.opt.step()
        self.sched.step()
        return value

    def diverged(self, loss: float, norm: float) -> None:
        """Stop without saving: the newest checkpoint on disk is the last good state."""
        found = list_checkpoints(self.paths.checkpoint_dir)
        kept = f"last good checkpoint kept: {found[0][1]}" if found else "no checkpoint was written yet"
        raise UserError(f"train: non-finite loss {loss} / grad norm {norm} at step {self.progress.step + 1}; "
                        f"{kept}; lower train.lr or check the features for inf/nan")

    def run(self) -> None:
        """Train until max_steps (or a stop signal: checkpoint, then exit 75)."""
        p, bar, cuda = self.progress, self.progress_bar(), self.device.type == "cuda"
        # Workers only feed a GPU: on CPU the model's threads already use the cores they would take.
        workers = self.cfg.loader_workers if cuda else 0
        while p.step < self.cfg.max_steps:
            batches = self.epoch(p.epoch)
            for batch in share_batches(self.train, batches, p.index, self.rank, self.world, workers, cuda):
                loss = self.train_step(batch)
                p.step, p.index, p.loss_sum, p.loss_n = p.step + 1, p.index + 1, p.loss_sum + loss, p.loss_n + 1
                rollover = p.index == len(batches)
                if rollover:  # the checkpointed position already points at the next epoch
                    p.epoch, p.index = p.epoch + 1, 0
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.3f}", epoch=p.epoch)
                self.at_boundary()
                if rollover or p.step >= self.cfg.max_steps:
                    break
        if bar is not None:
            bar.close()

    def epoch(self, epoch: int) -> list[list[int]]:
        """The global batches of `epoch` (budget: ranks x batch_frames; at least one utterance per rank)."""
        batches = epoch_batches(self.train["lengths"], self.cfg.batch_frames * self.world, self.seed, epoch,
                                min_size=self.world)
        if not batches or len(batches[0]) < self.world:
            raise UserError(f"{self.paths.features}: {len(self.train['lengths'])} training utterances "
                            f"for {self.world} DDP ranks; use fewer GPUs or more data")
        return batches

    def global_sum(self, value: torch.Tensor) -> float:
        """`value` summed over the DDP ranks (itself in one process)."""
        if self.world > 1:
            value = value.clone()
            torch.distributed.all_reduce(value)
        return float(value)

    def progress_bar(self):
        """A tqdm bar on a terminal (rank 0), else None: plain log lines go to stderr instead."""
        if self.rank != 0 or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=self.cfg.max_steps, initial=self.progress.step, unit="step", dynamic_ncols=True)

    def at_boundary(self) -> None:
        """After a step: eval/log, checkpoint, and honour a pending stop signal."""
        p, cfg = self.progress, self.cfg
        last = p.step >= cfg.max_steps
        if last or (cfg.eval_every and p.step % cfg.eval_every == 0):
            self.eval_and_log()
        stop = self.stop.requested
        if self.world > 1:  # every rank must stop at the same step
            flag = torch.tensor([float(stop)], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if last or stop or (cfg.checkpoint_every and p.step % cfg.checkpoint_every == 0):
            self.save()
        if stop:
            self.say(f"stop signal: checkpoint saved at step {p.step}; exiting {EXIT_PREEMPTED}")
            raise SystemExit(EXIT_PREEMPTED)

    def eval_and_log(self) -> None:
        """Dev loss + greedy CER on rank 0; keep the best weights; append a log row."""
        p = self.progress
        if self.rank == 0:
            dev_loss, dev_cer = self.evaluate()
            if p.best is None or dev_cer < p.best["dev_cer"]:
                weights = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                p.best = {"step": p.step, "dev_cer": dev_cer, "dev_loss": dev_loss, "state_dict": weights}
            row = dict(step=p.step, epoch=p.epoch, lr=self.cfg.lr * self.lr_at(self.sched.last_epoch),
                       train_loss=p.loss_sum / max(1, p.loss_n), dev_loss=dev_loss, dev_cer=dev_cer,
                       seconds=p.seconds + time.time() - self.t0)
            p.log.append(row)
            if not sys.stderr.isatty():
                self.say("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
        p.loss_sum, p.loss_n = 0.0, 0
        if self.world > 1:
            torch.distributed.barrier()

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(mean dev CTC loss per utterance, greedy dev CER) with the model in eval mode."""
        import jiwer

        self.model.eval()
        hyps, total = [""] * len(self.dev["feats"]), 0.0
        for idx, logp, out_lens in batched_forward(self.model, self.dev["feats"], self.dev["frames"], self.cfg.batch_frames,
                                                   self.device, self.dtype):
            targets, target_lengths = pad_targets(self.dev["targets"], idx)
            total += float(F.ctc_loss(logp.transpose(0, 1), targets.to(self.device), out_lens,
                                      target_lengths.to(self.device), reduction="sum", zero_infinity=True))
            best = logp.argmax(-1).cpu()
            for row, i in enumerate(idx):
                hyps[i] = decode_ids(self.tokens.pieces, ctc_collapse(best[row, : int(out_lens[row])].tolist()))
        self.model.train()
        return total / len(hyps), float(jiwer.cer(self.dev["texts"], hyps))

    def save(self) -> None:
        """Checkpoint the full training state (rank 0), atomically, pruning old ones."""
        if self.rank == 0:
            p = self.progress
            state = {f.name: getattr(p, f.name) for f in dataclasses.fields(Progress)}
            state.update(seconds=p.seconds + time.time() - self.t0, model_args=self.model_args,
                         model=self.model.state_dict(), optimizer=self.opt.state_dict(),
                         scheduler=self.sched.state_dict(), rng=rng_state(), seed=self.seed,
                         train_config=dataclasses.asdict(self.cfg))
            save_checkpoint(self.paths.checkpoint_dir, state, self.cfg.keep_checkpoints)

    def finish(self, stage_config: dict) -> dict | None:
        """Write model.pt (best dev CER), train_log.tsv and train.json (rank 0); returns train.json's content."""
        p, outdir, summary = self.progress, self.paths.outdir, None
        if self.rank == 0:
            best, n_params = p.best, count_params(self.model)
            torch_save_atomic({"model_args": self.model_args, "state_dict": best["state_dict"],
                               "tokens": self.tokens.pieces, "step": best["step"], "dev_cer": best["dev_cer"],
                               "n_params": n_params, "pretrained": self.pretrained}, outdir / "model.pt")
            lines = ["\t".join(LOG_COLUMNS)] + ["\t".join(_fmt(r[c]) for c in LOG_COLUMNS) for r in p.log]
            write_text_atomic(outdir / "train_log.tsv", "\n".join(lines) + "\n")
            seconds = p.seconds + time.time() - self.t0
            summary = {"steps": p.step, "best_step": best["step"], "dev_loss": best["dev_loss"],
                       "dev_cer": best["dev_cer"], "n_params": n_params, "train_seconds": round(seconds, 1),
                       "resumed_from": p.resumes, "config": stage_config}
            if self.pretrained:
                summary["pretrained"] = self.pretrained  # name, folder, model type, weights sha256
            write_json_atomic(outdir / "train.json", summary)
            self.say(f"done: {p.step} steps, best dev CER {best['dev_cer']:.4f} at step {best['step']}")
        if self.world > 1:
            torch.distributed.destroy_process_group()
        return summary


def _fmt(value) -> str:
    """A log cell: floats with 6 significant digits."""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def run(argv: list[str] | None = None) -> dict | None:
    """Train as the flags say (see the module docstring); returns train.json's content (rank 0)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="stage config.json (seed, model, train)")
    parser.add_argument("--features", required=True, type=Path, help="features dir with train.index.tsv and dev.index.tsv (+ shards)")
    parser.add_argument("--tokenizer", required=True, type=Path, help="tokenizer dir with spm.model and tokens.txt")
    parser.add_argument("--outdir", required=True, type=Path, help="output dir: model.pt train_log.tsv train.json")
    parser.add_argument("--checkpoint-dir", required=True, type=Path, help="checkpoints (resumed from when present)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--continue", dest="resume_required", action="store_true",
                        help="require an existing checkpoint to resume from")
    args = parser.parse_args(argv)
    stage_config = read_json(args.config)
    cfg = load_section(args.config, "train", TrainConfig)
    model_cfg = load_section(args.config, "model", ModelConfig)
    seed = stage_config.get("seed", 0)
    if not isinstance(seed, int):
        raise UserError(f"{args.config}: seed: {seed!r} is not an integer")
    paths = TrainPaths(args.features, args.tokenizer, args.outdir, args.checkpoint_dir)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    if rank0:
        open_outdir(paths.outdir, argv)
    with exclusive(paths.checkpoint_dir) if rank0 else contextlib.nullcontext():
        trainer = Trainer(cfg, model_cfg, seed, paths, args.threads, args.resume_required)
        with trainer.stop:
            trainer.run()
        return trainer.finish(stage_config)


def main(argv: list[str] | None = None) -> dict | None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
