"""Tests for asrsweep.acoustic.train: a tiny CPU training end to end, fork, continue, errors, NaN stop."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from asrsweep.data.feature_store import FeatureStore, write_split

WORDS = "yes no up down left right go stop one two three four".split()
TINY_MODEL = {"encoder": "conformer", "dim": 16, "layers": 1, "heads": 2, "ff_mult": 2,
              "conv_kernel": 3, "subsampling": 4, "dropout": 0.1}
TINY_TRAIN = {"max_steps": 6, "batch_frames": 1200, "lr": 3e-3, "warmup_steps": 2, "eval_every": 3,
              "checkpoint_every": 2, "keep_checkpoints": 2,
              "specaugment": {"freq_masks": 1, "freq_width": 3, "time_masks": 1, "time_width": 5}}


def fake_corpus(root: Path, n_train: int = 24, n_dev: int = 6, n_mels: int = 8, seed: int = 0) -> dict:
    """Write data/train.tsv, the feature store features/{train,dev,test} and tokenizer/ under `root`; return paths."""
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    data, feats_dir = root / "data", root / "features"
    data.mkdir(parents=True, exist_ok=True)
    feats_dir.mkdir(parents=True, exist_ok=True)
    rows = ["utt_id\taudio\ttext\tspeaker\tduration"]
    for split, n in (("train", n_train), ("dev", n_dev), ("test", n_dev)):
        texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) for _ in range(n)]
        ids = [f"{split}{i:03d}" for i in range(n)]
        feats = [torch.randn(40 + 12 * len(t), n_mels, generator=gen).half() for t in texts]
        write_split(feats_dir, split, [{"utt_id": u, "text": t, "speaker": "s"} for u, t in zip(ids, texts)],
                    feats, shard_mb=0.001)  # ~1 kB shards: several per split, so reads cross shards
        if split == "train":
            rows += [f"{u}\tx.wav\t{t}\ts\t1.0" for u, t in zip(ids, texts)]
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    tok_cfg = root / "tok_config.json"
    tok_cfg.write_text(json.dumps({"tokenizer": {"type": "char", "vocab_size": 30}}))
    from asrsweep.data.train_tokenizer import main as train_tokenizer

    train_tokenizer(["--config", str(tok_cfg), "--data", str(data), "--outdir", str(root / "tokenizer")])
    return {"features": feats_dir, "tokenizer": root / "tokenizer", "data": data}


def write_config(path: Path, seed: int = 1, model: dict | None = None, **train) -> Path:
    """A stage config.json with the tiny model and train sections (train keys overridden)."""
    path.write_text(json.dumps({"seed": seed, "model": model or TINY_MODEL, "train": {**TINY_TRAIN, **train}}))
    return path


def train_argv(corpus: dict, config: Path, run: Path) -> list[str]:
    """Flags of one training run whose outputs go to run/out and checkpoints to run/ckpt."""
    return ["--config", str(config), "--features", str(corpus["features"]), "--tokenizer",
            str(corpus["tokenizer"]), "--outdir", str(run / "out"), "--checkpoint-dir", str(run / "ckpt"),
            "--threads", "1"]


def run_cli(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m asrsweep.acoustic.train` in a fresh process (real exits, signals, stderr)."""
    return subprocess.run([sys.executable, "-m", "asrsweep.acoustic.train", *argv], capture_output=True, text=True,
                          **kwargs)


def weights(path: Path, key: str) -> dict:
    """The state dict stored under `key` in a checkpoint or model.pt."""
    return torch.load(path, map_location="cpu", weights_only=False)[key]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return fake_corpus(tmp_path_factory.mktemp("train"))


@pytest.fixture(scope="module")
def finished(corpus, tmp_path_factory):
    """One finished 6-step run (CUDA_VISIBLE_DEVICES set as on a fake-GPU SLURM node: must use CPU)."""
    root = tmp_path_factory.mktemp("finished")
    config = write_config(root / "config.json")
    env = {**__import__("os").environ, "CUDA_VISIBLE_DEVICES": "0"}
    result = run_cli(train_argv(corpus, config, root), env=env)
    assert result.returncode == 0, result.stderr
    return root, config


def test_outputs_follow_the_spec(finished):
    from asrsweep.acoustic.model import load_model

    root, _ = finished
    out = root / "out"
    log = [line.split("\t") for line in (out / "train_log.tsv").read_text().splitlines()]
    assert log[0] == ["step", "epoch", "lr", "train_loss", "dev_loss", "dev_cer", "seconds"]
    assert [row[0] for row in log[1:]] == ["3", "6"]
    info = json.loads((out / "train.json").read_text())
    assert {"steps", "best_step", "dev_loss", "dev_cer", "n_params", "train_seconds", "config"} <= set(info)
    assert info["steps"] == 6 and info["config"]["train"]["max_steps"] == 6
    model, tokens = load_model(out / "model.pt")
    assert tokens[0] == "<blank>" and model.args["vocab_size"] == len(tokens)
    assert (out / "command.sh").read_text().count("asrsweep.acoustic.train") == 1
    assert sorted(p.name for p in (root / "ckpt").glob("ckpt-*.pt")) == ["ckpt-4.pt", "ckpt-6.pt"]


