"""A user's manifest file read into rows: the rules of config/README.md ("The corpus").

Library module (no CLI), used by `python -m asrsweep.data.prepare_corpus` (through
`data.sources`) and by `core.inputs`, which fingerprints the audio files a manifest names when
an experiment is planned: both must read a manifest the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

from asrsweep.core import tsv
from asrsweep.core.common import UserError

# Column names a manifest may use for the audio path.
AUDIO_KEYS = ("audio", "path", "wav", "file", "audio_path", "audio_filepath")
JSON_SUFFIXES = (".jsonl", ".json")


def manifest_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank lines of a UTF-8 manifest, line ends stripped."""
    lines = (line.removesuffix("\r") for line in tsv.read_text(path).split("\n"))
    return [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]


def tsv_manifest_rows(path: Path) -> list[dict]:
    """Rows of a user's TSV manifest: a header, tab-separated fields, no quoting, no escapes."""
    lines = manifest_lines(path)
    header = lines[0][1].split("\t") if lines else []
    rows = []
    for number, line in lines[1:]:
        fields = line.split("\t")
        if len(fields) > len(header):
            raise UserError(f"{path}: line {number}: {len(fields)} tab-separated fields, the header has "
                            f"{len(header)}; a transcript cannot hold a tab")
        rows.append(dict(zip(header, fields)))  # a short row lacks its last columns
    return rows


def jsonl_manifest_rows(path: Path) -> list[dict]:
    """Rows of a JSON-lines manifest: one JSON object per line."""
    rows = []
    for number, line in manifest_lines(path):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: line {number}: not valid JSON ({err.msg})") from None
        if not isinstance(rows[-1], dict):
            raise UserError(f"{path}: line {number}: expected a JSON object, one utterance per line")
    return rows


def manifest_rows(path: Path) -> list[dict]:
    """The rows of a manifest as dicts: JSON lines for .jsonl/.json, else TSV."""
    return jsonl_manifest_rows(path) if path.suffix in JSON_SUFFIXES else tsv_manifest_rows(path)
