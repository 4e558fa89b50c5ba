"""Tests for asrsweep.data.compute_features: filterbank, frame count, train-only normalisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile
import torch

from asrsweep.data import compute_features as cf
from asrsweep.data.audio import manifest_text
from asrsweep.data.feature_store import FeatureStore


def test_mel_filterbank_shape_and_coverage():
    fb = cf.mel_filterbank(80, 512)
    assert fb.shape == (257, 80)
    assert (fb.sum(0) > 0).all()  # no empty band at 80 bands / 512-point FFT
    assert fb.max() <= 1.0 + 1e-6


def test_logmel_frames_and_a_tone_lands_in_the_right_band():
    logmel = cf.LogMel(cf.FeaturesConfig())
    t = torch.arange(16000) / 16000
    feats = logmel(0.5 * torch.sin(2 * torch.pi * 1000 * t))
    assert feats.shape == (1 + 16000 // 160, 80)
    band = int(feats[50].argmax())
    centre_hz = 700 * (10 ** (np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 82)[band + 1] / 2595) - 1)
    assert abs(centre_hz - 1000) < 60
    assert torch.isfinite(logmel(torch.zeros(800))).all()  # digital silence stays finite


def make_data(root, loud_dev: bool = False):
    """A data folder: 3 train, 2 dev, 2 test noise utterances of different lengths."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("dev", 2), ("test", 2)):
        rows = []
        for i in range(n):
            gain = 0.5 if loud_dev and split == "dev" else 0.05
            audio = gain * rng.standard_normal(4000 + 1600 * i)
            soundfile.write(str(root / f"{split}{i}.wav"), audio, 16000, subtype="PCM_16")
            rows.append({"utt_id": f"{split}{i}", "audio": f"{split}{i}.wav", "text": "a b",
                         "speaker": f"s{i}", "duration": len(audio) / 16000})
        (root / f"{split}.tsv").write_text(manifest_text(rows))


def run_cli(tmp_path, features: dict | None = None):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"features": features or {"n_mels": 40, "win_ms": 25, "hop_ms": 10}}))
    return cf.run(["--config", str(config), "--data", str(tmp_path), "--outdir", str(tmp_path / "f")])


def test_features_are_normalised_with_train_statistics(tmp_path):
    make_data(tmp_path, loud_dev=True)
    cmvn = run_cli(tmp_path)
    train, dev = FeatureStore(tmp_path / "f", "train"), FeatureStore(tmp_path / "f", "dev")
    assert train.utt_ids == ["train0", "train1", "train2"] and train.texts == ["a b"] * 3
    assert train.speakers == ["s0", "s1", "s2"] and train.frames == [26, 36, 46]
    assert [f.shape for f in train] == [(26, 40), (36, 40), (46, 40)]
    assert all(f.dtype == torch.float16 for f in [*train, *dev])
    frames = torch.cat([f.float() for f in train])
    assert frames.mean(0).abs().max() < 1e-2 and (frames.std(0, unbiased=False) - 1).abs().max() < 1e-2
    # Dev is 20 dB louder: with train statistics its mean moves up, it is not re-centred.
    assert torch.cat([f.float() for f in dev]).mean() > 1.0
    saved = json.loads((tmp_path / "f" / "cmvn.json").read_text())
    assert len(saved["mean"]) == len(saved["std"]) == 40 and saved["mean"] == cmvn["mean"]
    assert (tmp_path / "f" / "test.index.tsv").is_file() and (tmp_path / "f" / "command.sh").is_file()


def test_wrong_sample_rate_and_bad_settings_are_user_errors(tmp_path):
    make_data(tmp_path)
    soundfile.write(str(tmp_path / "train0.wav"), np.zeros(800), 8000)
    with pytest.raises(cf.UserError, match="expected 16000"):
        run_cli(tmp_path)
    with pytest.raises(cf.UserError, match="hop_ms"):
        run_cli(tmp_path, {"n_mels": 80, "win_ms": 10, "hop_ms": 25})


@pytest.mark.parametrize("kind", ["logmel", "waveform"])
def test_shard_jobs_then_merge_give_the_one_job_store(tmp_path, kind):
    make_data(tmp_path, loud_dev=True)
    features = {"type": kind, "n_mels": 40, "shard_mb": 0.005}
    one = run_cli(tmp_path, features)
    config, data = tmp_path / "config.json", str(tmp_path)
    base = ["--config", str(config), "--data", data, "--outdir", str(tmp_path / "g"), "--num-shards", "2"]
    with pytest.raises(cf.UserError, match="shard jobs not finished"):
        cf.run([*base, "--merge"])
    parts = [cf.run([*base, "--shard", str(i)]) for i in (1, 0)]  # any order: independent jobs
    assert [p["train"] for p in parts] == [2, 1] and (tmp_path / "g" / "parts" / "0-of-2" / "part.json").is_file()
    assert cf.run([*base, "--merge"]) == one
    for split in ("train", "dev", "test"):
        a, b = FeatureStore(tmp_path / "f", split), FeatureStore(tmp_path / "g", split)
        assert (a.utt_ids, a.texts, a.speakers, a.frames) == (b.utt_ids, b.texts, b.speakers, b.frames)
        assert all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))
    with pytest.raises(cf.UserError, match="need 0 <= shard"):
        cf.run([*base, "--shard", "2"])
