"""python -m asrsweep.rescoring.train_lm --config C --text DATA/lm.txt --outdir LM --checkpoint-dir CKPT

Train the small GPT-2-style Transformer LM used to rescore n-best lists.

setup (tokenizer trained locally with `tokenizers`, model from `GPT2Config`: no download) ->
train loop (AdamW, linear warmup then linear decay, deterministic batches) -> save -> cleanup.
A deterministic ~`dev_fraction` of the sentences (chosen by a hash of the sentence, so duplicates
never straddle train and dev) is held out to report dev perplexity.

Checkpoints `CKPT/ckpt-<step>.pt` (atomic; the last two kept) hold model, optimizer, scheduler,
step, RNG states, tokenizer, model arguments, config and the log so far; they are written every
`checkpoint_every` steps and when SIGTERM or SIGUSR1 arrives (then the step exits with status
128 + signal number). A rerun resumes from the newest one; a checkpoint whose model arguments
differ from the config is an error. Outputs in LM: tokenizer.json, hf/ (save_pretrained),
lm.json (dev perplexity, steps, n_params, seconds, config), train_log.tsv, command.sh.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import signal
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network, even by accident

import torch

from asrsweep.core.common import (
    UserError,
    atomic_write,
    cli_main,
    load_section,
    open_outdir,
    read_json,
    torch_save_atomic,
    write_json_atomic,
)

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]  # ids 0..3 in every tokenizer we train
PAD, UNK, BOS, EOS = range(4)
LOG_COLUMNS = ["step", "lr", "train_loss", "dev_loss", "dev_ppl", "seconds"]
_SIGNAL: list[int] = []  # set by the signal handler, read by the train loop


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Section `lm` of the stage config (see the final report for descriptions)."""

    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 64
    n_positions: int = 64
    vocab_size: int = 2000
    max_steps: int = 400
    batch_size: int = 32
    lr: float = 2e-3
    warmup_steps: int = 40
    checkpoint_every: int = 100
    eval_every: int = 100
    weight_decay: float = 0.01
    dropout: float = 0.1
    tokenizer: str = "word"
    dev_fraction: float = 0.05


def train_tokenizer(sentences: list[str], kind: str, vocab_size: int):
    """A `tokenizers.Tokenizer` trained on `sentences`: word-level or BPE (▁ marks word starts)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=SPECIALS)
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False)
    else:
        raise UserError(f"lm.tokenizer: '{kind}' is not one of word, bpe")
    tok.train_from_iterator(sentences, trainer=trainer)
    return tok


def encode(tok, sentences: list[str], max_len: int) -> list[list[int]]:
    """Token ids `<s> ... </s>` per sentence, truncated to `max_len` positions."""
    return [([BOS] + e.ids + [EOS])[:max_len] for e in tok.encode_batch(sentences)]


def split_dev(sentences: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """(train, dev): a sentence is dev iff crc32(sentence) falls in the lowest `fraction`."""
    cut = int(fraction * 2**32)
    dev = [s for s in sentences if zlib.crc32(s.encode()) < cut]
    train = [s for s in sentences if zlib.crc32(s.encode()) >= cut]
    if not dev or not train:  # tiny corpora: fall back to the last sentences
        n_dev = max(1, int(round(fraction * len(sentences))))
        train, dev = sentences[:-n_dev], sentences[-n_dev:]
    return train, dev


def model_args(cfg: LMConfig, vocab_size: int) -> dict:
    """GPT2Config keyword arguments (the vocabulary size comes from the tokenizer)."""
    return {"n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd,
            "n_positions": cfg.n_positions, "vocab_size": vocab_size, "resid_pdrop": cfg.dropout,
            "embd_pdrop": cfg.dropout, "attn_pdrop": cfg.dropout,
            "bos_token_id": BOS, "eos_token_id": EOS, "pad_token_id": PAD}


def build_model(args: dict):
    """GPT2LMHeadModel from keyword arguments, no download."""
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(**args))


def make_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (input_ids, attention_mask, labels), each [batch, max_len]; pad labels -100."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    mask = (torch.arange(width)[None, :] < torch.tensor([len(s) for s in seqs])[:, None]).long()
    return ids, mask, ids.masked_fill(mask == 0, -100)


@torch.no_grad()
def dev_loss(model, seqs: list[list[int]], batch_size: int) -> float:
    """Mean negative log-likelihood per predicted token (incl. </s>) over the dev sentences."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(seqs), batch_size):
        ids, mask, labels = make_batch(seqs[i : i + batch_size])
        n = int((labels[:, 1:] != -100).sum())
        total += float(model(input_ids=ids, attention_mask=mask, labels=labels).loss) * n
        count += n
    model.train()
    return total / max(1, count)


