"""Tests for asrsweep.rescoring.train_lm (tiny run, SIGTERM + resume = straight run, checkpoints, threads,
device) and asrsweep.rescoring.score_lm."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from asrsweep.acoustic.forward import resolve_device
from asrsweep.core.common import UserError
from asrsweep.rescoring import score_lm, train_lm
from conftest import ROOT

SENTENCES = [f"the {a} {b} sat on the {c}" for a in ("red", "big", "old") for b in ("cat", "dog") for c in ("mat", "rug", "bed")]
TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 16, "vocab_size": 60, "max_steps": 6,
        "batch_size": 4, "lr": 0.01, "warmup_steps": 2, "checkpoint_every": 3, "eval_every": 3, "dropout": 0.1}


def setup_files(tmp_path, **overrides) -> tuple:
    """(config path, text path) for a tiny run."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"seed": 3, "lm": {**TINY, **overrides}}))
    text = tmp_path / "lm.txt"
    text.write_text("\n".join(SENTENCES * 3) + "\n")
    return config, text


def argv(config, text, out, ckpt) -> list[str]:
    return ["--config", str(config), "--text", str(text), "--outdir", str(out), "--checkpoint-dir", str(ckpt)]


def sigterm_after(monkeypatch, stop_step: int) -> None:
    """Make a real SIGTERM reach this process during optimizer step `stop_step` (as SLURM's would)."""
    real = train_lm.train_step

    def step_then_signal(state, cfg):
        loss = real(state, cfg)
        if state["step"] + 1 == stop_step:
            os.kill(os.getpid(), signal.SIGTERM)
        return loss

    monkeypatch.setattr(train_lm, "train_step", step_then_signal)


def steps_of(ckpt_dir) -> list[int]:
    return sorted(int(p.stem.split("-")[1]) for p in ckpt_dir.glob("ckpt-*.pt"))


def log_rows(out) -> list[list[str]]:
    """train_log.tsv rows without the wall-clock seconds."""
    return [line.split("\t")[:-1] for line in (out / "train_log.tsv").read_text().splitlines()]


def assert_same_final_state(a, b) -> None:
    """Same last checkpoint weights, dev loss and log in runs a and b (folders holding out/ and ck/)."""
    wa = torch.load(a / "ck" / "ckpt-6.pt", weights_only=False)["model"]
    wb = torch.load(b / "ck" / "ckpt-6.pt", weights_only=False)["model"]
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert log_rows(a / "out") == log_rows(b / "out")
    dev = [json.loads((run / "out" / "lm.json").read_text())["dev_loss"] for run in (a, b)]
    assert dev[0] == dev[1]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """One uninterrupted 6-step run (checkpoints every 2 steps, 3 kept): its folder and files."""
    root = tmp_path_factory.mktemp("lm")
    config, text = setup_files(root, checkpoint_every=2, keep_checkpoints=3)
    lm_json = train_lm.main(argv(config, text, root / "a" / "out", root / "a" / "ck"))
    return root, config, text, lm_json


def test_tiny_run_writes_every_output(straight) -> None:
    root, _, _, lm_json = straight
    assert lm_json["steps"] == 6 and math.isfinite(lm_json["dev_perplexity"])
    assert lm_json["device"] == "cpu" and lm_json["resumed_from"] == []
    for name in ("lm.json", "train_log.tsv", "tokenizer.json", "hf/config.json", "command.sh"):
        assert (root / "a" / "out" / name).exists(), name
    assert steps_of(root / "a" / "ck") == [2, 4, 6]  # lm.keep_checkpoints: 3


def test_sigterm_exits_75_and_resume_equals_straight_run(straight, tmp_path, monkeypatch) -> None:
    root, config, text, _ = straight
    run = tmp_path / "b"
    sigterm_after(monkeypatch, 3)
    with pytest.raises(SystemExit) as exc:
        train_lm.main(argv(config, text, run / "out", run / "ck"))
    assert exc.value.code == 75  # the acoustic trainer's EXIT_PREEMPTED, which SLURM retries
    assert steps_of(run / "ck") == [2, 3] and not (run / "out" / "lm.json").exists()
    monkeypatch.undo()
    assert train_lm.main(argv(config, text, run / "out", run / "ck"))["steps"] == 6
    assert_same_final_state(root / "a", run)


