"""Tests for asrsweep.core.checkpoint, the one checkpointer of both trainers: newest valid, keep-N, stop
signals, resume checks. (Whole trainings with kills: test_resume.py and test_train_lm.py.)"""

from __future__ import annotations

import os
import signal

import pytest
import torch

from asrsweep.core.checkpoint import (EXIT_PREEMPTED, REQUIRED, StopSignal, config_changes, latest_valid,
                                      list_checkpoints, read_checkpoint, resume_record, save_checkpoint)
from asrsweep.core.common import UserError


def state(step: int, **extra) -> dict:
    """The smallest complete checkpoint at `step`."""
    return {"model_args": {"dim": 4}, "model": {"w": torch.full((2,), float(step))}, "optimizer": {},
            "scheduler": {}, "step": step, "rng": {}, **extra}


def test_keep_n_newest_by_step_not_by_name(tmp_path):
    for step in (9, 10, 2, 11):  # "ckpt-9.pt" sorts after "ckpt-11.pt" as a string
        save_checkpoint(tmp_path, state(step), keep=3)
    assert [step for step, _ in list_checkpoints(tmp_path)] == [11, 10, 9]
    save_checkpoint(tmp_path, state(12), keep=1)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".pt"] == ["ckpt-12.pt"]


def test_corrupt_and_incomplete_newest_are_skipped_with_a_warning(tmp_path, capsys):
    save_checkpoint(tmp_path, state(3), keep=5)
    save_checkpoint(tmp_path, state(4), keep=5)
    truncated = tmp_path / "ckpt-4.pt"
    truncated.write_bytes(truncated.read_bytes()[:100])
    torch.save({"step": 5, "model": {}}, tmp_path / "ckpt-5.pt")  # loads, but lacks required keys
    path, blob = latest_valid(tmp_path)
    assert path == tmp_path / "ckpt-3.pt" and blob["step"] == 3
    err = capsys.readouterr().err
    assert f"warning: skipping corrupt checkpoint {truncated}" in err
    assert f"skipping corrupt checkpoint {tmp_path / 'ckpt-5.pt'} (missing keys" in err
    assert latest_valid(tmp_path / "absent") is None


def test_a_trainer_requires_its_own_keys(tmp_path):
    save_checkpoint(tmp_path, state(1), keep=2)
    assert read_checkpoint(tmp_path / "ckpt-1.pt")["step"] == 1
    with pytest.raises(ValueError, match="missing keys \\['tokenizer'\\]"):
        read_checkpoint(tmp_path / "ckpt-1.pt", REQUIRED | {"tokenizer"})
    assert latest_valid(tmp_path, REQUIRED | {"tokenizer"}) is None


def test_config_changes_are_dotted_and_ignore_bookkeeping():
    saved = {"max_steps": 800, "lr": 0.002, "checkpoint_every": 100, "keep_checkpoints": 2,
             "specaugment": {"time_width": 20, "freq_width": 10}}
    current = {**saved, "max_steps": 400, "checkpoint_every": 50, "keep_checkpoints": 5,
               "specaugment": {"time_width": 40, "freq_width": 10}, "new_key": 1}
    assert config_changes(saved, current) == {"max_steps": [800, 400], "new_key": [None, 1],
                                              "specaugment.time_width": [20, 40]}


def test_resume_record_warns_records_and_refuses_past_max_steps(tmp_path, capsys):
    path = tmp_path / "ckpt-354.pt"
    assert resume_record(path, 354, {"max_steps": 800}, {"max_steps": 800}, "train") is None
    assert capsys.readouterr().err == ""
    record = resume_record(path, 354, {"max_steps": 800}, {"max_steps": 400}, "train")
    assert record == {"step": 354, "checkpoint": str(path), "changed": {"max_steps": [800, 400]}}
    assert "warning: " in capsys.readouterr().err
    assert resume_record(path, 354, {"max_steps": 800}, {"max_steps": 354}, "lm")["step"] == 354
    with pytest.raises(UserError, match="step 354, past lm.max_steps 300; raise lm.max_steps to 354 or more"):
        resume_record(path, 354, {"max_steps": 800}, {"max_steps": 300}, "lm")


def test_stop_signal_sets_a_flag_and_restores_the_old_handlers():
    before = signal.getsignal(signal.SIGTERM)
    with StopSignal() as stop:
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGUSR1)
        assert stop.requested
        os.kill(os.getpid(), signal.SIGTERM)  # still alive: only the flag is set
    assert signal.getsignal(signal.SIGTERM) is before
    assert EXIT_PREEMPTED == 75
