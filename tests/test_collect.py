"""asrsweep collect: the summary when it covers every run, else the finished runs from disk."""

from __future__ import annotations

import pytest

from asrsweep.cli import main as asrsweep
from asrsweep.experiment.workflow import SweepIndex
from test_run_result import EXPERIMENT, fake_stage_outputs


def test_mid_sweep_collect_gathers_the_finished_runs(write_experiment, tmp_path, in_repo, capsys):
    exp = write_experiment(EXPERIMENT, name="orders")
    index = SweepIndex(str(exp), tmp_path / "r")
    paths = fake_stage_outputs(index, "orders")
    unfinished = index.run("orders", "order=3").keys["rescore"]
    for path in paths:
        if unfinished in str(path):
            path.unlink()  # order=3 has not been rescored yet
    asrsweep(["collect", str(exp), "--results", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert out.startswith("partial: 1 of 2 runs finished")
    assert "order=2" in out and "order=3" not in out
    assert not (tmp_path / "r" / "orders" / "summary.tsv").exists()  # collect writes nothing


def test_nothing_finished_is_one_line(write_experiment, tmp_path, in_repo, capsys):
    exp = write_experiment(EXPERIMENT, name="orders")
    (tmp_path / "r" / "orders").mkdir(parents=True)  # the workflow has started, nothing finished
    with pytest.raises(SystemExit) as stop:
        asrsweep(["collect", str(exp), "--results", str(tmp_path / "r")])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"error: orders: no run has finished yet in {tmp_path / 'r' / 'orders'}; `asrsweep status` "
        "shows where each stands (results elsewhere? pass --results DIR)")


def test_relocated_results_without_results_flag_say_where_collect_looked(write_experiment, tmp_path,
                                                                         monkeypatch, capsys):
    exp = write_experiment(EXPERIMENT, name="orders")
    fake_stage_outputs(SweepIndex(str(exp), tmp_path / "r"), "orders")  # `--config results=<tmp>/r`
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        asrsweep(["collect", str(exp)])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: orders: nothing in results/orders (no such folder); if the workflow ran with "
        "--config results=DIR, pass --results DIR")
    asrsweep(["collect", str(exp), "--results", str(tmp_path / "r")])
    assert "order=2" in capsys.readouterr().out


def test_an_experiment_file_or_a_summary(write_experiment, tmp_path, capsys):
    exp = write_experiment(EXPERIMENT, name="orders")
    for argv in ([], [str(exp), "--summary", str(tmp_path / "summary.tsv")]):
        with pytest.raises(SystemExit) as stop:
            asrsweep(["collect", *argv])
        assert stop.value.code == 2
        assert "give an experiment file or --summary" in capsys.readouterr().err
