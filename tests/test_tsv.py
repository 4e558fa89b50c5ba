"""Tests for asrsweep.core.tsv: any text round-trips, plain text stays plain, errors name the line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import soundfile

from asrsweep.core import tsv
from asrsweep.core.common import UserError
from asrsweep.data import prepare_corpus
from asrsweep.data.audio import read_manifest

NASTY = [
    'say "hi"', '"', '""quoted""', "tab\there", "new\nline", "cr\rlf\r\n", "back\\slash", "\\t not a tab",
    "\\", "trailing\\", "\\\\n", "", " lead and trail ", "naïve café — 日本語 🎤", "line\u2028sep\x0cff\x1c",
    "'single'", "a,b;c", "#comment", "NaN", "null",
]


def test_nasty_text_round_trips_as_rows_columns_and_frames(tmp_path):
    rows = [{"id": str(i), "text": text, "other": text[::-1]} for i, text in enumerate(NASTY)]
    path = tmp_path / "t.tsv"
    tsv.write_tsv(path, ["id", "text", "other"], rows)
    assert len(path.read_text(encoding="utf-8").split("\n")) == len(NASTY) + 2  # one line per row + header
    assert tsv.read_tsv(path) == rows
    assert tsv.read_columns(path)["text"] == NASTY
    frame = tsv.read_frame(path, ["text"])
    assert list(frame["text"]) == NASTY and list(frame["id"]) == [str(i) for i in range(len(NASTY))]
    tsv.write_frame(tmp_path / "f.tsv", frame)
    assert (tmp_path / "f.tsv").read_bytes() == path.read_bytes()


def test_header_names_are_escaped_too(tmp_path):
    tsv.write_tsv(tmp_path / "h.tsv", ["a\tb", 'c"d'], [{"a\tb": 1, 'c"d': 2}])
    assert tsv.read_tsv(tmp_path / "h.tsv") == [{"a\tb": "1", 'c"d': "2"}]


def test_plain_text_is_written_as_is_and_plain_readers_agree(tmp_path):
    rows = [{"utt": "u1", "text": 'he said "go" — ok', "score": -1.5}, {"utt": "u2", "text": "", "score": None}]
    path = tmp_path / "p.tsv"
    tsv.write_tsv(path, ["utt", "text", "score"], rows)
    assert path.read_text(encoding="utf-8") == 'utt\ttext\tscore\nu1\the said "go" — ok\t-1.5\nu2\t\t\n'
    with open(path, newline="", encoding="utf-8") as handle:
        plain = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert plain == tsv.read_tsv(path)
    frame = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    assert frame.equals(tsv.read_frame(path))


def test_frames_write_missing_values_empty_and_floats_in_full(tmp_path):
    frame = pd.DataFrame({"wer": [0.1 + 0.2, np.nan], "n": [3, 4], "note": ["x", None]})
    tsv.write_frame(tmp_path / "f.tsv", frame)
    assert tsv.read_tsv(tmp_path / "f.tsv") == [{"wer": "0.30000000000000004", "n": "3", "note": "x"},
                                                 {"wer": "", "n": "4", "note": ""}]


@pytest.mark.parametrize("text, message", [
    ("a\tb\nx\\qy\tz\n", r"line 2: backslash followed by 'q'"),
    ("a\tb\nx\\", r"line 2: backslash followed by ''"),
    ("a\tb\n1\t2\t3\n", "line 2: 3 fields, the header has 2"),
    ("", "empty file"),
])
def test_malformed_files_are_one_line_errors_naming_the_line(tmp_path, text, message):
    (tmp_path / "bad.tsv").write_text(text, encoding="utf-8")
    with pytest.raises(UserError, match=message):
        tsv.read_tsv(tmp_path / "bad.tsv")


def test_missing_columns_files_and_non_utf8_bytes_are_user_errors(tmp_path):
    tsv.write_tsv(tmp_path / "t.tsv", ["a"], [{"a": "1"}])
    with pytest.raises(UserError, match="missing column"):
        tsv.read_tsv(tmp_path / "t.tsv", ["a", "b"])
    with pytest.raises(UserError, match="file not found"):
        tsv.read_tsv(tmp_path / "none.tsv")
    (tmp_path / "latin1.tsv").write_bytes("a\nok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.tsv: line 3: byte 0xe9 is not UTF-8; re-encode"):
        tsv.read_tsv(tmp_path / "latin1.tsv")


def test_a_transcript_with_quotes_and_backslashes_survives_prepare_corpus(tmp_path):
    """punctuation: keep passes `"` and `\\` into train.tsv; reading it back gives the same text."""
    texts = ['She said "stop" twice', 'a back\\slash and a \\t that is no tab', '"quoted" start', "plain words"]
    lines = ["audio\ttext\tspeaker"]
    for i in range(12):
        soundfile.write(str(tmp_path / f"u{i}.wav"), np.full(4000, 0.1 * (i + 1) / 12), 8000, subtype="PCM_16")
        lines.append(f"u{i}.wav\t{texts[i % len(texts)]}\ts{i % 4}")
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"data": {"source": "manifest", "path": str(tmp_path / "m.tsv"), "workers": 1,
                                           "split_by": "utterance", "normalize": {"punctuation": "keep",
                                                                                  "lowercase": False}}}))
    prepare_corpus.run(["--config", str(config), "--outdir", str(tmp_path / "out")])
    got = [r["text"] for split in ("train", "dev", "test") for r in read_manifest(tmp_path / "out" / f"{split}.tsv")]
    assert sorted(got) == sorted(texts[i % len(texts)] for i in range(12))
