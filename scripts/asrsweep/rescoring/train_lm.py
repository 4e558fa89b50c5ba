"""python -m asrsweep.rescoring.train_lm --config C --text DATA/lm.txt --eval DATA/dev.tsv DATA/test.tsv --outdir LM --checkpoint-dir CKPT [--threads N] [--device auto]

Train the Transformer LM used to rescore n-best lists: the small GPT-2 from nothing, or, with
`lm.pretrained`, fine-tune any pretrained causal LM with its own tokenizer (`lm.max_steps: 0`:
score with it as it is; `asrsweep.rescoring.causal_lm`).

setup (text from lm.txt and `lm.text` files via `asrsweep.data.lm_text`, put in `lm.text_case`;
tokenizer trained locally with `tokenizers` and model from `GPT2Config`, or both from the
pretrained folder: no download) -> train loop (AdamW, linear warmup then linear decay,
deterministic batches) -> save -> cleanup. A deterministic ~`dev_fraction` of the sentences
(chosen by a hash of the sentence, so duplicates never straddle train and dev) is held out for
dev perplexity, evaluated every `eval_every` steps, at the end, and at step 0 for a pretrained
LM; the model with the lowest dev perplexity is the one saved and used (lm.json `best_step`).
`--device auto` trains on CUDA when present, under bf16 autocast as `asrsweep.acoustic.train`
does; on CPU in fp32, where a resumed run equals an uninterrupted one.

Checkpoints `CKPT/ckpt-<step>.pt` (`asrsweep.core.checkpoint`: folder lock, atomic, the newest
`lm.keep_checkpoints` kept, a corrupt one skipped with a warning) hold model, optimizer,
scheduler, step, RNG states, tokenizer, model arguments, config, the log so far and the best
weights so far; they are written every `checkpoint_every` steps, at the end, and when SIGTERM or SIGUSR1 arrives (then the
step exits 75, as the acoustic trainer does). A rerun resumes from the newest one; a checkpoint
whose model arguments differ from the config is an error, one past `lm.max_steps` is refused,
other changed settings are warned about and listed in lm.json's `resumed_from`. Outputs in LM:
tokenizer.json (builtin), hf/ (save_pretrained of the best model; with its tokenizer for a
pretrained one; none for `max_steps: 0`), lm.json (dev perplexity, best and last step, the
`scorer` score_lm loads, the text report with its dev/test overlap, n_params, seconds, device,
config), train_log.tsv, command.sh.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
import zlib
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the network, even by accident

import torch

from asrsweep.acoustic.forward import DEVICES, autocast, autocast_dtype, resolve_device, use_threads
from asrsweep.core.checkpoint import (EXIT_PREEMPTED, REQUIRED, StopSignal, exclusive, latest_valid, resume_record,
                                      rng_state, save_checkpoint, set_rng_state)
from asrsweep.core.common import UserError, atomic_write, cli_main, load_section, open_outdir, read_json, write_json_atomic
from asrsweep.core.schedule import lr_factor
from asrsweep.data import lm_text
from asrsweep.rescoring import causal_lm

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]  # ids 0..3 in every tokenizer we train
PAD, UNK, BOS, EOS = range(4)
LOG_COLUMNS = ["step", "lr", "train_loss", "dev_loss", "dev_ppl", "seconds"]
CHECKPOINT_KEYS = REQUIRED | {"tokenizer", "config", "log", "seconds"}


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """Section `lm` of the stage config (descriptions and defaults: workflow/schemas/recipe.schema.yaml)."""

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
    keep_checkpoints: int = 2
    pretrained: str = ""
    text_case: str = "as_is"
    text: tuple[str, ...] = ()
    text_mode: str = "append"
    drop_eval_sentences: bool = True

    def __post_init__(self):
        if self.keep_checkpoints < 1:
            raise UserError(f"lm.keep_checkpoints: invalid value {self.keep_checkpoints!r}; keep 1 or more")
        if self.max_steps < 0 or (self.max_steps == 0 and not self.pretrained):
            raise UserError(f"lm.max_steps: {self.max_steps!r}; 0 (score as it is) needs lm.pretrained, "
                            "else train 1 or more steps")
        if self.text_case not in causal_lm.CASES:
            raise UserError(f"lm.text_case: {self.text_case!r} is not one of {', '.join(causal_lm.CASES)}")
        lm_text.check_mode(self.text_mode, "lm")


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
    """Token ids `<s> ... </s>` per sentence of the builtin tokenizer, truncated to `max_len` positions."""
    return causal_lm.builtin_vocab(tok).encode(sentences, max_len)


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


def make_batch(seqs: list[list[int]], pad: int = PAD) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (input_ids, attention_mask, labels), each [batch, max_len]; pad labels -100."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
    mask = (torch.arange(width)[None, :] < torch.tensor([len(s) for s in seqs])[:, None]).long()
    return ids, mask, ids.masked_fill(mask == 0, -100)


def batch_loss(model, seqs: list[list[int]], device: torch.device, dtype: torch.dtype | None,
               pad: int = PAD) -> torch.Tensor:
    """Mean next-token loss of one batch of sentences, on `device` (autocast to `dtype` when given)."""
    ids, mask, labels = (t.to(device) for t in make_batch(seqs, pad))
    with autocast(device, dtype):
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss


@torch.no_grad()
def dev_loss(model, seqs: list[list[int]], batch_size: int, device: torch.device, dtype: torch.dtype | None,
             pad: int = PAD) -> float:
    """Mean negative log-likelihood per predicted token (incl. </s>) over the dev sentences."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(seqs), batch_size):
        batch = seqs[i : i + batch_size]
        n = sum(len(s) - 1 for s in batch)  # predicted tokens: all but <s>
        total += float(batch_loss(model, batch, device, dtype, pad)) * n
        count += n
    model.train()
    return total / max(1, count)


