"""Runs through a real one-node SLURM cluster (tests/slurm/cluster-up.sh) with profiles/slurm.

Opt-in, because the fixture installs Debian packages and starts daemons as root:
    .venv/bin/pytest -m slurm tests/test_slurm.py          (or ASRSWEEP_TEST_SLURM=1)
Skipped (with the reason) when not root, not Debian, or when the cluster cannot start.
The cluster is stopped at the end unless it was already running (or ASRSWEEP_SLURM_KEEP=1).
Timings on 2 cores: cluster ≈ 7 s (packages) + 1 s; A ≈ 30 s; B ≈ 4–4.5 min and D ≈ 3.5 min
(a real training of ≈ 110 s; a time-limit kill comes 60–90 s into a job, since SLURM checks limits
every 30 s, and the plugin's status checks back off by 10 s each while nothing finishes);
C depends on the smoke experiment; E (two srun tasks of one DDP training) ≈ 1 min.
"""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_train import TINY_MODEL, assert_same_weights, fake_corpus, run_cli, train_argv, weights, write_config

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin, not the base python's
TOY = REPO / "tests" / "slurm" / "toy" / "Snakefile"
PROFILE = REPO / "profiles" / "slurm"
STATE = Path(os.environ.get("SLURM_LOCAL_STATE", "/tmp/asrsweep-slurm"))
# Columns of summary.tsv that legitimately differ between two runs of the same experiment.
VOLATILE = ("seconds", "time", "path", "dir", "host", "date", "jobid")
# The long training of tests B and D: a model big enough that a step takes ≈ 0.1 s on 1 thread,
# run for about TRAIN_SECONDS (measured on this machine; SLURM's shortest limit is 1 minute).
LONG_MODEL = dict(TINY_MODEL, dim=192, layers=2, heads=4)
LONG_BATCH_FRAMES = 2000
TRAIN_SECONDS = 110


def _daemons_alive() -> bool:
    """True when every daemon recorded by cluster-up.sh is still running."""
    pids = STATE / "pids"
    lines = pids.read_text().split() if pids.is_file() else []
    if not lines:
        return False
    return all(Path(f"/proc/{pid}").exists() for pid in lines[1::2])


@pytest.fixture(scope="session")
def slurm_cluster(request):
    """Start the local cluster once per session; skip with the script's reason when it can't."""
    selected = "slurm" in (request.config.getoption("-m") or "")
    if not (selected or os.environ.get("ASRSWEEP_TEST_SLURM") == "1"):
        pytest.skip("opt-in: pytest -m slurm (installs SLURM and starts daemons as root)")
    if os.geteuid() != 0:
        pytest.skip("local SLURM cluster needs root")
    was_up = _daemons_alive()
    up = subprocess.run(["bash", str(REPO / "tests/slurm/cluster-up.sh")], capture_output=True, text=True)
    if up.returncode == 3:
        pytest.skip(up.stderr.strip())
    assert up.returncode == 0, f"cluster-up.sh failed:\n{up.stdout}\n{up.stderr}"
    yield
    if not was_up and os.environ.get("ASRSWEEP_SLURM_KEEP") != "1":
        subprocess.run(["bash", str(REPO / "tests/slurm/cluster-down.sh")], check=False)


def job_env() -> dict:
    """The environment snakemake runs in: the venv first on PATH (sbatch --export=ALL passes it on)."""
    return dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")


def snakemake(cwd: Path, *args: str, timeout: int = 600, **popen) -> subprocess.CompletedProcess:
    """Run snakemake with the slurm profile in `cwd`; output goes to cwd/run.log."""
    cmd = [str(VENV_BIN / "snakemake"), "--profile", str(PROFILE), *args]
    with open(cwd / "run.log", "w") as log:
        return subprocess.run(cmd, cwd=cwd, env=job_env(), stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout, **popen)


