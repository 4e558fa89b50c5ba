"""Out-of-vocabulary words: the OOV rate against the lexicon, in test.json, the summary and
collect; the lexicon spells the whole n-gram vocabulary, so it covers all LM text."""

from __future__ import annotations

import dataclasses
import json

import pytest

from asrsweep.decoding import train_ngram
from asrsweep.decoding.decode_frozen import main as decode_frozen
from asrsweep.decoding.kneser_ney import estimate, write_arpa
from asrsweep.decoding.make_lexicon import arpa_order, arpa_unigrams, build_lexicon, piece_sentences
from asrsweep.decoding.scoring import oov_rate
from asrsweep.results.table import METRICS, run_rows
from test_decode_sweep import common_flags, run_sweep, world  # noqa: F401  (fixture)
from test_decoder import FakeTokens
from test_nbest import frozen_config


class SentenceTokens(FakeTokens):
    """FakeTokens over whole sentences: each word spelled alone, as sentencepiece does."""

    def encode(self, text):
        spell = super().encode
        return [i for word in text.split() for i in spell(word)]


def test_oov_rate_counts_tokens_not_types():
    out = oov_rate(["the cat sat", "the cap", ""], {"the", "cat", "sat"})
    assert out == {"rate": pytest.approx(1 / 5), "oov": 1, "words": 5}
    assert oov_rate([], {"a"})["rate"] == 0.0


def test_lexicon_covers_every_lm_text_word(tmp_path):
    """Words of ngram.text files (not in the transcripts) reach lm.arpa, so the lexicon."""
    if "text" not in {f.name for f in dataclasses.fields(train_ngram.NgramConfig)}:
        pytest.skip("ngram.text not in this tree yet")
    (tmp_path / "lm.txt").write_text("the cat sat\nthe dog\n", encoding="utf-8")
    (tmp_path / "extra.txt").write_text("a zebra grazed\nthe cat sat\n", encoding="utf-8")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"ngram": {"order": 2, "estimator": "builtin", "text": [str(tmp_path / "extra.txt")],
                                            "text_mode": "append", "drop_eval_sentences": True}}))
    train_ngram.main(["--config", str(config), "--text", str(tmp_path / "lm.txt"), "--outdir", str(tmp_path / "ng")])
    arpa = tmp_path / "ng" / "lm.arpa"
    entries, skipped = build_lexicon(FakeTokens(), arpa_unigrams(arpa))
    lexicon = {w for w, _ in entries}
    assert {"the", "cat", "sat", "dog", "a", "zebra", "grazed"} <= lexicon and not skipped
    assert oov_rate(["a zebra sat", "the gnu"], lexicon - {"<unk>"})["oov"] == 1
    assert arpa_order(arpa) == 2
    # The token n-gram of lexicon_free reads the sentences the word LM was estimated from
    # (sentences.txt: lm.txt and ngram.text, dev/test sentences dropped).
    def estimated_sentences(*eval_files) -> list[str]:
        out = tmp_path / f"ng{len(eval_files)}"
        train_ngram.main(["--config", str(config), "--text", str(tmp_path / "lm.txt"), "--outdir", str(out),
                          "--eval", *map(str, eval_files)])
        return (out / "sentences.txt").read_text(encoding="utf-8").splitlines()

    (tmp_path / "dev.tsv").write_text("utt_id\ttext\nd1\ta zebra grazed\n", encoding="utf-8")
    assert estimated_sentences(tmp_path / "dev.tsv") == ["the cat sat", "the dog", "the cat sat"]  # dev dropped
    assert estimated_sentences() == ["the cat sat", "the dog", "a zebra grazed", "the cat sat"]


def test_token_lm_text_is_pieces(tmp_path):
    assert list(piece_sentences(SentenceTokens(), ["ab c", ""])) == ["\u2581 a b \u2581 c"]
    write_arpa(estimate(["a b"], 3), tmp_path / "x.arpa")
    assert arpa_order(tmp_path / "x.arpa") == 3


def test_oov_in_test_json_and_summary(world):  # noqa: F811
    run_sweep(world, 1)
    out = world["tmp"] / "nbest-oov"
    decode_frozen(common_flags(world, frozen_config(world)) + [
        "--best", str(world["tmp"] / "decode1-1" / "best_on_dev.json"), "--outdir", str(out)])
    result = json.loads((out / "test.json").read_text())
    oov = result["oov"]
    assert oov["against"] == "lexicon" and oov["lexicon_words"] == 4  # the, cat, sat, dog
    for split in ("dev", "test"):
        assert 0.0 <= oov[split]["rate"] <= 1.0 and oov[split]["words"] > 0
    rows = run_rows({"experiment": "e", "run": "r", "values": {}, "beam": {"best_on_dev": {}, "test": result}}, out)
    assert {"oov_dev", "oov_test"} <= set(METRICS)
    assert all(r["oov_test"] == oov["test"]["rate"] and r["oov_dev"] == oov["dev"]["rate"] for r in rows)


def test_collect_prints_oov():
    import pandas as pd

    from asrsweep.results.collect import wide

    rows = pd.DataFrame([{"run": "r1", "stage": s, "test_wer": "0.1", "dev_wer": "0.2", "oov_dev": "0.05",
                          "oov_test": "0.125"} for s in ("greedy", "ngram_beam", "rescored")])
    out = wide(rows, ["run"])
    assert out.loc[0, "oov dev"] == "5.00" and out.loc[0, "oov test"] == "12.50"
