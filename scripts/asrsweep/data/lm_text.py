"""LM text: the training transcripts, the user's own text files, or both, checked against dev/test.

Library module (no CLI), used by `python -m asrsweep.decoding.train_ngram` (`ngram.text`) and
`python -m asrsweep.rescoring.train_lm` (`lm.text`).

A text file holds one sentence a line, plain or gzip (by its `.gz` name or its magic bytes). Its
lines are normalised as the corpus transcripts were (`data.normalize`, through
`asrsweep.data.audio.normalize_text`); empty ones are skipped. `text_mode: append` adds them to
the training transcripts (the data stage's lm.txt), `replace` uses them alone. A sentence that
also occurs in the dev or test transcripts is counted, and removed from the files' text when
`drop_eval_sentences` is set: an LM that has seen the test sentences makes every number after it
a lie. The transcripts themselves are never filtered (their overlap with dev/test is the
corpus's own split, reported as `transcript_eval_overlap`), so with no files the text is the
data stage's lm.txt exactly.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from asrsweep.core import tsv
from asrsweep.core.common import UserError
from asrsweep.data.audio import NormalizeConfig, normalize_text

TEXT_MODES = ("append", "replace")
GZIP_MAGIC = b"\x1f\x8b"


@dataclass
class LMText:
    """The sentences an LM trains on and the report of where they came from (for *.json)."""

    sentences: list[str]
    report: dict = field(default_factory=dict)


def open_text(path: Path):
    """A text handle on `path`, decompressing gzip (named .gz or starting with its magic)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: LM text file not found")
    with open(path, "rb") as probe:
        gz = path.suffix == ".gz" or probe.read(2) == GZIP_MAGIC
    return gzip.open(path, "rt", encoding="utf-8") if gz else open(path, encoding="utf-8")


def read_lines(path: Path) -> Iterator[str]:
    """The stripped non-empty lines of a plain or gzip text file (a bad encoding names the file)."""
    try:
        with open_text(path) as handle:
            for line in handle:
                line = line.strip()
                if line:
                    yield line
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise UserError(f"{path}: cannot read as UTF-8 text, plain or gzip ({err})") from None


def normalize_config(data_section: dict | None) -> NormalizeConfig:
    """`data.normalize` of a stage config (the demo's section has none: its defaults apply)."""
    found = (data_section or {}).get("normalize") or {}
    return NormalizeConfig(**found)


def eval_sentences(manifests: list[Path]) -> set[str]:
    """The transcripts (column `text`) of the dev/test manifests written by the data stage."""
    found: set[str] = set()
    for path in manifests:
        found.update(row["text"] for row in tsv.read_tsv(path, ["text"]) if row["text"])
    return found


def check_mode(mode: str, section: str) -> None:
    """`<section>.text_mode` must be append or replace."""
    if mode not in TEXT_MODES:
        raise UserError(f"{section}.text_mode: {mode!r} is not one of {', '.join(TEXT_MODES)}")


def gather(transcripts: Path, files: list[str] | tuple[str, ...], mode: str, drop_eval: bool,
           eval_set: set[str], norm: NormalizeConfig, section: str) -> LMText:
    """The LM sentences from lm.txt (`transcripts`) and `files`, with the contamination report."""
    check_mode(mode, section)
    base = [] if files and mode == "replace" else _plain_lines(transcripts)
    out = list(base)
    per_file, overlap, removed = [], 0, 0
    for name in files:
        n_read = n_overlap = 0
        for line in read_lines(Path(name)):
            text = normalize_text(line, norm)
            if not text:
                continue
            n_read += 1
            if text in eval_set:
                n_overlap += 1
                if drop_eval:
                    continue
            out.append(text)
        per_file.append({"path": str(name), "sentences": n_read, "eval_overlap": n_overlap})
        overlap, removed = overlap + n_overlap, removed + (n_overlap if drop_eval else 0)
    if not out:
        raise UserError(f"{section}.text: no sentences left to train on (files {list(files)}, mode {mode})")
    report = {"text_mode": mode, "drop_eval_sentences": drop_eval, "files": per_file,
              "n_transcript_sentences": len(base), "n_file_sentences": len(out) - len(base),
              "n_sentences": len(out), "eval_overlap": overlap, "eval_removed": removed,
              "transcript_eval_overlap": sum(1 for s in base if s in eval_set)}
    return LMText(out, report)


def _plain_lines(path: Path) -> list[str]:
    """The lines of the data stage's lm.txt, already normalised and kept exactly as they are
    (an empty one too: the n-gram estimator counts it as `<s> </s>`, as it always did)."""
    if not Path(path).is_file():
        raise UserError(f"{path}: file not found (LM text from the data stage)")
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle]


def summary_line(report: dict, section: str) -> str:
    """One progress line: where the sentences came from and what overlapped dev/test."""
    files = len(report["files"])
    action = "removed" if report["drop_eval_sentences"] else "kept (drop_eval_sentences: false)"
    return (f"{section} text: {report['n_sentences']} sentences ({report['n_transcript_sentences']} from the "
            f"transcripts, {report['n_file_sentences']} from {files} file(s), mode {report['text_mode']}); "
            f"{report['eval_overlap']} file sentence(s) occur in dev/test: {action}; "
            f"{report['transcript_eval_overlap']} transcript sentence(s) occur in dev/test")
