"""Exact resume of asrsweep.acoustic.train on CPU: SIGKILL / SIGTERM mid-run + restart == one straight run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_train import assert_same_weights, fake_corpus, run_cli, train_argv, weights, write_config

STEPS = 40
RESUME = dict(max_steps=STEPS, eval_every=7, checkpoint_every=1, keep_checkpoints=3, batch_frames=900)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted run: (corpus, config, run dir)."""
    root = tmp_path_factory.mktemp("resume")
    corpus = fake_corpus(root)
    config = write_config(root / "config.json", **RESUME)
    result = run_cli(train_argv(corpus, config, root / "straight"))
    assert result.returncode == 0, result.stderr
    return corpus, config, root


def start_and_signal(argv: list[str], ckpt: Path, sig: int) -> int:
    """Start training, send `sig` as soon as `ckpt` exists, return the exit status."""
    proc = subprocess.Popen([sys.executable, "-m", "asrsweep.acoustic.train", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, sig)
    return proc.wait()


def final_state(run: Path) -> tuple[dict, dict, list]:
    """(last checkpoint weights, model.pt weights, log rows without wall-clock seconds)."""
    last = torch.load(run / "ckpt" / f"ckpt-{STEPS}.pt", map_location="cpu", weights_only=False)
    log = [line.split("\t")[:-1] for line in (run / "out" / "train_log.tsv").read_text().splitlines()]
    return last["model"], weights(run / "out" / "model.pt", "state_dict"), log


def assert_matches_straight(root: Path, run: Path) -> None:
    ref, got = final_state(root / "straight"), final_state(run)
    assert_same_weights(ref[0], got[0])
    assert_same_weights(ref[1], got[1])
    assert ref[2] == got[2]


def test_sigkill_then_restart_is_bitwise_equal(straight):
    corpus, config, root = straight
    run = root / "killed"
    status = start_and_signal(train_argv(corpus, config, run), run / "ckpt" / "ckpt-5.pt", signal.SIGKILL)
    assert status == -signal.SIGKILL, "the run finished before the kill: make it longer"
    assert not (run / "out" / "model.pt").exists()
    result = run_cli(train_argv(corpus, config, run))
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stderr
    assert_matches_straight(root, run)


def test_sigterm_saves_exits_75_and_resumes_exactly(straight):
    corpus, config, root = straight
    run = root / "termed"
    status = start_and_signal(train_argv(corpus, config, run), run / "ckpt" / "ckpt-3.pt", signal.SIGTERM)
    assert status == 75
    result = run_cli(train_argv(corpus, config, run))
    assert result.returncode == 0, result.stderr
    assert_matches_straight(root, run)


def test_corrupt_newest_checkpoint_is_skipped_with_warning(straight):
    corpus, config, root = straight
    run = root / "corrupt"
    status = start_and_signal(train_argv(corpus, config, run), run / "ckpt" / "ckpt-4.pt", signal.SIGKILL)
    assert status == -signal.SIGKILL
    newest = max((run / "ckpt").glob("ckpt-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a truncated write
    (run / "ckpt" / "ckpt-39.pt").write_bytes(b"not a checkpoint")
    result = run_cli(train_argv(corpus, config, run))
    assert result.returncode == 0, result.stderr
    assert f"skipping corrupt checkpoint {newest}" in result.stderr
    assert "ckpt-39.pt" in result.stderr
    assert_matches_straight(root, run)


def test_checkpoint_folder_lock_is_exclusive(tmp_path):
    import fcntl

    from asrsweep.core.checkpoint import exclusive

    with exclusive(tmp_path / "ck"):
        with open(tmp_path / "ck" / ".lock", "w") as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / "ck" / ".lock", "w") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after training
