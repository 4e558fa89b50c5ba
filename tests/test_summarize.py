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
