"""Tests for asrsweep.results.status on fabricated results folders (no SLURM needed)."""

import base64
import json
import os
import stat
import subprocess
import sys

import pytest

from asrsweep.results import status
from asrsweep.core.common import UserError
from asrsweep.core.stages import STAGES


def make_experiment(tmp_path):
    """results/demo with two runs sharing upstream stages; returns (workdir, results)."""
    workdir = tmp_path / "wd"
    results = workdir / "results" / "demo"
    stages_a = {
        "train": "results/demo/train/k1/model.pt",
        "emissions": "results/demo/emissions/k2/test.pt",
        "decode_sweep": {"output": "results/demo/decode/k3/shards/0-of-2.tsv", "rule": "decode_sweep"},
        "rescore": "results/demo/rescore/k4/test.json",
    }
    stages_b = dict(stages_a, rescore="results/demo/rescore/k5/test.json")
    for run, stages in (("lr_a", stages_a), ("lr_b", stages_b)):
        (results / "runs" / run).mkdir(parents=True)
        (results / "runs" / run / "stages.json").write_text(json.dumps(stages))
    (results / "train" / "k1").mkdir(parents=True)
    (results / "train" / "k1" / "model.pt").write_text("x")
    return workdir, results


def by_stage(rows, run):
    return {r.stage: r for r in rows if r.run == run}


def test_done_and_pending_without_squeue(tmp_path):
    workdir, results = make_experiment(tmp_path)
    rows = status.collect(results, workdir, None, None)
    a = by_stage(rows, "lr_a")
    assert a["train"].state == "done"
    assert {a[s].state for s in ("emissions", "decode_sweep", "rescore")} == {"pending"}
    text = status.format_table(rows, squeue_ok=False)
    assert "squeue not available" in text and "lr_a: 1 done, 3 pending" in text


def test_running_slurm_job_matched_by_rule_and_wildcards(tmp_path):
    workdir, results = make_experiment(tmp_path)
    jobs = status.parse_squeue(
        "101|RUNNING|0:42|rule_compute_emissions_wildcards_demo_k2\n"  # any rule, plain path
        "102|PENDING|0:00|rule_decode_sweep_wildcards_demo_k3_0_2\n"  # k3, shard 0, of 2
        "103|RUNNING|1:00|rule_rescore_wildcards_demo_k9\n"  # another key: no match
        "104|RUNNING|1:00|rule_summarize_experiment_wildcards_demo\n"  # only the experiment
        "105|RUNNING|1:00|rule_train\n"  # no wildcards: matches the stage named like it
        "garbage line\n"
    )
    assert [j.jobid for j in jobs] == ["101", "102", "103", "104", "105"]
    (results / "train" / "k1" / "model.pt").unlink()
    a = by_stage(status.collect(results, workdir, "lr_a", jobs), "lr_a")
    assert a["emissions"].state == "running"
    assert a["emissions"].detail == "job 101 RUNNING 0:42 (compute_emissions)"
    assert a["decode_sweep"].state == "running" and "job 102 PENDING" in a["decode_sweep"].detail
    assert a["rescore"].state == "pending"
    assert a["train"].detail.startswith("job 105 ")


def test_wildcard_tokens_must_all_match():
    out, results = status.Path("/r/demo/emissions/k2/test.pt"), status.Path("/r/demo")
    assert status.matches("demo_k2", out, results)
    assert not status.matches("demo_k2_dev", out, results)
    assert not status.matches("demo_k", out, results)  # tokens, not substrings
    assert not status.matches("demo", out, results)  # must name something below the results
    assert status.parse_comment("rule_train_wildcards_k1") == ("train", "k1")
    assert status.parse_comment("rule_summarize") == ("summarize", "")
    assert status.parse_comment("(null)") == ("", "")


def test_failed_with_slurm_log_and_cause(tmp_path):
    workdir, results = make_experiment(tmp_path)
    log_dir = workdir / ".snakemake" / "slurm_logs" / "rule_compute_emissions" / "demo_k2"
    log_dir.mkdir(parents=True)
    (log_dir / "55.log").write_text("...\nslurmstepd: error: *** JOB 55 ON vm CANCELLED AT x DUE TO TIME LIMIT ***\n")
    other = workdir / ".snakemake" / "slurm_logs" / "rule_rescore" / "demo_k5"
    other.mkdir(parents=True)
    (other / "56.log").write_text("Detected 1 oom_kill event in StepId=56.0\n")
    rows = status.collect(results, workdir, None, [])
    a, b = by_stage(rows, "lr_a"), by_stage(rows, "lr_b")
    assert a["emissions"].state == "failed"
    assert a["emissions"].detail == f"time limit: {log_dir / '55.log'}"
    assert a["rescore"].state == "pending"  # k4 has no log; k5's log belongs to lr_b
    assert b["rescore"].state == "failed" and b["rescore"].detail.startswith("out of memory: ")


def test_failed_with_rule_log_in_results(tmp_path):
    workdir, results = make_experiment(tmp_path)
    log = results / "logs" / "rescore" / "k4.log"
    log.parent.mkdir(parents=True)
    log.write_text("error: something\n")
    a = by_stage(status.collect(results, workdir, "lr_a", None), "lr_a")
    assert a["rescore"].state == "failed" and a["rescore"].detail == str(log)