def lr_factor(step: int, warmup: int, max_steps: int) -> float:
    """Linear warmup to 1 over `warmup` steps, then linear decay to 0.1 at `max_steps`."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.1, 1.0 - 0.9 * (step - warmup) / max(1, max_steps - warmup))


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint with the highest step in `ckpt_dir`, if any."""
    found = [(int(m.group(1)), p) for p in ckpt_dir.glob("ckpt-*.pt") if (m := re.fullmatch(r"ckpt-(\d+)\.pt", p.name))]
    return max(found)[1] if found else None


def save_checkpoint(ckpt_dir: Path, state: dict) -> Path:
    """Write ckpt-<step>.pt atomically and keep only the two newest checkpoints."""
    model, opt, sched, gen = state["model"], state["optimizer"], state["scheduler"], state["generator"]
    path = ckpt_dir / f"ckpt-{state['step']}.pt"
    torch_save_atomic({
        "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
        "step": state["step"], "rng": {"torch": torch.get_rng_state(), "batches": gen.get_state()},
        "tokenizer": state["tokenizer"].to_str(), "model_args": state["model_args"],
        "config": state["config"], "log": state["log"], "seconds": state["seconds"],
    }, path)
    old = sorted((p for p in ckpt_dir.glob("ckpt-*.pt") if p != path), key=lambda p: p.stat().st_mtime)
    for p in old[:-1]:
        p.unlink(missing_ok=True)
    return path


def setup(cfg: LMConfig, seed: int, text: Path, ckpt_dir: Path) -> dict:
    """Data, tokenizer, model, optimizer, scheduler: fresh, or restored from the newest checkpoint."""
    from tokenizers import Tokenizer

    if not text.exists():
        raise UserError(f"{text}: file not found")
    sentences = [line.strip() for line in text.read_text().splitlines() if line.strip()]
    if len(sentences) < 2:
        raise UserError(f"{text}: needs at least 2 non-empty sentences, found {len(sentences)}")
    train, dev = split_dev(sentences, cfg.dev_fraction)
    torch.manual_seed(seed)
    ckpt_path = latest_checkpoint(ckpt_dir)
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False) if ckpt_path else None
    tok = Tokenizer.from_str(ckpt["tokenizer"]) if ckpt else train_tokenizer(train, cfg.tokenizer, cfg.vocab_size)
    args = model_args(cfg, tok.get_vocab_size())
    if ckpt and ckpt["model_args"] != args:
        raise UserError(f"{ckpt_path}: built with {ckpt['model_args']}, config gives {args}; "
                        f"fix the config or remove {ckpt_dir}")
    model = build_model(args)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.max_steps))
    gen = torch.Generator().manual_seed(seed)
    state = {"model": model, "optimizer": opt, "scheduler": sched, "generator": gen, "tokenizer": tok,
             "model_args": args, "config": dataclasses.asdict(cfg), "step": 0, "log": [], "seconds": 0.0,
             "train": encode(tok, train, cfg.n_positions), "dev": encode(tok, dev, cfg.n_positions)}
    if ckpt:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        gen.set_state(ckpt["rng"]["batches"])
        state.update(step=ckpt["step"], log=ckpt["log"], seconds=ckpt["seconds"])
        print(f"resumed from {ckpt_path} at step {ckpt['step']}", flush=True)
    return state


