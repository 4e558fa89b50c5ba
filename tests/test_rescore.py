"""Tests for asrsweep.rescoring.fastwer and asrsweep.rescoring.rescore: the vectorised grid equals jiwer."""

from __future__ import annotations

import json

import jiwer
import numpy as np
import pandas as pd
import pytest
import torch

from asrsweep.rescoring import fastwer

from asrsweep.rescoring import rescore

WORDS = "a b c d e f".split()


def random_sentence(rng: np.random.Generator, lo: int = 0, hi: int = 6) -> str:
    """A random sentence of lo..hi words over a tiny vocabulary (so errors are frequent)."""
    return " ".join(rng.choice(WORDS, size=rng.integers(lo, hi + 1)))


def random_nbest(rng: np.random.Generator, n_utt: int, n_hyp: int) -> tuple[list[str], list[list[str]], np.ndarray]:
    """refs [U], hyps [U][n_i] (ragged), features [U, H, 4] padded like rescore does."""
    refs = [random_sentence(rng, 1) for _ in range(n_utt)]
    hyps = [[random_sentence(rng) for _ in range(rng.integers(1, n_hyp + 1))] for _ in range(n_utt)]
    feats = np.zeros((n_utt, n_hyp, 4))
    feats[:, :, 0] = fastwer.PAD_SCORE
    for u, hs in enumerate(hyps):
        n = len(hs)
        feats[u, :n, 0] = -np.sort(rng.gamma(2.0, 3.0, n))
        feats[u, :n, 1] = rng.normal(-8, 2, n)
        feats[u, :n, 2] = rng.normal(-15, 3, n)
        feats[u, :n, 3] = [len(h.split()) for h in hs]
    return refs, hyps, feats


def errors_matrix(refs: list[str], hyps: list[list[str]], width: int) -> np.ndarray:
    """Per-hypothesis word errors [U, H] (padding 0)."""
    errs = np.zeros((len(refs), width), dtype=np.int64)
    for u, hs in enumerate(hyps):
        errs[u, : len(hs)] = fastwer.word_errors([refs[u]] * len(hs), hs)
    return errs


@pytest.mark.parametrize("prune", [False, True])
def test_grid_wer_equals_jiwer(prune: bool) -> None:
    rng = np.random.default_rng(0)
    refs, hyps, feats = random_nbest(rng, 30, 8)
    errs = errors_matrix(refs, hyps, 8)
    axes = [np.array([0.0, 0.5, 1.3]), np.array([0.0, 0.2, 0.7, 1.0]), np.array([-2.0, 0.0, 1.0, 2.5])]
    words = sum(len(r.split()) for r in refs)
    got = fastwer.grid_errors(feats, errs, axes, prune=prune) / words
    points = fastwer.product_grid(axes)
    picks = fastwer.choose(feats, points)
    assert len(got) == len(points) == 48
    for g in range(len(points)):
        chosen = [hyps[u][h] for u, h in enumerate(picks[g])]
        assert got[g] == pytest.approx(jiwer.wer(refs, chosen), abs=1e-12)


def test_product_choices_equal_brute_force_with_ties() -> None:
    rng = np.random.default_rng(1)
    _, _, feats = random_nbest(rng, 20, 6)
    feats[:, :, 1:3] = np.round(feats[:, :, 1:3])  # integer features make exact ties likely
    feats[:, :, 0] = np.where(feats[:, :, 0] > fastwer.PAD_SCORE, np.round(feats[:, :, 0]), fastwer.PAD_SCORE)
    axes = [np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([0.0, 1.0, 2.0])]
    got = np.concatenate([p for _, p in fastwer.product_choices(feats, axes)])
    np.testing.assert_array_equal(got, fastwer.choose(feats, fastwer.product_grid(axes)))


def test_word_errors_match_jiwer() -> None:
    rng = np.random.default_rng(2)
    refs = [random_sentence(rng) for _ in range(50)]
    hyps = [random_sentence(rng) for _ in range(50)]
    out = jiwer.process_words(refs, hyps)
    assert fastwer.word_errors(refs, hyps).sum() == out.substitutions + out.deletions + out.insertions


