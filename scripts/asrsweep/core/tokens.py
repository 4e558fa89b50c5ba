"""The CTC output vocabulary: `Tokens.load(<R/E/tokenizer/k>)` (not a step; used by train, emissions, decoders).

Column 0 is the CTC blank `<blank>`; sentencepiece piece i is column i + 1 (see tokens.txt).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

from asrsweep.core.common import UserError

BLANK = "<blank>"
WORD_BOUNDARY = "\u2581"  # sentencepiece's "▁", kept as-is in tokens.txt


def pieces_to_text(pieces: Iterable[str]) -> str:
    """Join sentencepiece pieces into normalised text ("▁" starts a word; single spaces)."""
    return " ".join("".join(pieces).replace(WORD_BOUNDARY, " ").split())


def ctc_collapse(ids: Sequence[int]) -> list[int]:
    """Greedy CTC post-processing of per-frame argmax ids [T]: merge repeats, drop blanks (0)."""
    out, prev = [], -1
    for i in map(int, ids):
        if i != prev and i != 0:
            out.append(i)
        prev = i
    return out


def read_token_table(path: str | Path) -> list[str]:
    """tokens.txt: one CTC output token per line, line 0 = blank (the one reader of the file)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found; run asrsweep.data.train_tokenizer first") from None
    return lines[:-1] if lines and lines[-1] == "" else lines


def decode_ids(pieces: Sequence[str], ids: Iterable[int]) -> str:
    """Text for CTC ids (columns of `pieces`, the tokens.txt list); blanks are skipped."""
    return pieces_to_text(pieces[i] for i in ids if i != 0)


class Tokens:
    """CTC vocabulary backed by a sentencepiece model.

    `.pieces` is the tokens.txt list (index = output column, `<blank>` at 0) and `.vocab_size`
    its length (blank included).
    """

    def __init__(self, sp, pieces: list[str]):
        self.sp = sp
        self.pieces = pieces
        self.vocab_size = len(pieces)

    @classmethod
    def load(cls, tokdir: str | Path) -> "Tokens":
        """Load `<tokdir>/spm.model` and `<tokdir>/tokens.txt`, checking that they agree."""
        import sentencepiece as spm

        tokdir = Path(tokdir)
        model, table = tokdir / "spm.model", tokdir / "tokens.txt"
        if not model.is_file():
            raise UserError(f"{model}: file not found; run asrsweep.data.train_tokenizer first")
        pieces = read_token_table(table)
        sp = spm.SentencePieceProcessor(model_file=str(model))
        expected = [BLANK] + [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
        if pieces != expected:
            raise UserError(f"{table}: does not match {model}; rerun asrsweep.data.train_tokenizer")
        return cls(sp, pieces)

    def encode(self, text: str) -> list[int]:
        """CTC target ids for `text` (sentencepiece ids + 1, so never the blank 0)."""
        return [i + 1 for i in self.sp.encode(text, out_type=int)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text for CTC ids (blanks skipped; repeats are NOT merged: use `ctc_collapse` first)."""
        return decode_ids(self.pieces, ids)