def test_corrupt_newest_checkpoint_is_skipped_with_a_warning(straight, tmp_path, monkeypatch, capsys) -> None:
    root, config, text, _ = straight
    run = tmp_path / "c"
    sigterm_after(monkeypatch, 5)
    with pytest.raises(SystemExit):
        train_lm.main(argv(config, text, run / "out", run / "ck"))
    monkeypatch.undo()
    newest = run / "ck" / "ckpt-5.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a truncated write
    capsys.readouterr()
    train_lm.main(argv(config, text, run / "out", run / "ck"))
    captured = capsys.readouterr()
    assert f"warning: skipping corrupt checkpoint {newest}" in captured.err
    assert f"resumed from {run / 'ck' / 'ckpt-4.pt'} (step 4)" in captured.out
    assert_same_final_state(root / "a", run)


def test_keep_checkpoints_is_honoured(tmp_path) -> None:
    config, text = setup_files(tmp_path, checkpoint_every=1, keep_checkpoints=1)
    train_lm.main(argv(config, text, tmp_path / "out", tmp_path / "ck"))
    assert steps_of(tmp_path / "ck") == [6]


def test_checkpoint_folder_lock_makes_a_second_trainer_wait(tmp_path, capsys) -> None:
    from asrsweep.core.checkpoint import exclusive

    config, text = setup_files(tmp_path, max_steps=2)
    held, release = threading.Event(), threading.Event()

    def other_job():
        with exclusive(tmp_path / "ck"):
            held.set()
            release.wait(30)

    other = threading.Thread(target=other_job)
    other.start()
    held.wait(30)
    threading.Timer(1.0, release.set).start()
    started = time.perf_counter()
    train_lm.main(argv(config, text, tmp_path / "out", tmp_path / "ck"))
    other.join()
    assert time.perf_counter() - started >= 1.0
    assert f"waiting for another job that trains into {tmp_path / 'ck'}" in capsys.readouterr().err


def test_lower_max_steps_warns_and_records_past_it_refuses(straight, tmp_path, capsys) -> None:
    root, _, text, _ = straight
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "ckpt-4.pt").write_bytes((root / "a" / "ck" / "ckpt-4.pt").read_bytes())
    config, _ = setup_files(tmp_path, max_steps=5, checkpoint_every=2, keep_checkpoints=3)
    lm_json = train_lm.main(argv(config, text, tmp_path / "out", tmp_path / "ck"))
    assert "was trained with other lm settings (max_steps 6 -> 5)" in capsys.readouterr().err
    assert lm_json["steps"] == 5 and lm_json["resumed_from"] == [
        {"step": 4, "checkpoint": str(tmp_path / "ck" / "ckpt-4.pt"), "changed": {"max_steps": [6, 5]}}]
    config, _ = setup_files(tmp_path, max_steps=3)
    with pytest.raises(SystemExit) as exc:
        train_lm.main(argv(config, text, tmp_path / "out", tmp_path / "ck"))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "ckpt-5.pt: checkpoint is at step 5, past lm.max_steps 3; raise lm.max_steps" in err


def test_resume_with_other_architecture_is_user_error(straight, tmp_path, capsys) -> None:
    root, _, text, _ = straight
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "ckpt-6.pt").write_bytes((root / "a" / "ck" / "ckpt-6.pt").read_bytes())
    config2, _ = setup_files(tmp_path, n_embd=32)
    with pytest.raises(SystemExit) as exc:
        train_lm.main(argv(config2, text, tmp_path / "out", tmp_path / "ck"))
    assert exc.value.code == 2 and "built with" in capsys.readouterr().err


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_threads_flag_is_applied(tmp_path, restore_threads) -> None:
    config, text = setup_files(tmp_path, max_steps=1)
    torch.set_num_threads(2)
    train_lm.main(argv(config, text, tmp_path / "out", tmp_path / "ck") + ["--threads", "1", "--device", "cpu"])
    assert torch.get_num_threads() == 1
    with pytest.raises(SystemExit) as exc:
        train_lm.main(argv(config, text, tmp_path / "out", tmp_path / "ck") + ["--threads", "0"])
    assert exc.value.code == 2


