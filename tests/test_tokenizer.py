"""Tests for asrsweep.data.train_tokenizer and asrsweep.core.tokens."""

from __future__ import annotations

import json
import random

import pytest

from asrsweep.core.tokens import Tokens, ctc_collapse
from asrsweep.data.train_tokenizer import main

WORDS = "the cat sat on a mat dog ran far away into green fields under blue skies".split()


def make_data(path, n=300):
    rng = random.Random(0)
    path.mkdir(parents=True, exist_ok=True)
    rows = ["utt_id\taudio\ttext\tspeaker\tduration"]
    rows += [f"u{i}\ta.wav\t{' '.join(rng.choice(WORDS) for _ in range(rng.randint(2, 8)))}\ts\t1.0" for i in range(n)]
    (path / "train.tsv").write_text("\n".join(rows) + "\n")
    return path


def train(tmp_path, name, kind="unigram", vocab=30):
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"tokenizer": {"type": kind, "vocab_size": vocab}}))
    main(["--config", str(config), "--data", str(make_data(tmp_path / "data")), "--outdir", str(tmp_path / name)])
    return tmp_path / name


@pytest.mark.parametrize("kind", ["unigram", "bpe", "char"])
def test_deterministic_blank_first_and_roundtrip(tmp_path, kind):
    a, b = train(tmp_path, "a", kind), train(tmp_path, "b", kind)
    assert (a / "spm.model").read_bytes() == (b / "spm.model").read_bytes()
    assert (a / "tokens.txt").read_text() == (b / "tokens.txt").read_text()
    tokens = Tokens.load(a)
    assert tokens.pieces[0] == "<blank>" and tokens.vocab_size == len(tokens.pieces)
    if kind != "char":
        assert tokens.vocab_size == 31
    text = "the green dog ran under blue skies"
    ids = tokens.encode(text)
    assert ids and 0 not in ids and max(ids) < tokens.vocab_size
    assert tokens.decode(ids) == text
    assert tokens.pieces[ids[0]].startswith("\u2581")
    assert "<blank>" not in (a / "command.sh").read_text()


def test_ctc_collapse_merges_repeats_and_drops_blanks():
    assert ctc_collapse([0, 3, 3, 0, 3, 5, 5, 0]) == [3, 3, 5]


def test_too_large_vocab_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        train(tmp_path, "big", "unigram", 5000)
    assert err.value.code == 2 and "lower vocab_size" in capsys.readouterr().err


def test_mismatched_tokens_txt_is_refused(tmp_path):
    out = train(tmp_path, "a")
    (out / "tokens.txt").write_text("<blank>\nx\n")
    with pytest.raises(Exception, match="does not match"):
        Tokens.load(out)
