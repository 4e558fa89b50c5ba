"""Tests for asrsweep.data.feature_store: shards and index, lazy reads, and a training process that
never holds a whole split (its peak RSS stays far below the size of the train features)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from asrsweep.core.common import UserError
from asrsweep.data.feature_store import FeatureStore, Subset, index_path, write_split
from test_train import fake_corpus, train_argv, write_config


def rows(n: int) -> list[dict]:
    return [{"utt_id": f"u{i}", "text": f"t\t{i}", "speaker": f"s{i % 2}"} for i in range(n)]


def test_round_trip_is_exact_and_shards_are_bounded(tmp_path):
    gen = torch.Generator().manual_seed(0)
    feats = [torch.randn(10 + i, 4, generator=gen).half() for i in range(20)]
    shards = write_split(tmp_path, "train", rows(20), iter(feats), shard_mb=0.0003)  # 300 bytes
    store = FeatureStore(tmp_path, "train")
    assert shards == len(list(tmp_path.glob("train-*.npy"))) > 5
    assert len(store) == 20 and store.utt_ids[3] == "u3" and store.texts[3] == "t\t3" and store.speakers[3] == "s1"
    assert store.frames == [f.shape[0] for f in feats] and store.dim() == 4
    for got, want in zip(store, feats):
        assert got.dtype == torch.float16 and torch.equal(got, want)
    for shard in tmp_path.glob("train-*.npy"):  # an utterance is never cut: a shard overshoots by < 1 utterance
        assert shard.stat().st_size < 300 + 29 * 4 * 2 + 128
    sub = Subset(store, [5, 2])
    assert len(sub) == 2 and torch.equal(sub[0], feats[5]) and torch.equal(sub[1], feats[2])
    assert store.nbytes() == sum(p.stat().st_size for p in tmp_path.glob("train-*.npy"))


def test_waveforms_keep_float32_and_reads_hold_no_shard_open(tmp_path):
    waves = [torch.randn(1000 * (i + 1), 1) for i in range(3)]
    write_split(tmp_path, "dev", rows(3), waves, shard_mb=0.004)
    store = FeatureStore(tmp_path, "dev")
    assert torch.equal(store[2], waves[2]) and store[2].dtype == torch.float32
    assert store.dim() == 1 and len(list(tmp_path.glob("dev-*.npy"))) == 3
    open_files = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            open_files.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # the descriptor listdir itself used, closed by now
            pass
    assert not [f for f in open_files if f.startswith(str(tmp_path))]  # no descriptor per shard stays open
    store[2][0, 0] = 5.0  # items are copies
    assert torch.equal(store[2], waves[2])


def test_a_truncated_shard_is_a_user_error(tmp_path):
    write_split(tmp_path, "dev", rows(2), [torch.ones(30, 4), torch.ones(40, 4)], shard_mb=1)
    shard = tmp_path / "dev-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-8])
    store = FeatureStore(tmp_path, "dev")
    assert torch.equal(store[0], torch.ones(30, 4, dtype=torch.float32))
    with pytest.raises(UserError, match="truncated shard"):
        store[1]


def test_missing_index_or_shard_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="run asrsweep.data.compute_features"):
        FeatureStore(tmp_path, "train")
    write_split(tmp_path, "train", rows(2), [torch.zeros(3, 2), torch.zeros(4, 2)], shard_mb=1e-6)
    (tmp_path / "train-00001.npy").unlink()
    store = FeatureStore(tmp_path, "train")
    assert torch.equal(store[0], torch.zeros(3, 2))
    with pytest.raises(UserError, match="shard missing"):
        store[1]
    assert index_path(tmp_path, "train").name == "train.index.tsv"


def big_train_split(folder, n_utts: int, frames: int, n_mels: int) -> int:
    """Replace `folder`'s train split with n_utts utterances [frames, n_mels] float16; returns its bytes."""
    base = torch.randn(frames, n_mels, generator=torch.Generator().manual_seed(0))
    feats = ((base + 0.001 * i).half() for i in range(n_utts))
    for old in folder.glob("train-*.npy"):
        old.unlink()
    write_split(folder, "train", [{"utt_id": f"big{i}", "text": "yes no", "speaker": "s"} for i in range(n_utts)],
                feats, shard_mb=64)
    return FeatureStore(folder, "train").nbytes()


def test_training_never_loads_the_whole_split(tmp_path):
    """A 1 GB train split trains in a process whose peak RSS stays below half of it.

    Loading the split whole (as the old `train.pt` was) would alone take the full 1 GB on top of
    torch's ~220 MB; reading batches through the memory map takes a few MB.
    """
    corpus = fake_corpus(tmp_path / "c", n_mels=80)
    size = big_train_split(corpus["features"], n_utts=2500, frames=2500, n_mels=80)
    assert size > 1.0e9
    config = write_config(tmp_path / "c.json", max_steps=3, batch_frames=5000, eval_every=3, checkpoint_every=0,
                          specaugment={})
    # The child reports its own VmHWM: rusage's ru_maxrss would include this process's RSS at fork.
    hwm = ("import atexit, re, runpy, sys; atexit.register(lambda: print('VmHWM', re.search("
           "r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), file=sys.stderr)); "
           "sys.argv[0] = 'train'; runpy.run_module('asrsweep.acoustic.train', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", hwm, *train_argv(corpus, config, tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "done: 3 steps" in result.stderr
    peak = int(result.stderr.split("VmHWM ")[-1].split()[0]) * 1024  # kB
    print(f"train split {size / 1e6:.0f} MB, training peak RSS {peak / 1e6:.0f} MB")
    assert peak < 0.5 * size
