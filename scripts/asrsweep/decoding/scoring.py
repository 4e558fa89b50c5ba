"""Word and character error rates with jiwer (library module, no CLI).

Used by `python -m asrsweep.decoding.decode_sweep ...` and `asrsweep.decoding.decode_frozen`: corpus WER/CER with
S/D/I counts, and per-utterance error counts (S+D+I) from jiwer's alignments.
"""

from __future__ import annotations

from dataclasses import dataclass

import jiwer


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


def score(refs: list[str], hyps: list[str]) -> Score:
    """WER, CER, S/D/I and per-utterance errors of `hyps` against `refs` (same order)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
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
