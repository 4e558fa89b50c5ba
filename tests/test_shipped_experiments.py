"""Every shipped experiment (config/experiments/**/*.yaml) through real snakemake: each with `-n`,
and each for real at toy size, as a nested experiment name (`toy/demo`, `toy/examples/yesno`).

Toy size = the experiment's own variables, zip, presets and seeds over smoke.yaml's controls;
smoke.yaml itself runs end to end in test_e2e_smoke.py. An experiment that reads recordings
(its own corpus) keeps its corpus-bound settings and is skipped when those recordings are absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from asrsweep.core.stages import STAGES
from asrsweep.experiment.nested import flatten
from asrsweep.experiment.workflow import SweepIndex
from conftest import ROOT, SHARED_DATA, missing_model
from test_e2e_smoke import snakemake

pytestmark = pytest.mark.slow
EXPERIMENTS = ROOT / "config" / "experiments"
SHIPPED = sorted(p.relative_to(EXPERIMENTS).as_posix() for p in EXPERIMENTS.rglob("*.yaml"))
# Experiments that read recordings from ../shared/data: their real run needs them. `-n` does not
# (it reads the manifest, which is in the repository; a missing recording only changes the data
# key, and data preparation counts it as bad audio), so every dry run runs.
RECORDINGS = {"examples/yesno.yaml": SHARED_DATA / "yesno"}
# Settings tied to the corpus: a toy run of an experiment with its own corpus keeps its values.
CORPUS_BOUND = ("data", "tokenizer", "lm.vocab_size")
AXES = ("variables", "zip", "presets", "seeds")
# Fine-tuning examples name a real pretrained encoder, far from toy size on CPU: their dry run runs
# when the model is in the cache, and tests/test_finetune_e2e.py runs a tiny one for real.
FINETUNE = ("examples/finetune.yaml",)


def read(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def corpus_bound(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in CORPUS_BOUND)


def toy_size(spec: dict, smoke: dict) -> dict:
    """`spec` at smoke's sizes: smoke's controls over its own, its axes kept as they are.

    An experiment with its own corpus (`data.source` other than demo) keeps its corpus-bound
    settings, and a relative `data.path` is made absolute (it is relative to the repository).
    """
    own = flatten(spec.get("controls") or {})
    own_corpus = own.get("data.source", "demo") != "demo"
    controls = {**own, **{k: v for k, v in flatten(smoke["controls"]).items()
                          if not (own_corpus and corpus_bound(k))}}
    if "data.path" in controls:
        controls["data.path"] = str(ROOT / controls["data.path"])
    toy = {"description": f"{spec.get('description', '')} (toy size)", "recipe": spec.get("recipe", "default"),
           "controls": controls}
    return toy | {axis: spec[axis] for axis in AXES if axis in spec}


def test_toy_size_keeps_axes_and_corpus():
    smoke = read(EXPERIMENTS / "smoke.yaml")
    demo = toy_size(read(EXPERIMENTS / "demo.yaml"), smoke)
    assert demo["variables"] == {"ngram.order": [3, 4]} and demo["controls"]["train.max_steps"] == 60
    assert demo["controls"]["data.demo.train_utts"] == 120
    yesno = toy_size(read(EXPERIMENTS / "examples" / "yesno.yaml"), smoke)
    assert yesno["seeds"] == [1, 2] and yesno["controls"]["train.max_steps"] == 60
    assert yesno["controls"]["tokenizer.type"] == "char" and yesno["controls"]["lm.vocab_size"] == 8
    assert yesno["controls"]["data.path"] == str(EXPERIMENTS / "examples" / "yesno.tsv")
    assert not any(k.startswith("data.demo") for k in yesno["controls"])


@pytest.mark.parametrize("name", SHIPPED)
def test_dry_run(name, tmp_path):
    if reason := missing_model(EXPERIMENTS / name):
        pytest.skip(reason)
    proc = snakemake("-n", "--config", f"experiment=config/experiments/{name}", f"results={tmp_path}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "run_result" in proc.stdout  # the last step of every run is planned


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """(workdir, results, names) after one snakemake of every shipped experiment at toy size.

    The workdir is a temporary copy of config/config.yaml with the derived experiments under
    config/experiments/toy/, so their names are nested (results/toy/<name>/).
    """
    workdir = tmp_path_factory.mktemp("shipped") / "wd"
    smoke = read(EXPERIMENTS / "smoke.yaml")
    names = []
    for name in SHIPPED:
        if name == "smoke.yaml" or not RECORDINGS.get(name, ROOT).is_dir() or name in FINETUNE:
            continue  # smoke: test_e2e_smoke; missing recordings: that experiment cannot run
        target = workdir / "config" / "experiments" / "toy" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump(toy_size(read(EXPERIMENTS / name), smoke), sort_keys=False))
        names.append(f"toy/{name.removesuffix('.yaml')}")
    shutil.copy(ROOT / "config" / "config.yaml", workdir / "config" / "config.yaml")
    results = workdir.parent / "results"
    experiments = ",".join(f"config/experiments/{n}.yaml" for n in names)
    proc = snakemake("--profile", "profiles/local", "--directory", str(workdir),
                     "--config", f"experiment={experiments}", f"results={results}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return workdir, results, names


def test_every_shipped_experiment_runs_at_toy_size_under_a_nested_name(toy_runs):
    workdir, results, names = toy_runs
    assert "toy/demo" in names
    files = ",".join(str(workdir / "config" / "experiments" / f"{n}.yaml") for n in names)
    index = SweepIndex(files, str(results), root=workdir)
    assert sorted(index.experiments) == sorted(names)
    for (name, run_id), run_dir in index.run_dirs().items():
        assert (run_dir / "result.json").is_file() and (run_dir / "config.yaml").is_file(), run_dir
    overall = pd.read_csv(results / "summary.tsv", sep="\t")
    for name in names:
        summary = pd.read_csv(results / name / "summary.tsv", sep="\t")
        runs = summary[summary["aggregate"] == "run"]
        assert set(runs["run"]) == {run.run_id for run in index.experiments[name].runs}
        assert runs["test_wer"].notna().all()
        assert name in set(overall["experiment"])


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_an_experiment_with_recordings_ran_when_they_are_here(name, toy_runs):
    if not RECORDINGS[name].is_dir():
        pytest.skip(f"{name} reads recordings from {RECORDINGS[name]}, which is absent")
    assert f"toy/{name.removesuffix('.yaml')}" in toy_runs[2]


def test_collect_and_status_read_the_nested_relocated_results(toy_runs, monkeypatch, capsys):
    from asrsweep.cli import main as asrsweep

    workdir, results, names = toy_runs
    monkeypatch.chdir(workdir)
    asrsweep(["collect", "config/experiments/toy/demo.yaml", "--results", str(results)])
    out = capsys.readouterr().out
    assert out.startswith("WER % (test, settings selected on dev)")
    assert "order=3" in out and "order=4" in out
    asrsweep(["status", "config/experiments/toy/demo.yaml", "--results", str(results)])
    out = capsys.readouterr().out
    assert f"order=3: {len(STAGES)} done" in out and f"order=4: {len(STAGES)} done" in out
