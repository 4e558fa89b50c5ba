"""asrsweep.results.stats and .edges: bootstrap intervals, paired tests, grid-edge warnings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from asrsweep.core import tsv
from asrsweep.results import stats
from asrsweep.results.edges import find_edges, table_edges

RESAMPLES = 2000


def system(errors, words, prefix="u") -> stats.Errors:
    ids = tuple(f"{prefix}{i:03d}" for i in range(len(errors)))
    return stats.Errors(ids, np.asarray(errors, dtype=np.int64), np.asarray(words, dtype=np.int64))


def fixture_pair(n=60, seed=3) -> tuple[stats.Errors, stats.Errors]:
    """Two systems on one set: B makes fewer errors than A on most utterances, more on some."""
    rng = np.random.default_rng(seed)
    words = rng.integers(3, 15, size=n)
    a = np.minimum(rng.binomial(words, 0.2), words)
    b = np.maximum(a - rng.binomial(2, 0.4, size=n) + rng.binomial(1, 0.2, size=n), 0)
    return system(a, words), system(b, words)


def direct_percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile, written out."""
    ordered = sorted(values)
    pos = q / 100 * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def direct_bootstrap(a: stats.Errors, b: stats.Errors, resamples: int, rng) -> dict:
    """The textbook loop: draw utterances, sum errors and words, compare, one resample at a time."""
    n = len(a.utt_ids)
    wer_a, wer_b, deltas = [], [], []
    for _ in range(resamples):
        picks = rng.integers(0, n, size=n)
        ea = eb = words = 0
        for i in picks:
            ea += int(a.errors[i])
            eb += int(b.errors[i])
            words += int(a.ref_words[i])
        wer_a.append(ea / words)
        wer_b.append(eb / words)
        deltas.append(eb / words - ea / words)
    observed = b.wer - a.wer
    mean = sum(deltas) / len(deltas)
    far = sum(1 for d in deltas if abs(d - mean) >= abs(observed) - 1e-12)
    return {"a": (direct_percentile(wer_a, 2.5), direct_percentile(wer_a, 97.5)),
            "b": (direct_percentile(wer_b, 2.5), direct_percentile(wer_b, 97.5)),
            "p_improve": sum(1 for d in deltas if d < 0) / resamples, "p": (1 + far) / (1 + resamples)}


def vectorised(a: stats.Errors, b: stats.Errors, resamples: int, seed: int) -> dict:
    wers = stats.resampled_wers([a, b], resamples, seed)
    ranges = stats.intervals(wers)
    p_improve, p = stats.paired(wers, np.array([a.wer, b.wer]), np.array([1]), np.array([0]))
    return {"a": tuple(ranges[:, 0]), "b": tuple(ranges[:, 1]), "p_improve": p_improve[0], "p": p[0]}


def test_vectorised_equals_the_direct_loop_on_the_same_draws() -> None:
    a, b = fixture_pair()
    fast = vectorised(a, b, RESAMPLES, seed=7)
    slow = direct_bootstrap(a, b, RESAMPLES, stats.resampling_rng(a.utt_ids, 7))
    for key in ("a", "b"):
        assert fast[key] == pytest.approx(slow[key], abs=1e-12)
    assert fast["p_improve"] == slow["p_improve"] and fast["p"] == pytest.approx(slow["p"])
    assert fast["a"][0] < a.wer < fast["a"][1] and fast["p_improve"] > 0.95 and fast["p"] < 0.05


def test_vectorised_agrees_with_an_independent_direct_bootstrap() -> None:
    """Other draws (a generator of its own): the same distribution within Monte-Carlo error."""
    a, b = fixture_pair(seed=11)
    fast = vectorised(a, b, 4000, seed=1)
    slow = direct_bootstrap(a, b, 4000, np.random.default_rng(12345))
    for key in ("a", "b"):
        assert fast[key] == pytest.approx(slow[key], abs=0.01)
    assert fast["p_improve"] == pytest.approx(slow["p_improve"], abs=0.03)


def test_seeded_and_keyed_by_the_utterances() -> None:
    a, _ = fixture_pair()
    first = stats.resampled_wers([a], 500, seed=0)
    assert np.array_equal(first, stats.resampled_wers([a], 500, seed=0))
    assert not np.array_equal(first, stats.resampled_wers([a], 500, seed=1))
    counts = stats.draw_counts(a.utt_ids, 500, 0)
    assert counts.shape == (500, 60) and (counts.sum(axis=1) == 60).all()
    assert np.array_equal(counts, stats.draw_counts(a.utt_ids, 500, 0))


