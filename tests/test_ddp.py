"""DDP of asrsweep.acoustic.train on CPU (gloo, torchrun): ranks read only their share of each global
batch, world size 2 trains like world size 1 with the same global batch, and a SIGTERM resume of a
2-rank run is exact. Also the rendezvous of the multi-node launcher (asrsweep.acoustic.launch)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asrsweep.acoustic import launch
from asrsweep.acoustic.batching import epoch_batches, rank_share
from asrsweep.acoustic.loader import share_batches
from asrsweep.core.common import UserError
from test_train import TINY_MODEL, assert_same_weights, fake_corpus, run_cli, train_argv, weights, write_config

TORCHRUN = Path(sys.executable).parent / "torchrun"
# No dropout and no SpecAugment: their draws are per rank, so only the deterministic part can match.
EXACT_MODEL = dict(TINY_MODEL, dropout=0.0)
NO_AUGMENT = {"freq_masks": 0, "time_masks": 0}
STEPS = 8
PER_RANK_FRAMES = 700

needs_torchrun = pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun not in this environment")


def torchrun(argv: list[str], nproc: int = 2) -> list[str]:
    """`torchrun` of the trainer with `nproc` CPU ranks on this machine (a free port each time)."""
    return [str(TORCHRUN), "--standalone", f"--nproc-per-node={nproc}", "-m", "asrsweep.acoustic.train", *argv]


def log_rows(run: Path) -> list[dict]:
    with open(run / "out" / "train_log.tsv", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_rank_shares_partition_every_global_batch():
    lengths = [40 + (7 * i) % 90 for i in range(101)]
    for world in (1, 2, 3):
        batches = epoch_batches(lengths, 600 * world, seed=3, epoch=1, min_size=world)
        assert sorted(i for b in batches for i in b) == list(range(101))  # every utterance once
        for batch in batches:
            assert len(batch) >= world
            shares = [rank_share(batch, r, world) for r in range(world)]
            assert sorted(i for s in shares for i in s) == sorted(batch)
            assert all(s for s in shares)


def test_one_rank_keeps_the_single_process_batches():
    """min_size=1 is the old cut: a single utterance over the budget is a batch of its own."""
    lengths = [100, 2000, 150, 120, 90, 300]
    batches = epoch_batches(lengths, 500, seed=0, epoch=0)
    assert [1] in batches
    assert all(len(b) * max(lengths[i] for i in b) <= 500 for b in batches if b != [1])


class Recording(list):
    """A feature list that records which utterances were read."""

    def __init__(self, items):
        super().__init__(items)
        self.read: list[int] = []

    def __getitem__(self, i):
        self.read.append(i)
        return super().__getitem__(i)


def test_a_rank_reads_only_its_own_utterances():
    feats = Recording([torch.ones(10 + i, 4) for i in range(30)])
    split = {"feats": feats, "targets": [[1, 2]] * 30, "lengths": [10 + i for i in range(30)]}
    batches = epoch_batches(split["lengths"], 200, seed=1, epoch=0, min_size=2)
    out = list(share_batches(split, batches, start=2, rank=1, world=2, workers=0, pin=False))
    mine = [i for b in batches[2:] for i in rank_share(b, 1, 2)]
    assert sorted(feats.read) == sorted(mine)
    assert [b.total for b in out] == [len(b) for b in batches[2:]]


def test_loader_workers_give_the_same_batches_in_order():
    feats = [torch.randn(10 + i, 4) for i in range(30)]
    split = {"feats": feats, "targets": [[1, 2, 3]] * 30, "lengths": [10 + i for i in range(30)]}
    batches = epoch_batches(split["lengths"], 150, seed=2, epoch=0)
    inline = list(share_batches(split, batches, 1, 0, 1, workers=0, pin=False))
    ahead = list(share_batches(split, batches, 1, 0, 1, workers=2, pin=False))
    assert [b.idx for b in inline] == [b.idx for b in ahead] == batches[1:]
    assert all(torch.equal(a.feats, b.feats) for a, b in zip(inline, ahead))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return fake_corpus(tmp_path_factory.mktemp("ddp"), n_train=32)


def exact_config(path: Path, per_rank_frames: int, **train) -> Path:
    return write_config(path, model=EXACT_MODEL, max_steps=STEPS, batch_frames=per_rank_frames, eval_every=4,
                        checkpoint_every=1, keep_checkpoints=STEPS, specaugment=NO_AUGMENT, **train)


@pytest.fixture(scope="module")
def two_ranks(corpus, tmp_path_factory):
    """One uninterrupted 2-rank run: its folder."""
    root = tmp_path_factory.mktemp("two")
    config = exact_config(root / "config.json", PER_RANK_FRAMES)
    done = subprocess.run(torchrun(train_argv(corpus, config, root)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@needs_torchrun
def test_world_two_trains_like_world_one_with_the_same_global_batch(corpus, two_ranks, tmp_path):
    config = exact_config(tmp_path / "config.json", 2 * PER_RANK_FRAMES)
    done = run_cli(train_argv(corpus, config, tmp_path))
    assert done.returncode == 0, done.stderr
    one, two = log_rows(tmp_path), log_rows(two_ranks)
    assert [r["step"] for r in one] == [r["step"] for r in two] and len(one) == STEPS // 4
    for a, b in zip(one, two):
        for column in ("train_loss", "dev_loss"):
            assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-4), (column, a, b)
    w1, w2 = weights(tmp_path / "out" / "model.pt", "state_dict"), weights(two_ranks / "out" / "model.pt", "state_dict")
    for name in w1:
        a, b = w1[name], w2[name]
        if name.endswith("attn.qkv.bias"):
            # The key bias has an exactly zero gradient (softmax ignores a constant per query row):
            # its rounding noise differs with the batch split, and AdamW scales noise to lr-sized steps.
            dim = a.numel() // 3
            a, b = torch.cat([a[:dim], a[2 * dim:]]), torch.cat([b[:dim], b[2 * dim:]])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@needs_torchrun
def test_sigterm_resume_of_two_ranks_is_exact(corpus, two_ranks, tmp_path):
    """SIGTERM to torchrun mid-run (it passes it on to the ranks): checkpoint, stop; rerun resumes
    and ends bitwise equal to the uninterrupted 2-rank run."""
    config = exact_config(tmp_path / "config.json", PER_RANK_FRAMES)
    argv = torchrun(train_argv(corpus, config, tmp_path))
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "ckpt" / "ckpt-3.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) != 0
    stopped = max(int(p.stem.split("-")[1]) for p in (tmp_path / "ckpt").glob("ckpt-*.pt"))
    assert stopped < STEPS, "the run ended before the signal: nothing was resumed"
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resumed from" in done.stderr
    name = f"ckpt-{STEPS}.pt"
    assert_same_weights(weights(two_ranks / "ckpt" / name, "model"), weights(tmp_path / "ckpt" / name, "model"))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(log_rows(tmp_path)) == strip(log_rows(two_ranks))


def test_fewer_utterances_than_ranks_is_a_user_error(corpus, tmp_path):
    from asrsweep.acoustic.train import Trainer

    trainer = Trainer.__new__(Trainer)
    trainer.world, trainer.seed, trainer.paths = 4, 0, type("P", (), {"features": Path("f")})()
    trainer.train, trainer.cfg = {"lengths": [50, 60, 70]}, type("C", (), {"batch_frames": 1000})()
    with pytest.raises(UserError, match="3 training utterances for 4 DDP ranks"):
        trainer.epoch(0)


def test_launcher_picks_python_torchrun_or_the_multinode_launch():
    assert launch.launcher(1, 1, 1, 4) == "python -m"
    assert launch.launcher(1, 1, 4, 8) == "torchrun --standalone --nproc_per_node 4 -m"
    assert launch.launcher(2, 2, 8, 16).startswith("python -m asrsweep.acoustic.launch --nodes 2 --tasks 2 "
                                                   "--gpus-per-node 8 --threads 16")


def test_multinode_training_needs_the_slurm_executor():
    for executor, nodes in (("slurm", 2), ("touch", 2), ("local", 1)):
        launch.check_executor(executor, "x.yaml (run a)", nodes)
    with pytest.raises(UserError, match=r"x.yaml \(run a\): train.nodes: 2 .*'local' executor"):
        launch.check_executor("local", "x.yaml (run a)", 2)


def test_rendezvous_comes_from_srun_environment(monkeypatch):
    monkeypatch.setattr(launch, "first_host", lambda nodelist: {"gpu[07-08]": "gpu07"}[nodelist])
    args = launch.parse("--task --nodes 2 --tasks 2 --gpus-per-node 8 --threads 16 asrsweep.acoustic.train "
                        "--config c.json --threads 16".split())
    env = {"SLURM_PROCID": "1", "SLURM_NTASKS": "2", "SLURM_STEP_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "123"}
    argv = launch.torchrun_argv(args, env)
    assert argv[:7] == ["torchrun", "--nnodes=2", "--node-rank=1", "--nproc-per-node=8", "--master-addr=gpu07",
                        f"--master-port={launch.PORT_BASE + 123}", "-m"]
    assert argv[7:] == ["asrsweep.acoustic.train", "--config", "c.json", "--threads", "16"]
    with pytest.raises(UserError, match="SLURM_STEP_NODELIST"):
        launch.torchrun_argv(args, {"SLURM_PROCID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_ID": "1"})


def test_several_nodes_outside_slurm_is_one_clear_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    done = subprocess.run([sys.executable, "-m", "asrsweep.acoustic.launch", "--nodes", "2", "--tasks", "2",
                           "--gpus-per-node", "1", "--threads", "1", "asrsweep.acoustic.train", "--config", "x"],
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: train.nodes: 2 runs as one SLURM job")