def test_local_running_from_incomplete_marker(tmp_path):
    workdir, results = make_experiment(tmp_path)
    path = "results/demo/emissions/k2/test.pt"
    marker = workdir / ".snakemake" / "incomplete" / base64.urlsafe_b64encode(path.encode()).decode()
    marker.parent.mkdir(parents=True)
    marker.write_text('{"external_jobid": null}')
    a = by_stage(status.collect(results, workdir, "lr_a", None), "lr_a")
    assert a["emissions"].state == "pending"  # marker left by a dead snakemake: not running
    (workdir / ".snakemake" / "locks").mkdir()
    (workdir / ".snakemake" / "locks" / "0.output.lock").write_text(str(workdir))
    a = by_stage(status.collect(results, workdir, "lr_a", None), "lr_a")
    assert a["emissions"].state == "running" and "snakemake" in a["emissions"].detail


def test_long_incomplete_marker_is_split_into_chunks(tmp_path):
    path = "results/" + "x" * 300 + "/out.pt"
    encoded = base64.urlsafe_b64encode(path.encode()).decode()
    root = tmp_path / ".snakemake" / "incomplete"
    chunk = 254  # snakemake splits at NAME_MAX - 1 and prefixes all but the last chunk with "@"
    parts = [encoded[i:i + chunk] for i in range(0, len(encoded), chunk)]
    marker = root.joinpath(*["@" + p for p in parts[:-1]], parts[-1])
    marker.parent.mkdir(parents=True)
    marker.write_text("{}")
    assert status.incomplete_outputs(tmp_path) == {(tmp_path / path).resolve()}


def test_bad_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        status.collect(tmp_path / "nope", tmp_path, None, None)
    workdir, results = make_experiment(tmp_path)
    with pytest.raises(UserError, match="no run 'zzz'"):
        status.collect(results, workdir, "zzz", None)
    (results / "runs" / "lr_a" / "stages.json").write_text(json.dumps({"train": 3}))
    with pytest.raises(UserError, match="train: expected a path"):
        status.collect(results, workdir, "lr_a", None)


def test_cli_with_fake_squeue(tmp_path):
    workdir, results = make_experiment(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "squeue"
    fake.write_text("#!/bin/sh\necho '7|RUNNING|0:05|rule_compute_emissions_wildcards_demo_k2'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}")
    cmd = [sys.executable, "-m", "asrsweep.results.status", "--results", str(results), "--json"]
    out = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, check=True).stdout
    records = {(r["run"], r["stage"]): r for r in json.loads(out)}
    assert records[("lr_b", "emissions")]["detail"] == "job 7 RUNNING 0:05 (compute_emissions)"
    assert records[("lr_b", "train")]["state"] == "done"
    bad = subprocess.run(cmd[:-3] + ["--results", str(tmp_path / "missing")], cwd=workdir,
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_experiment_mode_lists_runs_that_have_not_finished(tmp_path, write_experiment, in_repo):
    from asrsweep.results.status import collect, stages_from_experiment

    exp = write_experiment("variables: {ngram.order: [3, 4]}\n", "st")
    results, runs = stages_from_experiment(exp, tmp_path / "r")
    assert results == tmp_path / "r" / "st" and set(runs) == {"order=3", "order=4"}
    rows = collect(results, tmp_path, None, None, runs)
    assert {r.state for r in rows} == {"pending"} and {r.stage for r in rows} >= {"train", "rescore"}



def test_stages_from_disk_are_in_pipeline_order(tmp_path):
    workdir, results = make_experiment(tmp_path)
    stages = results / "runs" / "lr_a" / "stages.json"
    # run_result writes stages.json key-sorted (write_json_atomic): alphabetical on disk
    stages.write_text(json.dumps(json.loads(stages.read_text()), sort_keys=True))
    rows = status.collect(results, workdir, "lr_a", None)
    assert [r.stage for r in rows] == ["train", "emissions", "rescore", "decode_sweep"]  # unknown last
    stages.write_text(json.dumps({"tokenizer": "t", "data": "d", "lmscore": "s", "decode": "x",
                                  "features": "f"}, sort_keys=True))
    assert list(status.read_stages(stages.parent)) == ["data", "features", "tokenizer", "decode", "lmscore"]


def test_experiment_mode_is_in_pipeline_order(tmp_path, write_experiment, in_repo):
    exp = write_experiment("variables: {ngram.order: [3, 4]}\n", "st")
    results, runs = status.stages_from_experiment(exp, tmp_path / "r")
    rows = status.collect(results, tmp_path, "order=3", None, runs)
    assert [r.stage for r in rows] == [stage.name for stage in STAGES]


def test_experiment_file_is_positional(tmp_path, write_experiment, in_repo, monkeypatch, capsys):
    exp = write_experiment("variables: {ngram.order: [3, 4]}\n", "st")
    status.main([str(exp), "--results", str(tmp_path / "r"), "--run", "order=4"])
    captured = capsys.readouterr()
    assert f"order=4: {len(STAGES)} pending" in captured.out
    assert captured.err.strip() == (f"({tmp_path / 'r' / 'st'}: no such folder; if the workflow ran "
                                    "with --config results=DIR, pass --results DIR)")
    (tmp_path / "results" / "st").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # --results defaults to ./results
    status.main([str(exp), "--json"])
    captured = capsys.readouterr()
    assert captured.err == "" and {r["run"] for r in json.loads(captured.out)} == {"order=3", "order=4"}


def test_help_shows_the_readme_form(capsys):
    with pytest.raises(SystemExit):
        status.main(["--help"])
    assert capsys.readouterr().out.startswith("usage: asrsweep status E.yaml [--results DIR]")
    with pytest.raises(SystemExit) as stop:
        status.main([])
    assert stop.value.code == 2 and "give an experiment file, or --results" in capsys.readouterr().err