def test_identical_systems_and_a_perfect_one() -> None:
    a, _ = fixture_pair()
    wers = stats.resampled_wers([a, a], 1000, 0)
    p_improve, p = stats.paired(wers, np.array([a.wer, a.wer]), np.array([1]), np.array([0]))
    assert p_improve[0] == 0 and p[0] == 1
    perfect = stats.Errors(a.utt_ids, np.zeros_like(a.errors), a.ref_words)
    lo, hi = stats.intervals(stats.resampled_wers([perfect], 1000, 0))[:, 0]
    assert lo == hi == 0


def test_interval_narrows_with_more_utterances() -> None:
    small, large = system([1, 0, 2, 0] * 10, [5] * 40), system([1, 0, 2, 0] * 250, [5] * 1000)
    width = [np.diff(stats.intervals(stats.resampled_wers([s], 2000, 0))[:, 0])[0] for s in (small, large)]
    assert width[1] < width[0] / 3


def write_hyps(path, errors, words, prefix="u") -> None:
    rows = [{"utt_id": f"{prefix}{i:03d}", "ref": "a b", "hyp": "a", "errors": e, "ref_words": w}
            for i, (e, w) in enumerate(zip(errors, words))]
    tsv.write_tsv(path, ["utt_id", "ref", "hyp", "errors", "ref_words"], rows)


def test_rows_against_the_baseline_and_the_previous_stage(tmp_path) -> None:
    a, b = fixture_pair()
    files = {}
    for name, sys_, prefix in [("a", a, "u"), ("b", b, "u"), ("c", b, "v")]:
        for split in stats.SPLITS:
            files[(name, split)] = tmp_path / f"{name}_{split}.tsv"
            write_hyps(files[(name, split)], sys_.errors, sys_.ref_words, prefix)
    # run r1: beam a, rescored b; run r2: beam b, rescored on other utterances (c).
    runs = pd.DataFrame([
        {"run": "r1", "stage": "ngram_beam", "dev_wer": a.wer, "test_wer": a.wer, "_f": "a"},
        {"run": "r1", "stage": "rescored", "dev_wer": b.wer, "test_wer": b.wer, "_f": "b"},
        {"run": "r2", "stage": "ngram_beam", "dev_wer": b.wer, "test_wer": b.wer, "_f": "b"},
        {"run": "r2", "stage": "rescored", "dev_wer": 0.5, "test_wer": b.wer, "_f": "c"}])
    out, notes, _ = stats.with_statistics(runs, lambda label, split: files[(runs.at[label, "_f"], split)],
                                          stats.StatsConfig(RESAMPLES, 0), None)
    assert (out["baseline"] == "r1").all()
    assert (out["test_wer_lo"] <= out["test_wer"]).all() and (out["test_wer"] <= out["test_wer_hi"]).all()
    assert out["p_vs_baseline"].iloc[:2].isna().all()  # the baseline itself
    assert out.at[2, "p_improve"] > 0.95 and out.at[2, "p_vs_baseline"] < 0.05  # r2 beam (b) vs r1 beam (a)
    assert out.at[1, "p_improve_prev"] > 0.95 and math.isnan(out.at[0, "p_vs_prev"])  # greedy: no hyps
    assert math.isnan(out.at[3, "p_vs_baseline"]) and math.isnan(out.at[3, "p_vs_prev"])
    assert any("r2 rescored" in n and "cannot be paired" in n for n in notes)
    assert any("r2 rescored" in n and "dev WER" in n for n in notes)  # 0.5 is not its file's WER


def test_unknown_baseline_is_a_note(tmp_path) -> None:
    a, _ = fixture_pair()
    write_hyps(tmp_path / "h.tsv", a.errors, a.ref_words)
    runs = pd.DataFrame([{"run": "r1", "stage": "ngram_beam", "dev_wer": a.wer, "test_wer": a.wer}])
    _, notes, _ = stats.with_statistics(runs, lambda label, split: tmp_path / "h.tsv",
                                        stats.StatsConfig(100, 0), "r9")
    assert notes == ["baseline r9: no result (yet); p_vs_baseline is left empty"]