def write_tree(tmp_path, rng: np.random.Generator, first_pass: tuple[float, float]) -> dict:
    """Fabricated nbest/, lmscore/, emissions/ folders whose rank order is the first-pass score."""
    dirs = {k: tmp_path / k for k in ("nbest", "lmscore", "emissions", "out")}
    for d in dirs.values():
        d.mkdir()
    for split in ("dev", "test"):
        refs, hyps, feats = random_nbest(rng, 12, 5)
        ids = [f"{split}-{u:03d}" for u in range(len(refs))]
        rows, lm_rows = [], []
        for u, hs in enumerate(hyps):
            f = feats[u, : len(hs)]
            order = np.argsort(-(f[:, 0] + first_pass[0] * f[:, 1] + first_pass[1] * f[:, 3]), kind="stable")
            for rank, h in enumerate(order):
                rows.append([ids[u], rank, hs[h], f[h, 0], f[h, 1], int(f[h, 3]), "x"])
                lm_rows.append([ids[u], rank, f[h, 2]])
        cols = ["utt_id", "rank", "hyp", "am_score", "ngram_score", "words", "tokens"]
        pd.DataFrame(rows, columns=cols).to_csv(dirs["nbest"] / f"{split}.tsv", sep="\t", index=False)
        pd.DataFrame(lm_rows, columns=["utt_id", "rank", "lm_logprob"]).to_csv(dirs["lmscore"] / f"{split}.tsv", sep="\t", index=False)
        torch.save({"utt_ids": ids, "texts": refs, "logprobs": [], "tokens": []}, dirs["emissions"] / f"{split}.pt")
    return dirs


def run_rescore(tmp_path, dirs: dict, section: dict, extra: list[str] = ()) -> dict:
    """Run the CLI in-process; returns test.json."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"seed": 1, "rescore": section}))
    argv = ["--config", str(config), "--nbest", str(dirs["nbest"]), "--lmscore", str(dirs["lmscore"]),
            "--emissions", str(dirs["emissions"]), "--outdir", str(dirs["out"]), *extra]
    return rescore.main(argv)


def test_zero_lm_weight_reproduces_first_pass(tmp_path) -> None:
    dirs = write_tree(tmp_path, np.random.default_rng(3), first_pass=(0.8, 1.5))
    best = tmp_path / "decode_best.json"
    best.write_text(json.dumps({"setting": {"lm_weight": 0.8, "word_score": 1.5}}))
    # Only the first-pass point: ngram/length axes come from --first-pass, lm axis is 0.
    run_rescore(tmp_path, dirs, {"ngram_weight": 0.8, "lm_weight": 0.0, "length_weight": 1.5}, ["--first-pass", str(best)])
    hyps = pd.read_csv(dirs["out"] / "hyps_dev.tsv", sep="\t", keep_default_na=False)
    nbest = pd.read_csv(dirs["nbest"] / "dev.tsv", sep="\t", keep_default_na=False)
    rank0 = nbest[nbest["rank"] == 0].set_index("utt_id")["hyp"]
    assert list(hyps["hyp"]) == list(rank0.loc[hyps["utt_id"]])
    result = json.loads((dirs["out"] / "best_on_dev.json").read_text())
    assert result["dev_wer"] == pytest.approx(result["first_pass"]["wer"])


def test_cli_outputs_and_best_matches_jiwer(tmp_path) -> None:
    dirs = write_tree(tmp_path, np.random.default_rng(4), first_pass=(0.5, 0.0))
    test_json = run_rescore(tmp_path, dirs, {"ngram_weight": [0, 1], "lm_weight": [0.5, 1], "length_weight": [0, 1, 2]})
    grid = pd.read_csv(dirs["out"] / "grid.tsv", sep="\t")
    assert len(grid) == 2 * 3 * 3 and 0.0 in set(grid["lm_weight"])  # lm_weight 0 always added
    best = json.loads((dirs["out"] / "best_on_dev.json").read_text())
    assert best["dev_wer"] == pytest.approx(grid["wer"].min())
    hyps = pd.read_csv(dirs["out"] / "hyps_dev.tsv", sep="\t", keep_default_na=False)
    assert best["dev_wer"] == pytest.approx(jiwer.wer(list(hyps["ref"]), list(hyps["hyp"])))
    assert best["oracle_wer"] <= best["dev_wer"]
    assert test_json["split"] == "test" and test_json["oracle_wer"] <= test_json["wer"]
    assert set(test_json["first_pass"]) == {"wer", "cer"}


def test_bad_config_is_user_error(tmp_path) -> None:
    dirs = write_tree(tmp_path, np.random.default_rng(5), first_pass=(0.0, 0.0))
    with pytest.raises(SystemExit) as exc:
        run_rescore(tmp_path, dirs, {"ngram_weigth": [0, 1]})
    assert exc.value.code == 2
