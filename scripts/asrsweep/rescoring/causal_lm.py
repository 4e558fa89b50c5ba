"""The causal LM that rescores: the small GPT-2 `train_lm` builds, or any pretrained
`AutoModelForCausalLM` with its own tokenizer, behind one `Vocab` (how a sentence becomes ids).

Library module (no CLI), used by `python -m asrsweep.rescoring.train_lm` (training, dev
perplexity) and `python -m asrsweep.rescoring.score_lm` (scoring the n-best lists).

A sentence is scored as `bos w.. eos`: the pretrained tokenizer's own BOS (its EOS where it has
none, as GPT-2's `<|endoftext|>` is both) and EOS, encoded without the tokenizer's automatic
specials so no model gets two BOS. `text_case` maps the text (LM training text and hypotheses
alike) to the case the LM expects: transcripts are usually lowercase, most pretrained LMs
were trained on cased text. Loading is offline unless ASRSWEEP_HUB_ONLINE=1 (core.pretrained).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from asrsweep.core import pretrained
from asrsweep.core.common import UserError, read_json

pretrained.offline_by_default()  # before transformers is imported anywhere

CASES = ("as_is", "lower", "upper", "sentence")
MAX_CONTEXT = 1024  # longest window scored at once: longer sentences slide (score_lm.windows)
BUILTIN_IDS = {"pad": 0, "unk": 1, "bos": 2, "eos": 3}  # train_lm.SPECIALS order


def apply_case(text: str, mode: str) -> str:
    """`text` in case `mode`: as_is, lower, upper, or sentence ("The cat sat")."""
    if mode == "as_is":
        return text
    if mode == "lower":
        return text.lower()
    if mode == "upper":
        return text.upper()
    if mode == "sentence":
        return text[:1].upper() + text[1:].lower()
    raise UserError(f"lm.text_case: {mode!r} is not one of {', '.join(CASES)}")


@dataclass(frozen=True)
class Vocab:
    """How sentences become model input: `encode` (text -> ids without specials), bos, eos, pad."""

    encode_plain: Callable[[list[str]], list[list[int]]]
    bos: int
    eos: int | None
    pad: int

    def encode(self, sentences: list[str], max_len: int | None = None) -> list[list[int]]:
        """`bos w.. eos` ids per sentence, truncated to `max_len` positions when given."""
        tail = [] if self.eos is None else [self.eos]
        out = [[self.bos] + ids + tail for ids in self.encode_plain(sentences)] if sentences else []
        return [s[:max_len] for s in out] if max_len else out


def builtin_vocab(tok) -> Vocab:
    """Vocab of a `tokenizers.Tokenizer` trained by train_lm (specials at ids 0..3)."""
    return Vocab(lambda batch: [e.ids for e in tok.encode_batch(batch)],
                 BUILTIN_IDS["bos"], BUILTIN_IDS["eos"], BUILTIN_IDS["pad"])


def hf_vocab(tok) -> Vocab:
    """Vocab of a transformers tokenizer: its BOS (else EOS) starts, its EOS ends a sentence."""
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if bos is None:
        raise UserError(f"lm.pretrained: tokenizer {tok.name_or_path} has neither a BOS nor an EOS token; "
                        "a sentence's first word cannot be scored")
    eos = tok.eos_token_id
    pad = tok.pad_token_id if tok.pad_token_id is not None else (eos if eos is not None else 0)
    return Vocab(lambda batch: tok(batch, add_special_tokens=False)["input_ids"], bos, eos, pad)


def resolve(value: str) -> Path:
    """The local folder of `lm.pretrained` (a folder or a cached hub id). Jobs never download:
    the expansion (`asrsweep plan`, snakemake) fetched it when downloads were allowed."""
    return pretrained.resolve(value, "lm.pretrained", "lm", download=False)


def load_pretrained(folder: Path, device):
    """(model in eval mode on `device`, its tokenizer) from a transformers folder, offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder).to(device).eval()
    except (OSError, ValueError, KeyError) as err:
        raise UserError(f"lm.pretrained: {folder}: not a causal LM with its tokenizer "
                        f"({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
    return model, tok


def context_length(model) -> int:
    """Positions the model can attend to (its config's n_positions or max_position_embeddings), at most MAX_CONTEXT."""
    cfg = model.config
    found = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None) or MAX_CONTEXT
    return min(int(found), MAX_CONTEXT)


def scorer_record(model: str, tokenizer: str, text_case: str) -> dict:
    """lm.json's `scorer`: the model folder (relative to the LM folder, or absolute), its tokenizer kind, the case."""
    return {"model": model, "tokenizer": tokenizer, "text_case": text_case}


def load_scorer(lm_dir: Path, device):
    """(model, Vocab, context, text_case) that score_lm scores with, from a train_lm folder.

    lm.json's `scorer` says which model: LM/hf (trained or fine-tuned here) or the pretrained
    folder itself (`lm.max_steps: 0`). A folder without one is a builtin LM of an older run.
    """
    from transformers import GPT2LMHeadModel

    info = read_json(lm_dir / "lm.json").get("scorer") if (lm_dir / "lm.json").exists() else None
    info = info or scorer_record("hf", "builtin", "as_is")
    folder = Path(info["model"]) if Path(info["model"]).is_absolute() else lm_dir / info["model"]
    if info["tokenizer"] == "pretrained":
        if not folder.is_dir():
            raise UserError(f"{folder}: the LM that {lm_dir}/lm.json names is gone; rerun train_lm")
        model, tok = load_pretrained(folder, device)
        return model, hf_vocab(tok), context_length(model), info["text_case"]
    from tokenizers import Tokenizer

    for need in (lm_dir / "tokenizer.json", folder):
        if not need.exists():
            raise UserError(f"{need}: not found; is {lm_dir} a train_lm output folder?")
    tok = Tokenizer.from_file(str(lm_dir / "tokenizer.json"))
    model = GPT2LMHeadModel.from_pretrained(folder, local_files_only=True).to(device).eval()
    return model, builtin_vocab(tok), int(model.config.n_positions), info["text_case"]
