"""Frozen decode: n-best {dev,test}.tsv format, and its 1-best result agrees with the lists."""

from __future__ import annotations

import csv
import json

from asrsweep.decoding.decode_frozen import NBEST_COLUMNS as COLUMNS, main as decode_frozen
from test_decode_sweep import common_flags, config, run_sweep, world  # noqa: F401  (fixture)


def read(path):
    with open(path) as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_nbest_format_and_ranks(world):  # noqa: F811
    run_sweep(world, 1)
    best = world["tmp"] / "decode1-1" / "best_on_dev.json"
    out = world["tmp"] / "nbest"
    cfg = config(world["tmp"], 1, name="c1.json")  # nbest.size = 3
    decode_frozen(common_flags(world, cfg) + ["--best", str(best), "--outdir", str(out), "--threads", "2"])
    setting = json.loads(best.read_text())["setting"]
    for split, utts in (("dev", {"d1", "d2", "d3"}), ("test", {"t1", "t2", "t3"})):
        rows = read(out / f"{split}.tsv")
        assert list(rows[0]) == COLUMNS
        assert {r["utt_id"] for r in rows} == utts
        for utt in utts:
            mine = [r for r in rows if r["utt_id"] == utt]
            assert [int(r["rank"]) for r in mine] == list(range(1, len(mine) + 1)) and len(mine) <= 3
            assert len({r["hyp"] for r in mine}) == len(mine)  # distinct word strings
            for r in mine:
                assert int(r["words"]) == len(r["hyp"].split()) and int(r["tokens"]) >= int(r["words"])
                assert float(r["am_score"]) <= 0.0 and float(r["ngram_score"]) <= 0.0
            # rank order follows the decoder's total score
            totals = [float(r["am_score"]) + setting["lm_weight"] * float(r["ngram_score"])
                      + setting["word_score"] * int(r["words"]) for r in mine]
            assert totals == sorted(totals, reverse=True)
    top = {r["utt_id"]: r["hyp"] for r in read(out / "dev.tsv") if r["rank"] == "1"}
    assert top == {"d1": "the cat sat", "d2": "the cat sat", "d3": "the dog sat"}
    # The first-pass result comes from the same search: the rank-1 hypotheses.
    assert {r["utt_id"]: r["hyp"] for r in read(out / "hyps_dev.tsv")} == top
    result = json.loads((out / "test.json").read_text())
    assert result["setting"] == setting and result["dev"]["wer"] == 0.0 and result["split"] == "test"