def test_raising_max_steps_continues_from_last_checkpoint(finished, corpus, tmp_path):
    root, _ = finished
    run = tmp_path / "more"
    __import__("shutil").copytree(root / "ckpt", run / "ckpt")
    result = run_cli(train_argv(corpus, write_config(tmp_path / "c.json", max_steps=9), run) + ["--continue"])
    assert result.returncode == 0, result.stderr
    assert "resumed from" in result.stderr and "(step 6)" in result.stderr
    log = (run / "out" / "train_log.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in log[1:]] == ["3", "6", "9"]
    info = json.loads((run / "out" / "train.json").read_text())
    assert info["steps"] == 9
    assert [(r["step"], r["changed"]) for r in info["resumed_from"]] == [(6, {"max_steps": [6, 9]})]


def test_lower_max_steps_resumes_with_a_warning_and_a_record(finished, corpus, tmp_path):
    root, _ = finished
    (tmp_path / "ckpt").mkdir()
    __import__("shutil").copy(root / "ckpt" / "ckpt-4.pt", tmp_path / "ckpt")  # trained for 6 steps
    result = run_cli(train_argv(corpus, write_config(tmp_path / "c.json", max_steps=5, eval_every=5), tmp_path))
    assert result.returncode == 0, result.stderr
    assert "was trained with other train settings (eval_every 3 -> 5, max_steps 6 -> 5)" in result.stderr
    info = json.loads((tmp_path / "out" / "train.json").read_text())
    assert info["steps"] == 5 and info["resumed_from"] == [
        {"step": 4, "checkpoint": str(tmp_path / "ckpt" / "ckpt-4.pt"),
         "changed": {"eval_every": [3, 5], "max_steps": [6, 5]}}]
    assert json.loads((root / "out" / "train.json").read_text())["resumed_from"] == []


def test_max_steps_below_the_checkpoint_is_refused(finished, corpus, tmp_path):
    root, _ = finished
    __import__("shutil").copytree(root / "ckpt", tmp_path / "ckpt")
    result = run_cli(train_argv(corpus, write_config(tmp_path / "c.json", max_steps=5), tmp_path))
    assert result.returncode == 2 and not (tmp_path / "out" / "model.pt").exists()
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'ckpt' / 'ckpt-6.pt'}: checkpoint is at step 6, past train.max_steps 5; "
        f"raise train.max_steps to 6 or more, or start a new run (remove {tmp_path / 'ckpt'})"]


def test_continue_without_checkpoint_is_a_user_error(corpus, tmp_path):
    result = run_cli(train_argv(corpus, write_config(tmp_path / "c.json"), tmp_path) + ["--continue"])
    assert result.returncode == 2
    assert "--continue given but no valid checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_checkpoint_of_another_architecture_is_refused(finished, corpus, tmp_path):
    root, _ = finished
    __import__("shutil").copytree(root / "ckpt", tmp_path / "ckpt")
    config = write_config(tmp_path / "c.json", model={**TINY_MODEL, "dim": 32})
    result = run_cli(train_argv(corpus, config, tmp_path))
    assert result.returncode == 2 and "differs from config in dim" in result.stderr


def test_init_from_forks_weights_with_fresh_optimizer(finished, corpus, tmp_path):
    from asrsweep.acoustic.model import ModelConfig
    from asrsweep.acoustic.train import Trainer, TrainConfig, TrainPaths

    root, _ = finished
    paths = TrainPaths(corpus["features"], corpus["tokenizer"], tmp_path / "out", tmp_path / "ckpt")
    cfg = TrainConfig(**{**TINY_TRAIN, "specaugment": {}, "init_from": str(root / "out" / "model.pt")})
    trainer = Trainer(cfg, ModelConfig(**TINY_MODEL), 5, paths, threads=1)
    assert_same_weights(trainer.model.state_dict(), weights(root / "out" / "model.pt", "state_dict"))
    assert trainer.progress.step == 0 and not trainer.opt.state
    config = write_config(tmp_path / "c.json", max_steps=2, init_from=str(root / "ckpt"))
    result = run_cli(train_argv(corpus, config, tmp_path / "fork"))
    assert result.returncode == 0 and "initialised weights from" in result.stderr


def test_unknown_train_key_is_a_user_error(corpus, tmp_path):
    result = run_cli(train_argv(corpus, write_config(tmp_path / "c.json", max_step=3), tmp_path))
    assert result.returncode == 2 and "unknown key(s) max_step" in result.stderr


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(corpus, tmp_path):
    config = write_config(tmp_path / "c.json", max_steps=2, eval_every=0)
    assert run_cli(train_argv(corpus, config, tmp_path)).returncode == 0
    bad = tmp_path / "features"
    __import__("shutil").copytree(corpus["features"], bad)
    store = FeatureStore(bad, "train")
    rows = [{"utt_id": u, "text": t, "speaker": s} for u, t, s in zip(store.utt_ids, store.texts, store.speakers)]
    write_split(bad, "train", rows, [torch.full_like(f, float("inf")) for f in store], shard_mb=1)
    argv = train_argv({**corpus, "features": bad}, write_config(tmp_path / "c.json", max_steps=4), tmp_path)
    result = run_cli(argv)
    assert result.returncode == 2, result.stderr
    assert "non-finite loss" in result.stderr and "at step 3" in result.stderr
    assert "ckpt-2.pt" in result.stderr
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("ckpt-*.pt")) == ["ckpt-2.pt"]


def test_lr_schedule_warms_up_then_decays_to_zero():
    from asrsweep.core.schedule import lr_factor

    for shape in ("cosine", "linear"):
        factors = [lr_factor(s, 2, 10, shape) for s in range(11)]
        assert factors[:3] == [0.5, 1.0, 1.0] and factors[10] == 0.0
        assert all(a >= b for a, b in zip(factors[1:], factors[2:]))
    lm = [lr_factor(s, 2, 10, "linear", floor=0.1) for s in range(14)]  # the LM's schedule
    assert lm[:3] == [0.5, 1.0, 1.0] and lm[10] == pytest.approx(0.1) and lm[13] == lm[10]
