"""run_result: one job writes every run folder of an experiment, whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asrsweep.core.common import cli_main
from asrsweep.results.run_result import main as run_result
from asrsweep.experiment.workflow import SweepIndex

EXPERIMENT = """\
variables:
  ngram.order: [2, 3]
"""
LEAVES = {"train.json": {"steps": 5}, "best_on_dev.json": {"setting": {"lm_weight": 0.5}, "dev_wer": 0.2},
          "test.json": {"wer": 0.1, "cer": 0.05}, "lm.json": {"dev_ppl": 7.0},
          "report.json": {"kept": {"train": 8, "dev": 2, "test": 2}, "hours": {"train": 0.01}}}


def fake_stage_outputs(index: SweepIndex, exp: str) -> list[Path]:
    """The leaf files run_result reads, with small stand-in contents."""
    paths = [Path(p) for p in index.result_inputs(exp)]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(LEAVES[path.name]))
    return paths


def test_writes_every_run_folder(write_experiment, tmp_path, in_repo):
    exp = write_experiment(EXPERIMENT, name="orders")
    index = SweepIndex(str(exp), tmp_path / "r")
    fake_stage_outputs(index, "orders")
    runs = tmp_path / "r" / "orders" / "runs"
    (runs.parent / ".runs.new-killed").mkdir(parents=True)  # left by a job killed mid-way
    run_result(["--experiment", str(exp), "--runs-dir", str(runs)])
    assert not list(runs.parent.glob(".runs*"))
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == ["order=2", "order=3"]
    result = json.loads((runs / "order=3" / "result.json").read_text())
    assert result["values"] == {"ngram.order": 3} and result["beam"]["test"]["wer"] == 0.1
    assert "order: 3" in (runs / "order=3" / "config.yaml").read_text()
    assert json.loads((runs / "order=2" / "stages.json").read_text())["rescore"].endswith("test.json")
    corpus = json.loads((runs / "order=2" / "provenance.json").read_text())["corpus"]
    assert corpus == {"source": "demo", "path": None, "utterances": {"train": 8, "dev": 2, "test": 2},
                      "hours": {"train": 0.01}}


def test_missing_result_keeps_the_previous_runs_folder(write_experiment, tmp_path, in_repo, capsys):
    exp = write_experiment(EXPERIMENT, name="orders")
    index = SweepIndex(str(exp), tmp_path / "r")
    fake_stage_outputs(index, "orders")[-1].unlink()  # one run is not finished
    runs = tmp_path / "r" / "orders" / "runs"
    runs.mkdir(parents=True)
    (runs / "old.txt").write_text("previous")
    with pytest.raises(SystemExit) as stop:
        cli_main(run_result, ["--experiment", str(exp), "--runs-dir", str(runs)])
    assert stop.value.code == 2
    assert "file not found" in capsys.readouterr().err
    assert not list(runs.parent.glob(".runs*"))  # no half-built folder left
    assert (runs / "old.txt").read_text() == "previous"


def test_runs_dir_must_belong_to_the_experiment(write_experiment, tmp_path, in_repo, capsys):
    exp = write_experiment(EXPERIMENT, name="orders")
    with pytest.raises(SystemExit):
        cli_main(run_result, ["--experiment", str(exp), "--runs-dir", str(tmp_path / "r" / "other" / "runs")])
    assert "expected <results>/orders/runs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_nested_experiment_names_write_their_run_folders(tmp_path, monkeypatch):
    """config/experiments/asr/lr.yaml -> R/asr/lr/runs (a nested name failed at this last step)."""
    monkeypatch.chdir(tmp_path)
    exp = tmp_path / "config" / "experiments" / "asr" / "lr.yaml"
    exp.parent.mkdir(parents=True)
    exp.write_text(EXPERIMENT)
    index = SweepIndex("config/experiments/asr/lr.yaml", "r")
    assert list(index.experiments) == ["asr/lr"]
    fake_stage_outputs(index, "asr/lr")
    run_result(["--experiment", "config/experiments/asr/lr.yaml", "--runs-dir", "r/asr/lr/runs"])
    runs = tmp_path / "r" / "asr" / "lr" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["order=2", "order=3"]  # and no stray command.sh
    with pytest.raises(SystemExit):
        run_result(["--experiment", "config/experiments/asr/lr.yaml", "--runs-dir", "r/lr/runs"])
