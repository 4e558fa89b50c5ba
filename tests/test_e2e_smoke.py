"""The smoke experiment end to end through real snakemake (every stage, toy sizes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
STAGES = {"greedy", "ngram_beam", "rescored"}


def snakemake(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([str(BIN / "snakemake"), *args], cwd=ROOT, capture_output=True,
                          text=True, env=env)


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    results = tmp_path_factory.mktemp("smoke") / "results"
    config = ["--config", "experiment=config/experiments/smoke.yaml", f"results={results}"]
    proc = snakemake("--profile", "profiles/local", *config)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return results, config


def test_summary_has_every_run_and_stage(smoke_results):
    results, _ = smoke_results
    summary = pd.read_csv(results / "summary.tsv", sep="\t")
    runs = summary[summary["aggregate"] == "run"]
    assert set(runs["run"]) == {"order=2", "order=3"}
    assert set(runs["stage"]) == STAGES
    for column in ("ngram.order", "dev_wer", "test_wer", "test_cer", "settings", "steps", "n_params"):
        assert column in summary.columns
    beam = runs[runs["stage"] == "ngram_beam"]
    assert beam["test_wer"].notna().all() and (beam["steps"] == 60).all()


def test_summary_has_intervals_containing_each_wer_and_the_paired_tests(smoke_results):
    results, _ = smoke_results
    summary = pd.read_csv(results / "summary.tsv", sep="\t")
    runs = summary[summary["aggregate"] == "run"]
    for split in ("dev", "test"):
        assert runs[f"{split}_wer_lo"].notna().all(), f"{split}: a stage without hyps_{split}.tsv"
        assert ((runs[f"{split}_wer_lo"] <= runs[f"{split}_wer"] + 1e-12)
                & (runs[f"{split}_wer"] <= runs[f"{split}_wer_hi"] + 1e-12)).all()
    assert (runs["baseline"] == "order=2").all()
    others = runs[runs["run"] == "order=3"]
    assert others["p_improve"].between(0, 1).all() and others["p_vs_baseline"].between(0, 1).all()
    assert runs.loc[runs["stage"] != "greedy", "p_vs_prev"].between(0, 1).all()
    assert "edge" in summary.columns and "edge_hint" in summary.columns


def test_run_folders_keep_config_provenance_and_commands(smoke_results):
    results, _ = smoke_results
    run_dir = results / "smoke" / "runs" / "order=2"
    assert "order: 2" in (run_dir / "config.yaml").read_text()
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["git"]["commit"] and "torch" in provenance["packages"]
    commands = {p.stem for p in (run_dir / "commands").glob("*.sh")}
    assert {"train", "decode", "decode.shards.0-of-1", "nbest", "rescore", "data", "tokenizer"} <= commands
    train_cmd = (run_dir / "commands" / "train.sh").read_text()
    assert "python -m asrsweep.acoustic.train --config" in train_cmd
    assert (results / "smoke" / "matrix.tsv").read_text().startswith("run\tngram.order\n")


def test_training_is_shared_and_nothing_is_redone(smoke_results):
    results, config = smoke_results
    assert len(list((results / "smoke" / "train").iterdir())) == 1
    assert len(list((results / "smoke" / "ngram").iterdir())) == 2
    proc = snakemake("-n", *config)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_html_report_builds(smoke_results, tmp_path):
    _, config = smoke_results
    report = tmp_path / "report.html"
    proc = snakemake(*config, "--report", str(report))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report.stat().st_size > 10_000


def test_collect_reads_the_complete_summary(smoke_results, capsys, in_repo):
    from asrsweep.cli import main as asrsweep

    results, _ = smoke_results
    asrsweep(["collect", "config/experiments/smoke.yaml", "--results", str(results)])
    out = capsys.readouterr().out
    assert out.startswith("WER % (test, settings selected on dev)")  # no "partial:" line
    assert "order=2" in out and "order=3" in out
