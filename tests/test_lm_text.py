"""Your own LM text (`ngram.text`, `lm.text`): plain or .gz files, normalised like the transcripts,
appended or replacing; dev/test sentences counted and removed; plan refuses a missing file."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from asrsweep.core.common import UserError
from asrsweep.data import lm_text
from asrsweep.data.audio import NormalizeConfig
from asrsweep.decoding import kneser_ney, train_ngram
from asrsweep.experiment.sweep import load_experiment
from asrsweep.rescoring import train_lm

ASRSWEEP = str(Path(sys.executable).with_name("asrsweep"))
TRANSCRIPTS = ["the cat sat", "a dog ran", "the cat sat"]
DEV, TEST = "the red fox jumped", "it's a bird"


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    """lm.txt, dev.tsv, test.tsv of a data stage, a plain and a gzip text file of the user's."""
    (tmp_path / "lm.txt").write_text("\n".join(TRANSCRIPTS) + "\n")
    for split, text in (("dev", DEV), ("test", TEST)):
        (tmp_path / f"{split}.tsv").write_text(f"utt_id\taudio\ttext\n{split}-0\ta.wav\t{text}\n")
    (tmp_path / "books.txt").write_text("The Red Fox jumped!\n\n  Birds fly south.  \nthe cat sat\n")
    with gzip.open(tmp_path / "news.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("It's a BIRD.\nplanes fly north\n")
    return {name: tmp_path / name for name in ("lm.txt", "dev.tsv", "test.tsv", "books.txt", "news.txt.gz")}


def gather(corpus, files, mode="append", drop=True) -> lm_text.LMText:
    evals = lm_text.eval_sentences([corpus["dev.tsv"], corpus["test.tsv"]])
    return lm_text.gather(corpus["lm.txt"], [str(corpus[f]) for f in files], mode, drop, evals,
                          NormalizeConfig(), "ngram")


def test_files_are_normalised_and_dev_test_sentences_removed(corpus):
    got = gather(corpus, ["books.txt", "news.txt.gz"])
    assert got.sentences == TRANSCRIPTS + ["birds fly south", "the cat sat", "planes fly north"]
    r = got.report
    assert [f["sentences"] for f in r["files"]] == [3, 2] and [f["eval_overlap"] for f in r["files"]] == [1, 1]
    assert (r["eval_overlap"], r["eval_removed"], r["n_file_sentences"], r["n_sentences"]) == (2, 2, 3, 6)


def test_drop_eval_sentences_false_keeps_them_but_still_counts(corpus):
    got = gather(corpus, ["books.txt", "news.txt.gz"], drop=False)
    assert "the red fox jumped" in got.sentences and "it's a bird" in got.sentences
    assert got.report["eval_overlap"] == 2 and got.report["eval_removed"] == 0


def test_replace_uses_the_files_alone_and_append_adds_them(corpus):
    replace = gather(corpus, ["news.txt.gz"], mode="replace")
    assert replace.sentences == ["planes fly north"] and replace.report["n_transcript_sentences"] == 0
    append = gather(corpus, ["news.txt.gz"], mode="append")
    assert append.sentences == TRANSCRIPTS + ["planes fly north"]


def test_no_files_is_lm_txt_exactly_and_its_overlap_is_reported(corpus):
    corpus["lm.txt"].write_text("the cat sat\n\nthe red fox jumped\n")
    for mode in ("append", "replace"):
        got = gather(corpus, [], mode=mode)
        assert got.sentences == ["the cat sat", "", "the red fox jumped"]  # never filtered
        assert got.report["transcript_eval_overlap"] == 1 and got.report["eval_removed"] == 0


def test_gzip_is_found_by_its_magic_and_bad_files_are_one_line(corpus, tmp_path):
    hidden = tmp_path / "news.txt"
    hidden.write_bytes(corpus["news.txt.gz"].read_bytes())
    assert list(lm_text.read_lines(hidden)) == ["It's a BIRD.", "planes fly north"]
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe caf\xe9\n")
    with pytest.raises(UserError, match="bad.txt: cannot read as UTF-8"):
        list(lm_text.read_lines(tmp_path / "bad.txt"))
    with pytest.raises(UserError, match="not found"):
        list(lm_text.read_lines(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match="ngram.text_mode"):
        lm_text.gather(corpus["lm.txt"], [], "prepend", True, set(), NormalizeConfig(), "ngram")


def test_normalisation_follows_data_normalize():
    cfg = lm_text.normalize_config({"normalize": {"lowercase": False, "punctuation": "keep"}})
    assert cfg == NormalizeConfig(lowercase=False, punctuation="keep")
    assert lm_text.normalize_config({"demo": {}}) == NormalizeConfig()


def run_ngram(tmp_path, corpus, **ngram) -> dict:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"ngram": {"order": 2, **ngram}, "data": {"source": "manifest"}}))
    train_ngram.main(["--config", str(config), "--text", str(corpus["lm.txt"]), "--eval", str(corpus["dev.tsv"]),
                      str(corpus["test.tsv"]), "--outdir", str(tmp_path / "out")])
    return json.loads((tmp_path / "out" / "ngram.json").read_text())