def read_sentences(cfg: LMConfig, text: Path, eval_files: list[Path], data_section: dict | None) -> lm_text.LMText:
    """The non-empty LM sentences in `lm.text_case` (at least two: one for train, one for dev), with their report."""
    found = lm_text.gather(text, cfg.text, cfg.text_mode, cfg.drop_eval_sentences,
                           lm_text.eval_sentences(eval_files), lm_text.normalize_config(data_section), "lm")
    print(lm_text.summary_line(found.report, "lm"), flush=True)
    sentences = [causal_lm.apply_case(line.strip(), cfg.text_case) for line in found.sentences if line.strip()]
    if len(sentences) < 2:
        raise UserError(f"{text}: needs at least 2 non-empty sentences, found {len(sentences)}")
    return lm_text.LMText(sentences, found.report)


def build(cfg: LMConfig, train: list[str], ckpt: dict | None, device: torch.device):
    """(model on `device`, tokenizer, Vocab, model_args, context): pretrained, or the builtin GPT-2."""
    if cfg.pretrained:
        model, tok = causal_lm.load_pretrained(causal_lm.resolve(cfg.pretrained), device)
        model.train()
        return model, tok, causal_lm.hf_vocab(tok), {"pretrained": cfg.pretrained}, causal_lm.context_length(model)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(ckpt["tokenizer"]) if ckpt else train_tokenizer(train, cfg.tokenizer, cfg.vocab_size)
    args = model_args(cfg, tok.get_vocab_size())
    return build_model(args).to(device), tok, causal_lm.builtin_vocab(tok), args, cfg.n_positions


def setup(cfg: LMConfig, seed: int, text: lm_text.LMText, ckpt_dir: Path, device: torch.device) -> dict:
    """Data, tokenizer, model (on `device`), optimizer, scheduler: fresh, or restored from the newest checkpoint."""
    train, dev = split_dev(text.sentences, cfg.dev_fraction)
    torch.manual_seed(seed)
    found = latest_valid(ckpt_dir, CHECKPOINT_KEYS)
    path, ckpt = found if found else (None, None)
    model, tok, vocab, args, context = build(cfg, train, ckpt, device)
    if ckpt and ckpt["model_args"] != args:
        raise UserError(f"{path}: built with {ckpt['model_args']}, config gives {args}; "
                        f"fix the config or remove {ckpt_dir}")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, cfg.max_steps, "linear", floor=0.1))
    state = {"model": model, "optimizer": opt, "scheduler": sched, "generator": torch.Generator().manual_seed(seed),
             "tokenizer": tok, "vocab": vocab, "model_args": args, "config": dataclasses.asdict(cfg), "step": 0,
             "log": [], "best": None, "seconds": 0.0, "resumes": [], "device": device,
             "dtype": autocast_dtype("auto", device), "text": text.report,
             "train": vocab.encode(train, context), "dev": vocab.encode(dev, context)}
    if ckpt:
        restore(state, path, ckpt)
    return state


