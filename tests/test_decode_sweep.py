"""Decode sweep: deterministic settings, shards merge to the unsharded sweep, dev/test separation."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from asrsweep.core.common import UserError
from asrsweep.decoding.decode_sweep import main as decode_sweep
from asrsweep.decoding.sweep_space import DecodeConfig, DecodeSweepSpec, sweep_settings
from asrsweep.decoding.decode_frozen import main as decode_frozen
from asrsweep.decoding.merge_sweep import main as merge_sweep
from test_decoder import CAP, DOG_OR_CAT, TOKENS, frames, utterance, write_world

CLEAN_DOG = utterance([{"\u2581dog": 0.9}])
DEV = {"d1": (CAP, "the cat sat"), "d2": (DOG_OR_CAT, "the cat sat"), "d3": (CLEAN_DOG, "the dog sat")}
TEST = {"t1": (DOG_OR_CAT, "the dog sat"), "t2": (CAP, "the cat sat"),
        "t3": (frames([{"\u2581the": 0.9}, {"<blank>": 0.9}]), "the")}
GRID = {"lm_weight": [0.0, 1.0, 2.0], "word_score": [0.0, 1.0]}


def save_split(path, utts: dict) -> None:
    torch.save({"utt_ids": list(utts), "texts": [t for _, t in utts.values()],
                "logprobs": [torch.from_numpy(e).half() for e, _ in utts.values()], "tokens": TOKENS}, path)


@pytest.fixture
def world(tmp_path):
    lexicon, arpa, tokens = write_world(tmp_path)
    emissions = tmp_path / "emissions"
    emissions.mkdir()
    save_split(emissions / "dev.pt", DEV)
    save_split(emissions / "test.pt", TEST)
    return {"lexicon": lexicon, "arpa": arpa, "tokens": tokens, "emissions": emissions, "tmp": tmp_path}


def config(tmp_path, shards: int, name: str = "config.json", **sweep) -> str:
    path = tmp_path / name
    decode = {"beam_size": 20, "beam_size_token": 9, "sweep": {"method": "grid", "grid": GRID,
                                                              "shards": shards, **sweep}}
    path.write_text(json.dumps({"decode": decode, "nbest": {"size": 3}, "score": {}}))
    return str(path)


def common_flags(w, cfg):
    return ["--config", cfg, "--emissions", str(w["emissions"]), "--lexicon", str(w["lexicon"]),
            "--arpa", str(w["arpa"]), "--tokens", str(w["tokens"])]


def run_sweep(w, shards: int, threads: int = 1) -> list[dict]:
    cfg = config(w["tmp"], shards, name=f"c{shards}.json")
    out = w["tmp"] / f"decode{shards}-{threads}"
    for i in range(shards):
        decode_sweep(common_flags(w, cfg) + ["--shard", str(i), "--num-shards", str(shards),
                                             "--threads", str(threads), "--out", str(out / f"shards/{i}-of-{shards}.tsv")])
    merge_sweep(["--config", cfg, "--shards", *[str(out / f"shards/{i}-of-{shards}.tsv") for i in range(shards)],
                 "--out-dir", str(out)])
    with open(out / "sweep.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_settings_are_deterministic():
    cfg = DecodeConfig(sweep=DecodeSweepSpec(grid={"lm_weight": [1, 2, 3], "word_score": [0, 1],
                                                   "beam_size": []}))
    settings = sweep_settings(cfg, "x")
    assert len(settings) == 6 and [s.lm_weight for s in settings[:2]] == [1.0, 1.0]
    assert {s.beam_size for s in settings} == {50}  # empty list: not swept
    rnd = DecodeConfig(sweep=DecodeSweepSpec(method="random", n=5, seed=3,
                                             ranges={"lm_weight": [0, 3], "beam_size": [10, 20]}))
    a, b = sweep_settings(rnd, "x"), sweep_settings(rnd, "x")
    assert a == b and len(a) == 5 and all(10 <= s.beam_size <= 20 for s in a)
    with pytest.raises(UserError, match="method"):
        sweep_settings(DecodeConfig(sweep=DecodeSweepSpec(method="bayes")), "x")
    halving = DecodeConfig(sweep=DecodeSweepSpec(method="halving", candidates="random", n=5, seed=3,
                                                 ranges={"lm_weight": [0, 3], "beam_size": [10, 20]}))
    assert sweep_settings(halving, "x") == a  # halving starts from the random draws


@pytest.mark.parametrize("method", ["halving", "tpe"])
def test_search_methods_through_the_steps(world, method):
    """One job searches; every decoded setting is listed with its dev share; only full-dev rows win."""
    cfg = config(world["tmp"], 1, name=f"{method}.json", method=method, first_share=0.3, eta=2, margin=0.0,
                 screen_beam=10, n=5, ranges={"lm_weight": [0.0, 2.0]})  # plain halving by 2: known rungs
    out = world["tmp"] / method
    decode_sweep(common_flags(world, cfg) + ["--out", str(out / "shards/0-of-1.tsv")])
    merge_sweep(["--config", cfg, "--shards", str(out / "shards/0-of-1.tsv"), "--out-dir", str(out)])
    with open(out / "sweep.tsv") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))[1:]
    best = json.loads((out / "best_on_dev.json").read_text())
    shares = sorted({float(r["dev_share"]) for r in rows})
    if method == "halving":  # 6 grid settings on 1 of 3 dev utterances, 3 on 2, 2 on all 3
        assert len(rows) == 6 and shares == [0.333333, 0.666667, 1.0]
        assert [float(r["dev_share"]) for r in rows].count(1.0) == 2 == best["n_full_dev"]
        assert best["search"] == {"candidates": "grid", "eta": 2, "first_share": 0.3, "margin": 0.0,
                                  "screen_beam": 10, "seed": 0}
        # screen_beam 10: the early rungs at beam 10 (token beam 9 x 10/20), the last at beam 20
        assert {(r["beam_size"], r["beam_size_token"]) for r in rows if float(r["dev_share"]) < 1.0} == {("10", "4")}
        assert {(r["beam_size"], r["beam_size_token"]) for r in rows if float(r["dev_share"]) == 1.0} == {("20", "9")}
    else:
        assert 1 <= len(rows) <= 5 and shares == [1.0]
        assert all(0.0 <= float(r["lm_weight"]) <= 2.0 for r in rows)
    full = [r for r in rows if float(r["dev_share"]) == 1.0]
    assert best["method"] == method and best["dev_wer"] == min(float(r["wer"]) for r in full)


def test_search_refuses_shards(world, capsys):
    """halving and tpe run in one job: a hand-written config with shards 2 is one error line."""
    cfg = config(world["tmp"], 2, method="halving")
    with pytest.raises(SystemExit):
        decode_sweep(common_flags(world, cfg) + ["--num-shards", "2", "--out", str(world["tmp"] / "x/0-of-2.tsv")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "shards: 1" in err and "halving" in err


def test_shards_merge_to_the_unsharded_sweep(world):
    whole = run_sweep(world, 1)
    assert whole == run_sweep(world, 3)
    assert whole == run_sweep(world, 1, threads=2)
    assert len(whole) == 1 + 6 and whole[0]["decoder"] == "greedy"
    assert {r["split"] for r in whole} == {"dev"} and {r["dev_share"] for r in whole} == {"1.0"}


def test_best_on_dev_and_test_use_only_the_frozen_setting(world):
    run_sweep(world, 1)
    out = world["tmp"] / "decode1-1"
    best = json.loads((out / "best_on_dev.json").read_text())
    assert best["objective"] == "wer" and best["dev_wer"] == 0.0  # lm_weight > 0 fixes d2
    assert best["method"] == "grid" and best["search"] == {"grid": GRID} and best["n_full_dev"] == 6
    assert best["setting"]["lm_weight"] == 1.0  # the smallest lm_weight among the ties
    # decode_frozen decodes with the frozen setting only: force one with lm_weight 0.
    frozen = dict(best, setting={**best["setting"], "lm_weight": 0.0, "word_score": 0.0})
    (out / "frozen.json").write_text(json.dumps(frozen))
    cfg = config(world["tmp"], 1, name="c1.json")
    decode_frozen(common_flags(world, cfg) + ["--best", str(out / "frozen.json"), "--outdir", str(out)])
    result = json.loads((out / "test.json").read_text())
    assert result["setting"]["lm_weight"] == 0.0 and result["split"] == "test"
    with open(out / "hyps_test.tsv") as handle:
        hyps = {r["utt_id"]: r for r in csv.DictReader(handle, delimiter="\t")}
    assert hyps["t1"]["hyp"] == "the dog sat" and hyps["t2"]["hyp"] == "the cat sat"
    assert result["wer"] == 0.0 and result["greedy"]["wer"] > 0.0 and result["dev"]["wer"] > 0.0
    assert (out / "hyps_dev.tsv").is_file()


def test_sweep_never_reads_test(world):
    (world["emissions"] / "test.pt").write_bytes(b"not a torch file")
    rows = run_sweep(world, 1)
    assert len(rows) == 7


def test_num_shards_must_match_config(world):
    cfg = config(world["tmp"], 2)
    from asrsweep.core.common import cli_main
    with pytest.raises(SystemExit):
        cli_main(decode_sweep, common_flags(world, cfg) + ["--shard", "0", "--num-shards", "3",
                                                          "--out", str(world["tmp"] / "x/0-of-3.tsv")])
