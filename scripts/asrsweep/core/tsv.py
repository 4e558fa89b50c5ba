"""The one TSV format of every table asrsweep writes and reads; a library, not a step.

Used by the data steps (`python -m asrsweep.data.prepare_corpus --config C --outdir D` and the
others that read `{split}.tsv`), the decoders, the rescorer and the summaries.

Format: UTF-8; a header line of column names, then one line per row; fields are separated by a
tab and every line ends in "\\n". Inside a field (header included) four characters are written
as a backslash escape, and only these four:

    backslash -> \\\\    tab -> \\t    newline -> \\n    carriage return -> \\r

Every other character stands for itself: quotes are never special, so any text round-trips.
A field that holds none of the four reads the same in any plain tab-separated reader
(`cut -f`, `awk -F'\\t'`, `csv` or pandas with quoting off); the project's own readers all go
through `read_tsv`/`read_columns`/`read_frame` so that escaped text comes back exactly.
A backslash followed by anything else, or a row whose field count differs from the header's,
is an error naming the file and the line.

Kept free of pandas at import time (audio worker processes import it): `read_frame` imports
it when called, `write_frame` is handed a frame.
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from asrsweep.core.common import UserError, write_text_atomic

ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}
UNESCAPES = {v[1]: k for k, v in ESCAPES.items()}
_SPECIAL = re.compile(r"[\\\t\n\r]")
_ESCAPED = re.compile(r"\\(.?)", re.DOTALL)


def escape(value: object) -> str:
    """One field as written: `str(value)` (None -> "") with the four escapes applied."""
    text = "" if value is None else str(value)
    return _SPECIAL.sub(lambda m: ESCAPES[m.group()], text)


def unescape(field: str) -> str:
    """The text of one written field; ValueError on a backslash that starts no known escape."""
    def one(match: re.Match) -> str:
        if match.group(1) not in UNESCAPES:
            raise ValueError(f"backslash followed by {match.group(1)!r} (a literal backslash is written \\\\)")
        return UNESCAPES[match.group(1)]

    return _ESCAPED.sub(one, field) if "\\" in field else field  # most fields hold no escape


def tsv_text(columns: Sequence[str], rows: Iterable[Mapping]) -> str:
    """The file text of `rows` (mappings holding every column) under a header of `columns`."""
    lines = ["\t".join(map(escape, columns))]
    lines += ["\t".join(escape(row[c]) for c in columns) for row in rows]
    return "\n".join(lines) + "\n"


def write_tsv(path: str | os.PathLike, columns: Sequence[str], rows: Iterable[Mapping]) -> None:
    """Write `rows` under a header of `columns` to `path` atomically."""
    write_text_atomic(path, tsv_text(columns, rows))


def read_text(path: str | os.PathLike) -> str:
    """The text of a UTF-8 file (a leading byte-order mark dropped, line ends untouched).

    A missing file or bytes that are not UTF-8 are a UserError naming the file and the line.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError(f"{path}: line {line}: byte 0x{data[err.start]:02x} is not UTF-8; re-encode the file "
                        f"as UTF-8 (e.g. iconv -f latin1 -t utf-8 OLD > NEW)") from None


def parse_tsv(text: str, where: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows of fields) of TSV text; `where` (a file name) prefixes the errors."""
    lines = text.split("\n")  # not splitlines(): a field may hold U+2028, \x0c and the like
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise UserError(f"{where}: empty file, expected a header line")
    table = []
    for number, line in enumerate(lines, start=1):
        try:
            table.append([unescape(f) for f in line.split("\t")])
        except ValueError as err:
            raise UserError(f"{where}: line {number}: {err}") from None
        if len(table[-1]) != len(table[0]):
            raise UserError(f"{where}: line {number}: {len(table[-1])} fields, the header has {len(table[0])}")
    return table[0], table[1:]


def read_tsv(path: str | os.PathLike, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a TSV file as dicts of strings; a UserError if a `required` column is missing."""
    header, rows = _read(path, required)
    return [dict(zip(header, row)) for row in rows]


def read_columns(path: str | os.PathLike, required: Sequence[str] = ()) -> dict[str, list[str]]:
    """A TSV file as {column: its values in file order}."""
    header, rows = _read(path, required)
    return {name: [row[i] for row in rows] for i, name in enumerate(header)}


def read_frame(path: str | os.PathLike, required: Sequence[str] = ()):
    """A TSV file as a pandas DataFrame of strings ("" where a value is empty, never NaN)."""
    import pandas as pd

    return pd.DataFrame(read_columns(path, required), dtype=str)


def frame_rows(frame) -> tuple[list[str], list[dict]]:
    """A pandas DataFrame as (columns, row mappings), NaN as None (written as "")."""
    columns = [str(c) for c in frame.columns]
    values = frame.astype(object).where(frame.notna(), None).itertuples(index=False, name=None)
    return columns, [dict(zip(columns, row)) for row in values]


def write_frame(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame (no index; NaN and None as "") to `path` atomically."""
    write_tsv(path, *frame_rows(frame))


def _read(path: str | os.PathLike, required: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a TSV file, checking the `required` columns are present."""
    header, rows = parse_tsv(read_text(path), str(path))
    missing = [c for c in required if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    return header, rows