def grid(values: dict[str, list[float]], wer) -> list[dict]:
    """All points of a grid as text rows, dev WER from wer(point)."""
    keys = list(values)
    rows = [{}]
    for key in keys:
        rows = [{**row, key: v} for row in rows for v in values[key]]
    return [{**{k: str(v) for k, v in row.items()}, "split": "dev", "wer": str(wer(row))} for row in rows]


def test_edges_name_knob_side_and_the_range_to_extend(tmp_path) -> None:
    values = {"ngram_weight": [0.0, 0.5, 1.0], "lm_weight": [0.0, 0.5, 1.0], "length_weight": [-1.0, 0.0, 1.0, 2.0]}
    rows = grid(values, lambda p: 0.3 + 0.1 * p["ngram_weight"] - 0.02 * p["length_weight"] + abs(p["lm_weight"] - 0.5))
    chosen = {"ngram_weight": 0.0, "lm_weight": 0.5, "length_weight": 2.0}
    edges = find_edges(rows, chosen, "rescore")
    assert [e.label for e in edges] == ["rescore.ngram_weight=min", "rescore.length_weight=max"]
    assert edges[0].hint == "rescore.ngram_weight: 0 switches this LM off; dev prefers it off"
    assert edges[1].hint == "rescore.length_weight: extend above 2 (try 3)"
    flat = grid(values, lambda p: 1.0)  # a toy model: every setting ties
    assert find_edges(flat, {"ngram_weight": 0.0, "lm_weight": 0.0, "length_weight": -1.0}, "rescore") == []
    path = tmp_path / "sweep.tsv"
    sweep = [{"setting": "greedy", "decoder": "greedy", "lm_weight": "", "word_score": "", "split": "dev", "wer": "0.1"}]
    sweep += [{"setting": str(i), "decoder": "lexicon", **row} for i, row in
              enumerate(grid({"lm_weight": [0.5, 1.0], "word_score": [-1.0, 0.0]}, lambda p: 0.5 + p["word_score"] * 0.1))]
    tsv.write_tsv(path, list(sweep[1]), sweep)
    found = table_edges(path, {"setting": {"lm_weight": 0.5, "word_score": -1.0, "beam_size": 50}}, "decode")
    assert [(e.label, e.hint) for e in found] == [("decode.word_score=min", "decode.word_score: extend below -1 (try -2)")]
    assert table_edges(tmp_path / "missing.tsv", {"setting": {}}, "decode") == []
    drawn = [{"lm_weight": str(v), "wer": str(1 - v / 10)} for v in (0.2, 1.1, 2.0, 2.9, 2.95)]  # a random sweep
    [edge] = find_edges(drawn, {"lm_weight": 2.95}, "decode")
    assert edge.hint == "decode.lm_weight: extend above 2.95 (try 3.6375)"  # the mean gap, not the last


BASELINE_EXPERIMENT = """
recipe: default
controls: {stats.resamples: 500}
variables:
  ngram.order: [2, 3]
"""


def test_baseline_key_defaults_to_the_first_run_and_names_a_run(write_experiment, in_repo) -> None:
    from asrsweep.core.common import UserError
    from asrsweep.experiment.sweep import load_experiment

    experiment = load_experiment(write_experiment(BASELINE_EXPERIMENT))
    assert experiment.baseline == "order=2"
    assert stats.summary_flags(experiment) == "--baseline order=2 --resamples 500 --seed 0"
    chosen = load_experiment(write_experiment(BASELINE_EXPERIMENT + "baseline: order=3\n", name="b"))
    assert chosen.baseline == "order=3"
    with pytest.raises(UserError) as err:
        load_experiment(write_experiment(BASELINE_EXPERIMENT + "baseline: order=4\n", name="c"))
    assert str(err.value).count("\n") == 0
    assert "baseline: no run 'order=4'; did you mean 'order=3'? (the runs: order=2, order=3)" in str(err.value)
    with pytest.raises(UserError) as err:
        load_experiment(write_experiment(BASELINE_EXPERIMENT + "seeds: [1, 2]\nzip: [{stats.seed: [1, 2], seed: [1, 2]}]\n",
                                         name="d"))
    assert "stats.seed: the statistics settings apply to the whole summary; set them in controls" in str(err.value)