def test_device_choice(monkeypatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device(name)
    with pytest.raises(UserError, match="not a device"):
        resolve_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda") and resolve_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_lm_trains_on_the_gpu_under_bf16(tmp_path) -> None:
    config, text = setup_files(tmp_path, max_steps=20)
    cfg = train_lm.load_section(config, "lm", train_lm.LMConfig)
    sentences = train_lm.read_sentences(cfg, text, [], None)
    state = train_lm.setup(cfg, 3, sentences, tmp_path / "probe", resolve_device("auto"))
    assert next(state["model"].parameters()).device.type == "cuda" and state["dtype"] == torch.bfloat16
    lm_json = train_lm.main(argv(config, text, tmp_path / "out", tmp_path / "ck"))
    assert lm_json["device"] == "cuda" and math.isfinite(lm_json["dev_perplexity"])
    losses = [float(line.split("\t")[2]) for line in (tmp_path / "out" / "train_log.tsv").read_text().splitlines()[1:]]
    assert losses[-1] < losses[0]


def test_bpe_tokenizer_round_trip() -> None:
    tok = train_lm.train_tokenizer(SENTENCES, "bpe", 40)
    ids = train_lm.encode(tok, ["the red cat"], 32)[0]
    assert ids[0] == train_lm.BOS and ids[-1] == train_lm.EOS and len(ids) > 2


def test_windows_cover_every_token_once() -> None:
    ids = list(range(23))
    pieces = score_lm.windows(ids, 8)
    scored = [p[0][i] for p in pieces for i in range(p[1], len(p[0]))]
    assert scored == ids[1:] and all(len(p[0]) <= 8 for p in pieces)


def test_score_lm_matches_direct_computation(tmp_path) -> None:
    config, text = setup_files(tmp_path, max_steps=3)
    train_lm.main(argv(config, text, tmp_path / "lm", tmp_path / "c"))
    nbest = tmp_path / "nbest"
    nbest.mkdir()
    rows = ["utt_id\trank\thyp\tam_score\tngram_score\twords\ttokens", "u1\t0\tthe red cat\t-1\t-2\t3\tx",
            "u1\t1\t\t-5\t-1\t0\t", "u2\t0\tthe old dog sat on the mat\t-1\t-2\t7\tx"]
    (nbest / "dev.tsv").write_text("\n".join(rows) + "\n")
    score_lm.main(["--lm", str(tmp_path / "lm"), "--nbest", str(nbest), "--outdir", str(tmp_path / "s"),
                   "--batch-size", "2", "--device", "cpu", "--threads", "1"])
    got = [line.split("\t") for line in (tmp_path / "s" / "dev.tsv").read_text().splitlines()[1:]]
    model, vocab, _, _ = score_lm.load_scorer(tmp_path / "lm", "cpu")
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tmp_path / "lm" / "tokenizer.json"))
    for (_, _, value), hyp in zip(got, ["the red cat", "", "the old dog sat on the mat"]):
        ids = torch.tensor([[train_lm.BOS] + tok.encode(hyp).ids + [train_lm.EOS]])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
        expect = float(logp.gather(1, ids[0, 1:, None]).sum())
        assert float(value) == pytest.approx(expect, abs=1e-4)


def test_rules_pass_their_thread_count_to_the_steps(tmp_path) -> None:
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run([str(bin_dir / "snakemake"), "-n", "-p", "--cores", "4", "--config",
                           "experiment=config/experiments/smoke.yaml", f"results={tmp_path}/r", "threads=3"],
                          cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    steps = ("rescoring.train_lm", "rescoring.score_lm", "acoustic.train", "acoustic.emissions")
    for step in steps:
        calls = [c for line in proc.stdout.splitlines() for c in line.split("python -m ")[1:]
                 if c.startswith(f"asrsweep.{step} ")]
        assert calls and all(" --threads 3" in c for c in calls), (step, calls)