def restore(state: dict, path: Path, ckpt: dict) -> None:
    """Load checkpoint `ckpt` (read from `path`) into a fresh `state`; report changed settings."""
    changed = resume_record(path, ckpt["step"], ckpt["config"], state["config"], "lm")
    state["model"].load_state_dict(ckpt["model"])
    state["optimizer"].load_state_dict(ckpt["optimizer"])
    state["scheduler"].load_state_dict(ckpt["scheduler"])
    set_rng_state(ckpt["rng"])
    state["generator"].set_state(ckpt["rng"]["batches"])
    state.update(step=ckpt["step"], log=ckpt["log"], seconds=ckpt["seconds"], best=ckpt.get("best"),
                 resumes=ckpt.get("resumes", []) + ([changed] if changed else []))
    print(f"resumed from {path} (step {ckpt['step']})", flush=True)


def checkpoint(state: dict, ckpt_dir: Path, keep: int) -> Path:
    """Save the full training state as ckpt-<step>.pt (the newest `keep` stay)."""
    return save_checkpoint(ckpt_dir, {
        "model": state["model"].state_dict(), "optimizer": state["optimizer"].state_dict(),
        "scheduler": state["scheduler"].state_dict(), "step": state["step"],
        "rng": {**rng_state(), "batches": state["generator"].get_state()},
        "tokenizer": "" if state["config"]["pretrained"] else state["tokenizer"].to_str(),
        "model_args": state["model_args"], "config": state["config"], "best": state["best"],
        "log": state["log"], "seconds": state["seconds"], "resumes": state["resumes"],
    }, keep)


def train_step(state: dict, cfg: LMConfig) -> float:
    """One optimizer step on a batch drawn with the run's own generator; returns its loss."""
    model, opt, sched, seqs = state["model"], state["optimizer"], state["scheduler"], state["train"]
    pick = torch.randint(len(seqs), (cfg.batch_size,), generator=state["generator"]).tolist()
    loss = batch_loss(model, [seqs[i] for i in pick], state["device"], state["dtype"], state["vocab"].pad)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    return float(loss.detach())


def evaluate(state: dict, cfg: LMConfig, loss: float) -> None:
    """Dev loss of the current model: one log row, one progress line; keep its weights if the best so far."""
    dl = dev_loss(state["model"], state["dev"], cfg.batch_size, state["device"], state["dtype"], state["vocab"].pad)
    ppl = math.exp(min(dl, 50.0))
    state["log"].append({"step": state["step"], "lr": state["scheduler"].get_last_lr()[0], "train_loss": loss,
                         "dev_loss": dl, "dev_ppl": ppl, "seconds": state["seconds"]})
    if state["best"] is None or dl < state["best"]["dev_loss"]:
        weights = {k: v.detach().to("cpu", copy=True) for k, v in state["model"].state_dict().items()}
        state["best"] = {"step": state["step"], "dev_loss": dl, "dev_ppl": ppl, "state_dict": weights}
    print(f"step {state['step']} train_loss {loss:.3f} dev_ppl {ppl:.2f} (best {state['best']['dev_ppl']:.2f} "
          f"at step {state['best']['step']})", flush=True)


def train_loop(cfg: LMConfig, state: dict, ckpt_dir: Path, stop: StopSignal) -> None:
    """Run steps until max_steps; evaluate, log and checkpoint on schedule, at the end, or on a stop signal."""
    state["model"].train()
    start = time.perf_counter() - state["seconds"]
    if cfg.pretrained and not state["log"]:  # the pretrained model as it is: a candidate too
        evaluate(state, cfg, float("nan"))
    while state["step"] < cfg.max_steps:
        loss = train_step(state, cfg)
        state["step"] += 1
        step, last, state["seconds"] = state["step"], state["step"] == cfg.max_steps, time.perf_counter() - start
        if step % cfg.eval_every == 0 or last:
            evaluate(state, cfg, loss)
        if step % cfg.checkpoint_every == 0 or last or stop.requested:
            print(f"checkpoint {checkpoint(state, ckpt_dir, cfg.keep_checkpoints)}", flush=True)
        if stop.requested:
            print(f"stop signal: checkpoint saved at step {step}; exiting {EXIT_PREEMPTED}", flush=True)
            raise SystemExit(EXIT_PREEMPTED)