def test_train_ngram_without_files_is_todays_model(tmp_path, corpus):
    info = run_ngram(tmp_path, corpus)
    with open(corpus["lm.txt"], encoding="utf-8") as handle:
        kneser_ney.write_arpa(kneser_ney.estimate(handle, 2), tmp_path / "today.arpa")
    assert (tmp_path / "out" / "lm.arpa").read_text() == (tmp_path / "today.arpa").read_text()
    assert info["text"]["n_sentences"] == 3 and info["order"] == 2 and info["config"]["text"] == []


def test_train_ngram_with_files_reports_and_removes_contamination(tmp_path, corpus):
    info = run_ngram(tmp_path, corpus, text=[str(corpus["books.txt"]), str(corpus["news.txt.gz"])])
    arpa = kneser_ney.read_arpa(tmp_path / "out" / "lm.arpa")
    assert ("planes",) in arpa and ("birds",) in arpa and ("fox",) not in arpa and ("bird",) not in arpa
    assert info["text"]["eval_overlap"] == 2 and info["text"]["eval_removed"] == 2
    (tmp_path / "r").mkdir()
    replaced = run_ngram(tmp_path / "r", corpus, text=[str(corpus["news.txt.gz"])], text_mode="replace")
    arpa = kneser_ney.read_arpa(tmp_path / "r" / "out" / "lm.arpa")
    assert ("planes",) in arpa and ("cat",) not in arpa and replaced["text"]["n_sentences"] == 1


def test_train_lm_reads_lm_text_and_reports_it(tmp_path, corpus):
    config = tmp_path / "config.json"
    lm = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 16, "vocab_size": 60, "max_steps": 2,
          "batch_size": 2, "warmup_steps": 1, "eval_every": 2, "text": [str(corpus["books.txt"])]}
    config.write_text(json.dumps({"seed": 1, "lm": lm}))
    lm_json = train_lm.main(["--config", str(config), "--text", str(corpus["lm.txt"]), "--eval", str(corpus["dev.tsv"]),
                             str(corpus["test.tsv"]), "--outdir", str(tmp_path / "lm"), "--checkpoint-dir",
                             str(tmp_path / "ck"), "--threads", "1", "--device", "cpu"])
    assert lm_json["text"]["eval_removed"] == 1 and lm_json["text"]["n_sentences"] == 5
    assert lm_json["n_train_sentences"] + lm_json["n_dev_sentences"] == 5


@pytest.mark.parametrize("setting", ["ngram.text", "lm.text"])
def test_plan_refuses_a_missing_text_file_in_one_line(tmp_path, setting):
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"controls: {{{setting}: [nowhere/books.txt.gz]}}\n")
    with pytest.raises(UserError, match=rf"{setting}\[0\]"):
        load_experiment(exp)
    proc = subprocess.run([ASRSWEEP, "plan", str(exp), "--results", str(tmp_path / "r")], cwd=ROOT,
                          capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(lines) == 1 and setting in lines[0] and "nowhere" in lines[0]


def test_a_text_file_enters_only_its_stage_key(tmp_path, corpus):
    exp = tmp_path / "exp.yaml"
    exp.write_text("controls: {}\n")
    [plain] = load_experiment(exp).runs
    exp.write_text(f"controls: {{ngram.text: [{corpus['books.txt']}]}}\n")
    [with_text] = load_experiment(exp).runs
    assert with_text.keys["ngram"] != plain.keys["ngram"] and with_text.keys["lm"] == plain.keys["lm"]
    assert with_text.keys["train"] == plain.keys["train"]