def _on_signal(signum: int, _frame) -> None:
    """Remember the signal; the train loop checkpoints after the current step and exits."""
    _SIGNAL.append(signum)


def _interrupted(step: int) -> int | None:
    """The signal that asks training to stop after `step`, if one arrived."""
    return _SIGNAL[0] if _SIGNAL else None


def train_loop(cfg: LMConfig, state: dict, ckpt_dir: Path) -> None:
    """Run steps until max_steps; evaluate, log and checkpoint on schedule or on a signal."""
    model, opt, sched, gen = state["model"], state["optimizer"], state["scheduler"], state["generator"]
    seqs, start = state["train"], time.perf_counter() - state["seconds"]
    model.train()
    while state["step"] < cfg.max_steps:
        pick = torch.randint(len(seqs), (cfg.batch_size,), generator=gen).tolist()
        ids, mask, labels = make_batch([seqs[i] for i in pick])
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        loss = loss.detach()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        state["step"] += 1
        step, state["seconds"] = state["step"], time.perf_counter() - start
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            dl = dev_loss(model, state["dev"], cfg.batch_size)
            state["log"].append({"step": step, "lr": sched.get_last_lr()[0], "train_loss": loss.item(),
                                 "dev_loss": dl, "dev_ppl": math.exp(min(dl, 50.0)), "seconds": state["seconds"]})
            print(f"step {step} train_loss {loss.item():.3f} dev_ppl {math.exp(min(dl, 50.0)):.2f}", flush=True)
        signum = _interrupted(step)
        if step % cfg.checkpoint_every == 0 or signum is not None:
            print(f"checkpoint {save_checkpoint(ckpt_dir, state)}", flush=True)
        if signum is not None:
            raise SystemExit(128 + signum)


def save_outputs(cfg: LMConfig, state: dict, outdir: Path) -> dict:
    """tokenizer.json, hf/, train_log.tsv and lm.json in `outdir` (each atomic)."""
    state["model"].save_pretrained(outdir / "hf.tmp")
    if (outdir / "hf").exists():
        import shutil

        shutil.rmtree(outdir / "hf")
    os.replace(outdir / "hf.tmp", outdir / "hf")
    with atomic_write(outdir / "tokenizer.json") as tmp:
        tmp.write_text(state["tokenizer"].to_str())
    with atomic_write(outdir / "train_log.tsv") as tmp:
        rows = ["\t".join(LOG_COLUMNS)] + ["\t".join(str(r[c]) for c in LOG_COLUMNS) for r in state["log"]]
        tmp.write_text("\n".join(rows) + "\n")
    last = state["log"][-1]
    lm_json = {"steps": state["step"], "dev_loss": last["dev_loss"], "dev_perplexity": last["dev_ppl"],
               "n_params": sum(p.numel() for p in state["model"].parameters()),
               "train_seconds": state["seconds"], "vocab_size": state["model_args"]["vocab_size"],
               "n_train_sentences": len(state["train"]), "n_dev_sentences": len(state["dev"]),
               "model_args": state["model_args"], "config": state["config"]}
    write_json_atomic(outdir / "lm.json", lm_json)
    return lm_json


def run(argv: list[str] | None = None) -> dict:
    """setup -> train loop -> save -> cleanup."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.rescoring.train_lm", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="stage config.json (sections lm, seed)")
    parser.add_argument("--text", required=True, type=Path, help="LM training text, one sentence per line")
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--checkpoint-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    open_outdir(args.outdir, argv, "train_lm")
    args.checkpoint_dir.mkdir(parents=True, exist_ok=True)
    cfg = load_section(args.config, "lm", LMConfig)
    seed = int(read_json(args.config).get("seed", 0))
    state = setup(cfg, seed, args.text, args.checkpoint_dir)
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        train_loop(cfg, state, args.checkpoint_dir)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        _SIGNAL.clear()
    lm_json = save_outputs(cfg, state, args.outdir)
    print(f"done: {lm_json['steps']} steps, dev perplexity {lm_json['dev_perplexity']:.2f}", flush=True)
    return lm_json


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