def save_model(cfg: LMConfig, state: dict, outdir: Path) -> dict:
    """The best model (weights of `state['best']`) as outdir/hf (+ tokenizer.json); lm.json's `scorer`."""
    if cfg.pretrained and state["step"] == 0:  # scored as it is: point at it, copy nothing
        return causal_lm.scorer_record(str(causal_lm.resolve(cfg.pretrained).absolute()), "pretrained", cfg.text_case)
    state["model"].load_state_dict(state["best"]["state_dict"])
    state["model"].save_pretrained(outdir / "hf.tmp")
    if cfg.pretrained:
        state["tokenizer"].save_pretrained(outdir / "hf.tmp")
    if (outdir / "hf").exists():
        import shutil

        shutil.rmtree(outdir / "hf")
    os.replace(outdir / "hf.tmp", outdir / "hf")
    if not cfg.pretrained:
        with atomic_write(outdir / "tokenizer.json") as tmp:
            tmp.write_text(state["tokenizer"].to_str())
    return causal_lm.scorer_record("hf", "pretrained" if cfg.pretrained else "builtin", cfg.text_case)


def save_outputs(cfg: LMConfig, state: dict, outdir: Path) -> dict:
    """hf/ (+ tokenizer.json), train_log.tsv and lm.json in `outdir` (each atomic)."""
    scorer = save_model(cfg, state, outdir)
    with atomic_write(outdir / "train_log.tsv") as tmp:
        rows = ["\t".join(LOG_COLUMNS)] + ["\t".join(str(r[c]) for c in LOG_COLUMNS) for r in state["log"]]
        tmp.write_text("\n".join(rows) + "\n")
    best, last = state["best"], state["log"][-1]
    lm_json = {"steps": state["step"], "best_step": best["step"], "dev_loss": best["dev_loss"],
               "dev_perplexity": best["dev_ppl"], "last_dev_perplexity": last["dev_ppl"],
               "n_params": sum(p.numel() for p in state["model"].parameters()),
               "train_seconds": state["seconds"], "vocab_size": len(state["tokenizer"]) if cfg.pretrained
               else state["model_args"]["vocab_size"],
               "n_train_sentences": len(state["train"]), "n_dev_sentences": len(state["dev"]),
               "device": str(state["device"]), "resumed_from": state["resumes"], "scorer": scorer,
               "pretrained": cfg.pretrained or None, "text": state["text"],
               "model_args": state["model_args"], "config": state["config"]}
    write_json_atomic(outdir / "lm.json", lm_json)
    return lm_json


def run(argv: list[str] | None = None) -> dict:
    """setup -> train loop -> save -> cleanup; returns lm.json's content."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.rescoring.train_lm", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="stage config.json (sections lm, seed)")
    parser.add_argument("--text", required=True, type=Path, help="LM training text (the data stage's lm.txt), one sentence per line")
    parser.add_argument("--eval", nargs="*", type=Path, default=[],
                        help="dev/test manifests (column text): their sentences are counted in, and dropped from, lm.text")
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--checkpoint-dir", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="auto", help=DEVICES)
    args = parser.parse_args(argv)
    cfg = load_section(args.config, "lm", LMConfig)
    config = read_json(args.config)
    seed = int(config.get("seed", 0))
    use_threads(args.threads)
    device = resolve_device(args.device)
    open_outdir(args.outdir, argv, "train_lm")
    text = read_sentences(cfg, args.text, args.eval, config.get("data"))
    with exclusive(args.checkpoint_dir):
        state = setup(cfg, seed, text, args.checkpoint_dir, device)
        with StopSignal() as stop:
            train_loop(cfg, state, args.checkpoint_dir, stop)
    lm_json = save_outputs(cfg, state, args.outdir)
    print(f"done: {lm_json['steps']} steps on {device}, dev perplexity {lm_json['dev_perplexity']:.2f} "
          f"(best, step {lm_json['best_step']}; last {lm_json['last_dev_perplexity']:.2f})", flush=True)
    return lm_json


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
