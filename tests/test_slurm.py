"""Runs through a real one-node SLURM cluster (tests/slurm/cluster-up.sh) with profiles/slurm.

Opt-in, because the fixture installs Debian packages and starts daemons as root:
    .venv/bin/pytest -m slurm tests/test_slurm.py          (or ASRSWEEP_TEST_SLURM=1)
Skipped (with the reason) when not root, not Debian, or when the cluster cannot start.
The cluster is stopped at the end unless it was already running (or ASRSWEEP_SLURM_KEEP=1).
Timings on 2 cores: cluster ≈ 7 s (packages) + 1 s; A ≈ 30 s; B ≈ 2.5–3 min (one time-limit
kill after 60–90 s: SLURM checks limits every 30 s); C depends on the smoke experiment.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin, not the base python's
TOY = REPO / "tests" / "slurm" / "toy" / "Snakefile"
PROFILE = REPO / "profiles" / "slurm"
STATE = Path(os.environ.get("SLURM_LOCAL_STATE", "/tmp/asrsweep-slurm"))
# Columns of summary.tsv that legitimately differ between two runs of the same experiment.
VOLATILE = ("seconds", "time", "path", "dir", "host", "date", "jobid")


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


def test_time_limit_checkpoint_and_resubmission(slurm_cluster, tmp_path):
    """B: a 1-minute job that needs 100 s is killed, checkpoints on SIGTERM, resumes, finishes.

    Also checks `asrsweep.status` against the live job (comment format of the plugin).
    """
    stages = tmp_path / "results" / "runs" / "r1" / "stages.json"
    stages.parent.mkdir(parents=True)
    stages.write_text(json.dumps({"train": "out/train.json"}))
    with open(tmp_path / "run.log", "w") as log:
        proc = subprocess.Popen(
            [str(VENV_BIN / "snakemake"), "--profile", str(PROFILE), "-s", str(TOY),
             "--config", "seconds=100", "--", "out/train.json"],
            cwd=tmp_path, env=job_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        seen_running = wait_for_status(tmp_path, proc)
        assert proc.wait(timeout=600) == 0, (tmp_path / "run.log").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
    assert seen_running.startswith("job "), seen_running
    state = json.loads((tmp_path / "ckpt" / "state.json").read_text())
    first, last = state["attempts"][0], state["attempts"][-1]
    assert 2 <= len(state["attempts"]) <= 3, state
    assert first["signal"] == 15 and first["stopped_at"] > 0, state  # slow save (10 s) landed
    assert last["start_step"] > 0 and state["step"] == 100, state
    assert json.loads((tmp_path / "out" / "train.json").read_text())["step"] == 100


def wait_for_status(workdir: Path, proc: subprocess.Popen) -> str:
    """Poll `python -m asrsweep.status` until it reports the train stage running; its detail."""
    cmd = [str(VENV_BIN / "python"), "-m", "asrsweep.status", "--results", "results", "--json"]
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


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_cluster_scripts_refuse_cleanly_without_root(tmp_path):
    """cluster-up.sh exits 3 with a reason when it cannot run (here: not root, via setpriv)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to drop to an unprivileged user")
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
           "bash", str(REPO / "tests/slurm/cluster-up.sh")]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert done.returncode == 3 and "needs root" in done.stderr
