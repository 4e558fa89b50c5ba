"""Tests for asrsweep.results.summarize (and asrsweep.results.collect, which reads its output)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from asrsweep.results import collect

from asrsweep.results import summarize


def fake_result(run: str, seed: int, lm_weight: float, wer: float) -> dict:
    """A result.json as the workflow writes it (see the rescoring helper's report)."""
    beam_best = {"setting": {"lm_weight": lm_weight, "word_score": 1.0}, "dev_wer": wer, "dev_cer": wer / 4}
    beam_test = {"setting": beam_best["setting"], "split": "test", "wer": wer + 0.01, "cer": wer / 4,
                 "greedy": {"wer": 0.3, "cer": 0.08}}
    re_best = {"setting": {"ngram_weight": 1.0, "lm_weight": 0.5, "length_weight": 1.0}, "dev_wer": wer - 0.01,
               "dev_cer": 0.02, "oracle_wer": 0.01}
    re_test = {"setting": re_best["setting"], "split": "test", "wer": wer, "cer": 0.02, "oracle_wer": 0.015}
    return {"experiment": "demo", "run": run, "values": {"seed": seed, "decode.lm_weight": lm_weight},
            "train": {"steps": 100, "train_seconds": 10.0 + seed, "n_params": 1234},
            "paths": {"train_log": f"results/demo/train/{seed}/train_log.tsv"},
            "greedy": {"dev_wer": 0.31, "dev_cer": 0.09, "test_wer": 0.3, "test_cer": 0.08},
            "beam": {"best_on_dev": beam_best, "test": beam_test},
            "rescore": {"best_on_dev": re_best, "test": re_test}}


def write_runs(root, specs) -> None:
    for run, seed, lmw, wer in specs:
        (root / run).mkdir(parents=True)
        (root / run / "result.json").write_text(json.dumps(fake_result(run, seed, lmw, wer)))


SPECS = [("r1", 1, 1.0, 0.10), ("r2", 2, 1.0, 0.14), ("r3", 3, 1.0, 0.12), ("r4", 1, 2.0, 0.2)]


def test_rows_columns_and_seed_aggregation(tmp_path) -> None:
    write_runs(tmp_path / "runs", SPECS)
    out = tmp_path / "summary.tsv"
    summarize.main(["--runs", str(tmp_path / "runs"), "--out", str(out)])
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    for column in ["experiment", "run", "aggregate", "stage", "seed", "decode.lm_weight", "dev_wer",
                   "test_wer", "test_cer", "oracle_dev_wer", "oracle_test_wer", "settings", "steps",
                   "train_seconds", "n_params", "paths", "n", "test_wer_std"]:
        assert column in table.columns, column
    runs = table[table["aggregate"] == "run"]
    assert len(runs) == 4 * 3 and set(runs["stage"]) == {"greedy", "ngram_beam", "rescored"}
    agg = table[(table["aggregate"] == "seed_mean") & (table["stage"] == "rescored")]
    assert len(agg) == 2
    three = agg[agg["n"] == 3].iloc[0]
    assert float(three["test_wer"]) == pytest.approx(0.12)
    assert float(three["test_wer_std"]) == pytest.approx(0.02)
    assert float(three["train_seconds"]) == pytest.approx(12.0)
    one = agg[agg["n"] == 1].iloc[0]
    assert one["test_wer_std"] == ""  # one seed: no spread
    assert json.loads(runs[runs["stage"] == "rescored"].iloc[0]["settings"])["lm_weight"] == 0.5


def test_concat_summaries_and_collect(tmp_path, capsys) -> None:
    for exp in ("a", "b"):
        write_runs(tmp_path / exp / "runs", SPECS[:2])
        summarize.main(["--runs", str(tmp_path / exp / "runs"), "--out", str(tmp_path / exp / "summary.tsv")])
    out = tmp_path / "summary.tsv"
    summarize.main(["--summaries", str(tmp_path / "a" / "summary.tsv"), str(tmp_path / "b" / "summary.tsv"), "--out", str(out)])
    assert len(pd.read_csv(out, sep="\t")) == 2 * len(pd.read_csv(tmp_path / "a" / "summary.tsv", sep="\t"))
    collect.main(["--summary", str(tmp_path / "a" / "summary.tsv")])
    text = capsys.readouterr().out
    assert "r1" in text and "rescored" in text and "best" in text


def test_missing_runs_is_user_error(tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        summarize.main(["--runs", str(tmp_path), "--out", str(tmp_path / "s.tsv")])
    assert exc.value.code == 2


def write_stage_files(root, run: str, wer: float) -> dict:
    """hyps files of the beam and rescored stages, and a rescoring grid whose optimum is its
    largest length_weight; returns the paths result.json carries."""
    from asrsweep.core import tsv

    paths = {"nbest": root / run / "nbest", "rescore": root / run / "rescore"}
    for depth, folder in enumerate(paths.values()):
        folder.mkdir(parents=True)
        for split in ("dev", "test"):
            # 0-4 errors of 10 words; a lower `wer` takes one off everywhere, rescoring one off every third.
            errors = [max((i * 37) % 5 - (wer < 0.12) - depth * (i % 3 == 0), 0) for i in range(40)]
            rows = [{"utt_id": f"{split}{i:02d}", "ref": "r", "hyp": "h", "errors": e, "ref_words": 10}
                    for i, e in enumerate(errors)]
            tsv.write_tsv(folder / f"hyps_{split}.tsv", ["utt_id", "ref", "hyp", "errors", "ref_words"], rows)
    grid = [{"ngram_weight": "1.0", "lm_weight": "0.5", "length_weight": str(w), "split": "dev", "wer": str(0.3 - 0.01 * w)}
            for w in (0.0, 1.0)]
    tsv.write_tsv(root / run / "grid.tsv", list(grid[0]), grid)
    return {**{k: str(v) for k, v in paths.items()}, "grid": str(root / run / "grid.tsv")}


def test_intervals_significance_and_edges(tmp_path, capsys) -> None:
    specs = [("r1", 1, 1.0, 0.10), ("r2", 2, 1.0, 0.14)]
    for run, seed, lmw, wer in specs:
        result = fake_result(run, seed, lmw, wer)
        result["paths"] = write_stage_files(tmp_path / "stages", run, wer)
        hyps = tmp_path / "stages" / run
        for stage, folder in (("beam", "nbest"), ("rescore", "rescore")):
            from asrsweep.results.stats import read_errors
            dev, test = (read_errors(hyps / folder / f"hyps_{s}.tsv").wer for s in ("dev", "test"))
            result[stage]["best_on_dev"]["dev_wer"], result[stage]["test"]["wer"] = dev, test
        (tmp_path / "runs" / run).mkdir(parents=True)
        (tmp_path / "runs" / run / "result.json").write_text(json.dumps(result))
    out = tmp_path / "summary.tsv"
    summarize.main(["--runs", str(tmp_path / "runs"), "--out", str(out), "--resamples", "500", "--baseline", "r2"])
    table = pd.read_csv(out, sep="\t", keep_default_na=False)
    rows = table[table["stage"] != "greedy"]
    for split in ("dev", "test"):
        wer, lo, hi = (pd.to_numeric(rows[f"{split}_wer{s}"]) for s in ("", "_lo", "_hi"))
        assert ((lo <= wer) & (wer <= hi) & (lo < hi)).all()
    r1 = table[(table["run"] == "r1") & (table["aggregate"] == "run")].set_index("stage")
    assert float(r1.at["rescored", "p_improve"]) > 0.95 and float(r1.at["rescored", "p_vs_baseline"]) < 0.05
    assert float(r1.at["rescored", "p_improve_prev"]) > 0.5 and r1.at["ngram_beam", "p_vs_prev"] == ""
    assert r1.at["rescored", "edge"] == "rescore.length_weight=max"
    assert r1.at["rescored", "edge_hint"] == "rescore.length_weight: extend above 1 (try 2)"
    assert (table.loc[table["aggregate"] == "run", "baseline"] == "r2").all()
    mean = table[(table["aggregate"] == "seed_mean") & (table["stage"] == "rescored")].iloc[0]
    assert float(mean["test_wer_lo"]) <= float(mean["test_wer"]) <= float(mean["test_wer_hi"])
    capsys.readouterr()
    collect.main(["--summary", str(out)])
    text = capsys.readouterr().out
    low, high = (100 * float(r1.at["rescored", f"test_wer_{s}"]) for s in ("lo", "hi"))
    assert f"{100 * float(r1.at['rescored', 'test_wer']):.2f} [{low:.2f}, {high:.2f}]" in text
    assert "significance on test (paired bootstrap over utterances; baseline: r2)" in text
    assert "r1           rescored    rescore.length_weight=max: rescore.length_weight: extend above 1 (try 2)" in text
    assert "not compared" not in text
    again = tmp_path / "again.tsv"
    summarize.main(["--runs", str(tmp_path / "runs"), "--out", str(again), "--resamples", "500", "--baseline", "r2"])
    assert again.read_text() == out.read_text()  # seeded: the same numbers
    summarize.main(["--runs", str(tmp_path / "runs"), "--out", str(again), "--resamples", "500", "--seed", "1"])
    other = pd.read_csv(again, sep="\t", keep_default_na=False)  # the default baseline: the first run
    assert other["baseline"].iloc[0] == "r1"
    assert (other["test_wer_lo"] != table["test_wer_lo"]).any() or (other["test_wer_hi"] != table["test_wer_hi"]).any()
    with pytest.raises(SystemExit) as stop:
        summarize.main(["--runs", str(tmp_path / "runs"), "--out", str(again), "--resamples", "0"])
    assert stop.value.code == 2