def test_toy_jobs_all_go_through_sbatch(slurm_cluster, tmp_path):
    """A: every job of the toy workflow is a SLURM job, sees the venv, and gets the fake GPU."""
    result = snakemake(tmp_path, "-s", str(TOY), "--jobs", "4")
    log = (tmp_path / "run.log").read_text()
    assert result.returncode == 0, log[-3000:]
    assert log.count("submitted with SLURM jobid") == 3  # 2 × echo_sample + gpu_job; `all` is local
    for sample in ("a", "b"):
        job, python = (tmp_path / "out" / f"{sample}.txt").read_text().split()
        assert job.startswith("job=") and job[4:].isdigit()
        assert Path(python) == VENV_BIN / "python"
    assert (tmp_path / "out" / "gpu.txt").read_text().startswith("gpus=0 ")
    kept = list((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert len(kept) == 3  # slurm-keep-successful-logs


class Training:
    """A real asrsweep.acoustic.train run sized to need ≈ TRAIN_SECONDS here, and its uninterrupted run."""

    def __init__(self, root: Path, steps: int, straight: subprocess.Popen):
        self.root, self.steps, self._straight = root, steps, straight

    def straight(self) -> Path:
        """The run folder of the uninterrupted run (waits for it: it runs in the background)."""
        assert self._straight.wait(timeout=900) == 0, (self.root / "straight.log").read_text()[-3000:]
        return self.root / "straight"

    def assert_same_as_straight(self, workdir: Path) -> None:
        """model.pt, the last checkpoint's weights and the log (less wall time) are bitwise equal."""
        ref, got = self.straight(), workdir
        assert_same_weights(weights(ref / "out" / "model.pt", "state_dict"),
                            weights(got / "out" / "train" / "model.pt", "state_dict"))
        last = f"ckpt-{self.steps}.pt"
        assert_same_weights(weights(ref / "ckpt" / last, "model"), weights(got / "ckpt" / "train" / last, "model"))
        ref_log, got_log = (read_summary(d / "train_log.tsv") for d in (ref / "out", got / "out" / "train"))
        assert got_log == ref_log


def seconds_per_step(corpus: dict, root: Path) -> float:
    """Measure one training step of LONG_MODEL on 1 thread on this machine (≈ 10 s)."""
    config = write_config(root / "calibrate.json", model=LONG_MODEL, max_steps=40, eval_every=20,
                          checkpoint_every=0, batch_frames=LONG_BATCH_FRAMES)
    done = run_cli(train_argv(corpus, config, root / "calibrate"))
    assert done.returncode == 0, done.stderr
    with open(root / "calibrate" / "out" / "train_log.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return (float(rows[1]["seconds"]) - float(rows[0]["seconds"])) / 20


@pytest.fixture(scope="module")
def training(slurm_cluster, tmp_path_factory) -> Training:
    """Corpus + config.json (the toy workflow's `corpus`); starts the uninterrupted run at once.

    The step count is calibrated so that the training outlives the first 1-minute limit (SLURM
    kills after 60–90 s) on fast and slow machines alike; the straight run shares the CPUs with
    the SLURM run of test B, which only makes that run slower (the limit grows per attempt).
    """
    root = tmp_path_factory.mktemp("training")
    corpus = fake_corpus(root, n_train=64, n_dev=8)
    steps = max(200, round(TRAIN_SECONDS / seconds_per_step(corpus, root)))
    config = write_config(root / "config.json", model=LONG_MODEL, max_steps=steps, eval_every=steps // 10,
                          checkpoint_every=steps // 10, keep_checkpoints=2, batch_frames=LONG_BATCH_FRAMES)
    with open(root / "straight.log", "w") as log:
        argv = [sys.executable, "-m", "asrsweep.acoustic.train", *train_argv(corpus, config, root / "straight")]
        straight = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    yield Training(root, steps, straight)
    if straight.poll() is None:
        straight.kill()
        straight.wait()


def toy_command(training: Training, *targets: str) -> list[str]:
    """The snakemake command of the toy workflow with the real training."""
    return [str(VENV_BIN / "snakemake"), "--profile", str(PROFILE), "-s", str(TOY),
            "--config", f"corpus={training.root}", *(["--", *targets] if targets else [])]


def slurm_logs(workdir: Path, rule: str) -> list[Path]:
    """The SLURM logs of one rule's jobs, oldest job first."""
    return sorted((workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}").glob("*.log"), key=lambda p: int(p.stem))


def test_time_limit_checkpoint_and_resubmission(training, tmp_path):
    """B: a real training with a 1-minute limit that needs more: killed, checkpoints on SIGTERM,
    resubmitted, resumes, and ends with the same model as an uninterrupted run.

    Also checks `asrsweep.results.status` against the live job (comment format of the plugin).
    """
    stages = tmp_path / "results" / "runs" / "r1" / "stages.json"
    stages.parent.mkdir(parents=True)
    stages.write_text(json.dumps({"train": "out/train/model.pt"}))
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen(toy_command(training, "out/train/model.pt"), cwd=tmp_path, env=job_env(),
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        seen_running = wait_for_status(tmp_path, proc)
        assert proc.wait(timeout=600) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen_running.startswith("job "), seen_running
    attempts = slurm_logs(tmp_path, "train")
    assert 2 <= len(attempts) <= 3, attempts
    first = attempts[0].read_text()
    assert "DUE TO TIME LIMIT" in first and "exit status 75" in first, first[-3000:]  # saved, then exited 75
    resumed = re.search(r"resumed from \S+ \(step (\d+)\)", (tmp_path / "logs" / "train.log").read_text())
    assert resumed and int(resumed.group(1)) > 0
    training.assert_same_as_straight(tmp_path)


def test_controller_killed_and_restarted(training, tmp_path):
    """D: SIGKILL the snakemake controller while the training runs in SLURM, start it again.

    The running SLURM job outlives its controller and the new controller knows nothing of it,
    so it submits the training again: the second trainer waits for the first one's lock on the
    checkpoint folder, then resumes. Finished fan-out jobs are not redone. The stale snakemake
    lock makes the plain restart fail: `--unlock` first (as snakemake's message says).
    """
    command, out = toy_command(training), tmp_path / "out"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, cwd=tmp_path, env=job_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        old_job = wait_until_training(tmp_path, first)
    finally:
        first.kill()  # the controller only (the login node dies); the SLURM jobs live on
        first.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.txt")}
    assert old_job in train_jobs(), "the training ended before the controller was killed"

    again = subprocess.run(command, cwd=tmp_path, env=job_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "LockException" in again.stdout + again.stderr
    unlock = subprocess.run([*command, "--unlock"], cwd=tmp_path, env=job_env(), capture_output=True, text=True,
                            timeout=300)
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr

    with open(tmp_path / "second.log", "w") as log:
        second = subprocess.Popen(command, cwd=tmp_path, env=job_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        overlap, waited = watch_lock(tmp_path / "ckpt" / "train" / ".lock", second)
        assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    finally:
        if second.poll() is None:
            second.kill()
    log = (tmp_path / "second.log").read_text()
    submitted = re.findall(r"submitted with SLURM jobid \d+ \(log: \S+/rule_(\w+)/", log)
    assert submitted and set(submitted) == {"train"}, submitted  # the fan-out was not resubmitted
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.txt")} == done_before
    assert overlap == 2 and waited, (overlap, waited)  # two trainings at once; one waited for the lock
    training.assert_same_as_straight(tmp_path)


def train_jobs(states: tuple[str, ...] = ("RUNNING", "COMPLETING")) -> set[str]:
    """Job ids of the toy `train` rule in SLURM in one of `states`."""
    out = subprocess.run(["squeue", "--noheader", "--format=%i|%T|%k"], capture_output=True, text=True).stdout
    return {i for i, state, comment in (line.split("|", 2) for line in out.splitlines())
            if comment == "rule_train" and state in states}


def wait_until_training(workdir: Path, proc: subprocess.Popen, timeout: float = 300) -> str:
    """Wait until the controller has seen the fan-out finish and the trainer has checkpointed; its job id."""
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        log = (workdir / "first.log").read_text()
        job = re.search(r"submitted with SLURM jobid (\d+) \(log: \S+/rule_train/", log)
        if log.count("Finished jobid") >= 3 and job and list((workdir / "ckpt" / "train").glob("ckpt-*.pt")):
            return job.group(1)
        time.sleep(1)
    log = (workdir / "first.log").read_text()
    raise AssertionError(f"training never started under the controller:\n{log[-3000:]}")


def watch_lock(lock: Path, proc: subprocess.Popen) -> tuple[int, bool]:
    """While `proc` runs: the most train jobs running at once, and whether a process ever waited
    in flock() on `lock` while another held it (/proc/locks: waiters are listed with `->`)."""
    overlap, waited = 0, False
    while proc.poll() is None:
        overlap = max(overlap, len(train_jobs()))
        if lock.exists():
            inode = f":{lock.stat().st_ino} "
            entries = [line for line in Path("/proc/locks").read_text().splitlines() if inode in line]
            waited |= any("->" in e for e in entries) and any("->" not in e for e in entries)
        time.sleep(1)
    return overlap, waited


def wait_for_status(workdir: Path, proc: subprocess.Popen) -> str:
    """Poll `python -m asrsweep.results.status` until it reports the train stage running; its detail."""
    cmd = [str(VENV_BIN / "python"), "-m", "asrsweep.results.status", "--results", "results", "--json"]
    for _ in range(60):
        if proc.poll() is not None:
            break
        out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=True).stdout
        record = json.loads(out)[0]
        if record["state"] == "running":
            return record["detail"]
        time.sleep(1)
    return "never seen running"


def read_summary(path: Path) -> list[dict]:
    """summary.tsv rows without the columns that differ between runs (times, paths)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [{k: v for k, v in row.items() if not any(w in k.lower() for w in VOLATILE)} for row in rows]


def test_smoke_experiment_matches_local_run(slurm_cluster, tmp_path):
    """C: the smoke experiment through SLURM gives the same summary.tsv as a local run."""
    experiment = REPO / "config" / "experiments" / "smoke.yaml"
    if not experiment.is_file() or not (REPO / "Snakefile").is_file():
        pytest.skip("config/experiments/smoke.yaml or the Snakefile does not exist yet")
    local_profile = REPO / "profiles" / "local"
    local = ["--profile", str(local_profile)] if local_profile.is_dir() else ["--cores", "2"]
    for name, flags in (("local", local), ("slurm", ["--profile", str(PROFILE)])):
        out = tmp_path / name
        out.mkdir()
        cmd = [str(VENV_BIN / "snakemake"), *flags, "--config", f"experiment={experiment}", f"results={out}"]
        with open(out / "run.log", "w") as log:
            done = subprocess.run(cmd, cwd=REPO, env=job_env(), stdout=log, stderr=subprocess.STDOUT, timeout=1800)
        assert done.returncode == 0, (out / "run.log").read_text()[-3000:]
    local_rows, slurm_rows = (read_summary(tmp_path / n / "summary.tsv") for n in ("local", "slurm"))
    assert local_rows and slurm_rows == local_rows


def test_two_task_training_matches_one_process(slurm_cluster, tmp_path):
    """E: the multi-node launch (srun + one torchrun per task, rendezvous from SLURM's environment)
    as two tasks of one node through the profile: world size 2 over gloo trains like one process
    with the same global batch."""
    from test_ddp import PER_RANK_FRAMES, exact_config, log_rows

    from asrsweep.acoustic.launch import first_host

    assert first_host(f"{os.uname().nodename.split('.')[0]},other") == os.uname().nodename.split(".")[0]
    corpus = fake_corpus(tmp_path / "corpus", n_train=32)
    exact_config(tmp_path / "corpus" / "ddp_config.json", PER_RANK_FRAMES)
    reference = run_cli(train_argv(corpus, exact_config(tmp_path / "one.json", 2 * PER_RANK_FRAMES), tmp_path / "one"))
    assert reference.returncode == 0, reference.stderr
    work = tmp_path / "work"
    work.mkdir()
    done = snakemake(work, "-s", str(TOY), "--config", f"corpus={tmp_path / 'corpus'}", "--", "out/ddp/model.pt")
    log = (work / "logs" / "train_two_nodes.log").read_text() if (work / "logs").is_dir() else ""
    assert done.returncode == 0, (work / "run.log").read_text()[-3000:] + log[-3000:]
    assert "launch: srun --nodes=1 --ntasks=2" in log
    assert "--nnodes=2 --node-rank=0" in log and "--nnodes=2 --node-rank=1" in log, log[-3000:]
    with open(work / "out" / "ddp" / "train_log.tsv", newline="") as handle:
        two = list(csv.DictReader(handle, delimiter="\t"))
    one = log_rows(tmp_path / "one")
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(one, two):
        assert float(a["train_loss"]) == pytest.approx(float(b["train_loss"]), rel=1e-4)
        assert float(a["dev_loss"]) == pytest.approx(float(b["dev_loss"]), rel=1e-4)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cluster_scripts_refuse_cleanly_without_root(tmp_path):
    """cluster-up.sh exits 3 with a reason when it cannot run (here: not root, via setpriv)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
           "bash", str(REPO / "tests/slurm/cluster-up.sh")]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert done.returncode == 3 and "needs root" in done.stderr
