"""The workflow as snakemake sees it: dry runs of every shipped experiment, lint, guard."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asrsweep.core.common import UserError
from asrsweep.experiment.configio import dump_yaml, load_yaml
from asrsweep.experiment.workflow import SweepIndex, guard
from conftest import ROOT, missing_model

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
EXPERIMENTS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "config" / "experiments").rglob("*.yaml"))


def snakemake(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True, env=env)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_dry_run_of_every_shipped_experiment(experiment, tmp_path):
    if reason := missing_model(ROOT / experiment):
        pytest.skip(reason)
    proc = snakemake("-n", "--config", f"experiment={experiment}", f"results={tmp_path}/r")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "rule train" in proc.stdout or "train " in proc.stdout
    assert not (tmp_path / "r").exists()  # a dry run writes nothing


def test_dry_run_shares_training_between_decoder_variants(tmp_path):
    proc = snakemake("-n", "--config", "experiment=config/experiments/demo.yaml",
                     f"results={tmp_path}/r")
    counts = dict(line.split()[:2] for line in proc.stdout.splitlines()
                  if len(line.split()) == 2 and line.split()[1].isdigit())
    assert counts["train"] == "1" and counts["train_ngram"] == "2" and counts["decode_frozen"] == "2"
    assert counts["run_result"] == "1"  # one job writes every run folder of the experiment


def test_several_experiments_and_relocated_results(tmp_path):
    proc = snakemake("-n", "--config",
                     "experiment=config/experiments/demo.yaml,config/experiments/smoke.yaml",
                     f"results={tmp_path}/elsewhere")
    assert proc.returncode == 0, proc.stderr
    assert f"{tmp_path}/elsewhere/demo/" in proc.stdout and f"{tmp_path}/elsewhere/smoke/" in proc.stdout


def test_bad_experiment_through_snakemake_is_one_line_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("variables: {model.layer: [1, 2]}\n")
    proc = snakemake("-n", "--config", f"experiment={bad}", f"results={tmp_path}/r")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: variables.model.layer: unknown setting 'model.layer'; did you mean 'model.layers'?"]
    assert not (tmp_path / "r").exists()


def test_lint_is_clean_but_for_software_environments():
    # The one lint we keep: rules name no conda env or container, because every job runs in
    # the project's own virtual environment (README, "Lint").
    proc = snakemake("--lint")
    lints = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()
             if line.strip().startswith("* ")]
    assert lints and all("conda environment or container" in line for line in lints), lints


def test_guard_refuses_a_changed_run_and_override_allows_it(tmp_path, write_experiment, in_repo):
    exp = write_experiment("controls: {train.lr: 0.001}\nvariables: {ngram.order: [3]}\n", "g")
    index = SweepIndex(str(exp), str(tmp_path))
    run_dir = tmp_path / "g" / "runs" / "order=3"
    run_dir.mkdir(parents=True)
    config = copy.deepcopy(index.run("g", "order=3").config)
    (run_dir / "config.yaml").write_text(dump_yaml(config))
    guard(index, overwrite=False)  # same config: fine
    config["train"]["lr"] = 0.002
    (run_dir / "config.yaml").write_text(dump_yaml(config))
    with pytest.raises(UserError) as err:
        guard(index, overwrite=False)
    assert "train.lr: 0.002 -> 0.001" in str(err.value) and "overwrite=true" in str(err.value)
    guard(index, overwrite=True)
    assert load_yaml(run_dir / "config.yaml")["train"]["lr"] == 0.002  # the guard never writes


def test_job_commands_carry_no_inline_config(tmp_path):
    """A failed job prints its command: it must be short, not the whole resolved config."""
    proc = snakemake("-n", "-p", "--config", "experiment=config/experiments/demo.yaml",
                     f"results={tmp_path}/r")
    assert proc.returncode == 0, proc.stderr[-2000:]
    commands = [line for line in proc.stdout.splitlines() if "asrsweep.experiment.write_config" in line]
    assert commands and not any("--json" in line or "{" in line or '"seed"' in line for line in commands)


def test_write_config_writes_the_stage_config_of_its_key(tmp_path, in_repo):
    from asrsweep.experiment.sweep import load_experiment, stage_config
    from asrsweep.experiment.write_config import main as write_config

    exp = "config/experiments/smoke.yaml"
    run_ = load_experiment(exp).runs[0]
    out = tmp_path / "config.json"
    write_config(["--experiment", exp, "--stage", "train", "--key", run_.keys["train"], "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(stage_config(run_.config, "train")))
    with pytest.raises(SystemExit):
        write_config(["--experiment", exp, "--stage", "train", "--key", "0000000000", "--out", str(out)])


def test_multinode_training_is_one_job_over_its_nodes(tmp_path):
    """train.nodes: 2 -> one train job with nodes/tasks 2, srun-style (mpi) job step, gpus per node as
    gres, started through the multi-node launcher; train.nodes: 1 keeps plain `gpu`."""
    smoke = load_yaml(ROOT / "config" / "experiments" / "smoke.yaml")
    smoke["controls"]["train"]["nodes"] = 2
    (tmp_path / "two.yaml").write_text(dump_yaml(smoke))
    proc = snakemake("-n", "-p", "--config", f"experiment={tmp_path / 'two.yaml'}", f"results={tmp_path}/r", "gpus=4")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    train = proc.stdout[proc.stdout.index("rule train:"):].split("\n\n")[0]
    assert "nodes=2, tasks=2, mpi=srun, gres=gpu:4" in train and "gpu=" not in train.replace("gres=gpu", "")
    assert "python -m asrsweep.acoustic.launch --nodes 2 --tasks 2 --gpus-per-node 4" in train
    # A real run with the local executor stops before its first job, naming the file and the run.
    proc = snakemake("-j1", "--config", f"experiment={tmp_path / 'two.yaml'}", f"results={tmp_path}/r", "gpus=4")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(errors) == 1 and "two.yaml" in errors[0] and "train.nodes: 2" in errors[0] and "'local'" in errors[0]
    assert not (tmp_path / "r").exists()
    proc = snakemake("-n", "-p", "--config", "experiment=config/experiments/smoke.yaml", f"results={tmp_path}/s",
                     "gpus=4")
    train = proc.stdout[proc.stdout.index("rule train:"):].split("\n\n")[0]
    assert "gpu=4" in train and "mpi=" not in train and "torchrun --standalone --nproc_per_node 4 -m" in train


@pytest.mark.parametrize("results", ["r", "./r/", "/abs/r"])
def test_index_folders_are_the_stage_dirs_as_text(results, in_repo):
    """The input and params functions take folders as text (cheaper than Paths): the same text."""
    index = SweepIndex("config/experiments/smoke.yaml", results)
    for run in index.experiments["smoke"].runs:
        for stage, key in run.keys.items():
            if stage == "checkpoints":
                continue
            assert index.folder("smoke", stage, key) == str(index.stage_dir("smoke", stage, key))
            assert index.upstream_dir("smoke", "rescore", run.keys["rescore"], stage) == str(
                index.stage_dir("smoke", stage, key))


def test_stage_keys_are_the_digest_of_what_each_stage_reads(in_repo):
    """Keys are put together from per-section JSON: they must equal the digest of the whole."""
    import hashlib

    from asrsweep.core.stages import STAGES, upstream_closure
    from asrsweep.experiment.sweep import PATH_SETTINGS, load_experiment, stage_config, stage_keys

    def digest(blob):
        return hashlib.sha1(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:10]

    config = load_experiment("config/experiments/smoke.yaml").runs[0].config
    waveform = {**config, "features": {**config["features"], "type": "waveform"}}
    inputs = {"data.path": {"sha1": "0123456789abcdef"}, "lm.text[0]": {"sha1": "fedcba9876543210"}}
    for config_, inputs_ in ((config, {}), (waveform, {}), (config, inputs)):
        keys = stage_keys(config_, inputs_)
        for stage in (s.name for s in STAGES if not s.keyed_like):
            blob = stage_config(config_, stage)
            read = {k: v["sha1"] for k, v in inputs_.items()
                    if PATH_SETTINGS[k.split("[")[0]] in upstream_closure(stage)}
            assert keys[stage] == digest({"config": blob, "inputs": read} if read else blob), stage
