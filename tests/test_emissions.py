"""Tests for asrsweep.acoustic.emissions: shapes, order, float16 log-softmax rows."""

from __future__ import annotations

import subprocess
import sys

import torch

from asrsweep.data.feature_store import FeatureStore

from test_train import fake_corpus, run_cli, train_argv, write_config


def test_emissions_shapes_and_log_softmax(tmp_path):
    corpus = fake_corpus(tmp_path, n_train=12, n_dev=5)
    run = tmp_path / "run"
    assert run_cli(train_argv(corpus, write_config(tmp_path / "c.json", max_steps=2), run)).returncode == 0
    out = tmp_path / "emissions"
    result = subprocess.run([sys.executable, "-m", "asrsweep.acoustic.emissions", "--model", str(run / "out" / "model.pt"),
                             "--features", str(corpus["features"]), "--outdir", str(out), "--threads", "1",
                             "--batch-frames", "200"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    tokens = (corpus["tokenizer"] / "tokens.txt").read_text().splitlines()
    for split in ("dev", "test"):
        feats = FeatureStore(corpus["features"], split)
        em = torch.load(out / f"{split}.pt", weights_only=False)
        assert em["utt_ids"] == feats.utt_ids and em["texts"] == feats.texts
        assert em["tokens"] == tokens
        for lp, f in zip(em["logprobs"], feats):
            assert lp.dtype == torch.float16 and lp.shape == (-(-f.shape[0] // 4), len(tokens))
            sums = lp.float().exp().sum(-1)
            assert torch.allclose(sums, torch.ones_like(sums), atol=1e-2)


def test_missing_model_is_a_user_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "asrsweep.acoustic.emissions", "--model", str(tmp_path / "no.pt"),
                             "--features", str(tmp_path), "--outdir", str(tmp_path / "o")],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "file not found" in result.stderr
