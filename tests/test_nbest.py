"""Frozen decode: n-best {dev,test}.tsv format, and its 1-best result agrees with the lists."""

from __future__ import annotations

import csv
import json

import pytest

from asrsweep.decoding.decode_frozen import HYP_COLUMNS, NBEST_COLUMNS as COLUMNS, main as decode_frozen
from test_decode_sweep import common_flags, config, run_sweep, world  # noqa: F401  (fixture)


def read(path):
    with open(path) as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def frozen_config(world, normalize="none", name="c1.json"):  # noqa: F811
    """The sweep's config plus the section `score` that the workflow writes for nbest."""
    path = config(world["tmp"], 1, name=name)  # nbest.size = 3
    cfg = json.loads(open(path).read())
    cfg["score"] = {"normalize": normalize}
    open(path, "w").write(json.dumps(cfg))
    return path


def test_nbest_format_and_ranks(world):  # noqa: F811
    run_sweep(world, 1)
    best = world["tmp"] / "decode1-1" / "best_on_dev.json"
    out = world["tmp"] / "nbest"
    cfg = frozen_config(world)
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


def test_greedy_hypotheses_are_written_like_the_beam_ones(world):  # noqa: F811
    """hyps_greedy_{dev,test}.tsv: the same columns as hyps_{split}.tsv, errors that add up to
    the greedy WER of test.json (the statistics read every stage from such files)."""
    run_sweep(world, 1)
    out = world["tmp"] / "nbest-greedy"
    decode_frozen(common_flags(world, frozen_config(world)) + [
        "--best", str(world["tmp"] / "decode1-1" / "best_on_dev.json"), "--outdir", str(out)])
    result = json.loads((out / "test.json").read_text())
    for split in ("dev", "test"):
        beam, greedy = read(out / f"hyps_{split}.tsv"), read(out / f"hyps_greedy_{split}.tsv")
        assert list(greedy[0]) == list(beam[0]) == HYP_COLUMNS
        assert [r["utt_id"] for r in greedy] == [r["utt_id"] for r in beam]
        assert [r["ref"] for r in greedy] == [r["ref"] for r in beam]
    greedy = read(out / "hyps_greedy_test.tsv")
    wer = sum(int(r["errors"]) for r in greedy) / sum(int(r["ref_words"]) for r in greedy)
    assert wer == result["greedy"]["wer"]
    assert result["scoring"] == {"normalize": "none"}


def test_scoring_normalisation_reaches_results_and_files(world):  # noqa: F811
    """score.normalize is applied to refs and hyps, written to the hyps files, recorded in test.json."""
    run_sweep(world, 1)
    best = str(world["tmp"] / "decode1-1" / "best_on_dev.json")
    plain, upper = world["tmp"] / "plain", world["tmp"] / "upper"
    decode_frozen(common_flags(world, frozen_config(world)) + ["--best", best, "--outdir", str(plain)])
    cfg = frozen_config(world, "whisper_en", name="c1-whisper.json")
    decode_frozen(common_flags(world, cfg) + ["--best", best, "--outdir", str(upper)])
    a, b = (json.loads((d / "test.json").read_text()) for d in (plain, upper))
    assert b["scoring"] == {"normalize": "whisper_en"}
    # The world's texts are already lowercase words: whisper_en changes nothing here.
    assert (a["wer"], a["greedy"]) == (b["wer"], b["greedy"])
    bad = frozen_config(world, "shouting", name="c1-bad.json")
    with pytest.raises(SystemExit):
        decode_frozen(common_flags(world, bad) + ["--best", best, "--outdir", str(world["tmp"] / "bad")])
