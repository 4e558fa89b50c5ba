"""Word and character error rates with jiwer, and the scoring normalisation (library module, no CLI).

Used by `python -m asrsweep.decoding.decode_sweep ...` and `asrsweep.decoding.decode_frozen`: corpus WER/CER with
S/D/I counts, and per-utterance error counts (S+D+I) from jiwer's alignments.

Config section `score`: normalize, applied to references and hypotheses alike before any error
is counted (the transcripts keep the training normalisation; this is only how they are scored):
  none        the texts as they are (the training normalisation; the default).
  hyphens     also split words at hyphens: "well-known" -> "well known".
  whisper_en  a small Whisper-style English normaliser: lowercase; drop [bracketed] and
              (parenthesised) spans and the fillers uh, um, hmm, mm, mhm; expand common
              contractions ("won't" -> "will not", "n't" -> " not", "'re" -> " are", ...; "it's"
              stays, it may be "it is" or "it has"); every other character that is not a letter,
              a digit or an apostrophe inside a word becomes a space; spaces collapsed.
              Numbers are left as they are (no spelling to digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jiwer

from asrsweep.core.common import UserError, from_mapping, read_json

FILLERS = {"uh", "um", "umm", "hmm", "hm", "mm", "mmm", "mhm", "er", "ah"}
# Whole-word forms first, then the suffixes (Whisper's EnglishTextNormalizer has a longer list).
CONTRACTIONS = [(r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\blet's\b", "let us"),
                (r"\bain't\b", "is not"), (r"n't\b", " not"), (r"'re\b", " are"), (r"'ll\b", " will"),
                (r"'ve\b", " have"), (r"'m\b", " am"), (r"'d\b", " would")]


@dataclass(frozen=True)
class ScoreConfig:
    """Section `score`."""

    normalize: str = "none"


def load_score_config(config_path) -> ScoreConfig:
    """Section `score` of a stage config (checked); a config without it (written before the
    section existed, or a hand-made one) scores as the default, "none"."""
    cfg = from_mapping(ScoreConfig, read_json(config_path).get("score", {}), f"{config_path}: score")
    if cfg.normalize not in NORMALIZERS:
        raise UserError(f"{config_path}: score.normalize: {cfg.normalize!r}; use one of {', '.join(NORMALIZERS)}")
    return cfg


def _hyphens(text: str) -> str:
    return " ".join(text.replace("-", " ").split())


def _whisper_en(text: str) -> str:
    text = text.lower()
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text)
    text = text.replace("\u2019", "'")
    for pattern, replacement in CONTRACTIONS:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # an apostrophe stays only inside a word
    text = re.sub(r"[^\w']+|_", " ", text)
    return " ".join(w for w in text.split() if w not in FILLERS)


NORMALIZERS = {"none": lambda text: text, "hyphens": _hyphens, "whisper_en": _whisper_en}


def normalizer(name: str):
    """The text -> text function of `score.normalize` `name` (ValueError if unknown)."""
    if name not in NORMALIZERS:
        raise ValueError(f"score.normalize: {name!r}; use one of {', '.join(NORMALIZERS)}")
    return NORMALIZERS[name]


def normalize_all(texts, name: str) -> list[str]:
    """`texts` normalised for scoring with `name` (a new list; "none" keeps them as they are)."""
    fn = normalizer(name)
    return [fn(t) for t in texts]


@dataclass(frozen=True)
class Score:
    """Corpus-level scores: wer/cer in [0, inf) (fractions, not %), counts over reference words."""

    wer: float
    cer: float
    words: int
    substitutions: int
    deletions: int
    insertions: int
    utt_errors: tuple[int, ...]  # S+D+I per utterance, in input order
    utt_words: tuple[int, ...]  # reference words per utterance

    def row(self) -> dict:
        """The sweep.tsv / test.json fields."""
        return {"wer": self.wer, "cer": self.cer, "words": self.words,
                "substitutions": self.substitutions, "deletions": self.deletions,
                "insertions": self.insertions}


def oov_rate(refs: list[str], vocabulary) -> dict:
    """Share of reference words (tokens, not types) outside `vocabulary`: {rate, oov, words}."""
    words = [w for r in refs for w in r.split()]
    oov = sum(w not in vocabulary for w in words)
    return {"rate": oov / max(len(words), 1), "oov": oov, "words": len(words)}


def _errors(refs: list[str], hyps: list[str]):
    """jiwer word output for normalised refs/hyps (empty references allowed)."""
    return jiwer.process_words(refs, hyps)


def utterance_errors(out) -> list[int]:
    """S+D+I per utterance from jiwer alignments."""
    counts = []
    for chunks in out.alignments:
        n = 0
        for c in chunks:
            if c.type in ("substitute", "delete"):
                n += c.ref_end_idx - c.ref_start_idx
            elif c.type == "insert":
                n += c.hyp_end_idx - c.hyp_start_idx
        counts.append(n)
    return counts


def score(refs: list[str], hyps: list[str], normalize: str = "none") -> Score:
    """WER, CER, S/D/I and per-utterance errors of `hyps` against `refs` (same order), both
    normalised with `normalize` first (see the module docstring)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if normalize != "none":
        refs, hyps = normalize_all(refs, normalize), normalize_all(hyps, normalize)
    if not refs:
        return Score(0.0, 0.0, 0, 0, 0, 0, (), ())
    words = _errors(refs, hyps)
    n_words = sum(len(r.split()) for r in refs)
    chars = jiwer.process_characters(refs, hyps)
    n_chars = sum(len(r) for r in refs)
    char_errors = chars.substitutions + chars.deletions + chars.insertions
    word_errors = words.substitutions + words.deletions + words.insertions
    return Score(
        wer=word_errors / max(n_words, 1),
        cer=char_errors / max(n_chars, 1),
        words=n_words,
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        utt_errors=tuple(utterance_errors(words)),
        utt_words=tuple(len(r.split()) for r in refs),
    )
