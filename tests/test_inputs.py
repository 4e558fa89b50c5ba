"""Files a config names: refused before anything runs when missing, and redone when they change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT
from asrsweep.core.common import UserError
from asrsweep.experiment.sweep import load_experiment

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
ASRSWEEP = str(Path(sys.executable).with_name("asrsweep"))


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(list(args), cwd=ROOT, capture_output=True, text=True, env=env)


@pytest.fixture
def manifest(tmp_path) -> Path:
    """A 4-utterance manifest corpus with real 16 kHz WAV files."""
    rows = ["audio\ttext\tsplit"]
    for i, split in enumerate(["train", "train", "dev", "test"]):
        sf.write(tmp_path / f"u{i}.wav", np.zeros(1600, dtype=np.float32), 16000)
        rows.append(f"u{i}.wav\tword number {i}\t{split}")
    path = tmp_path / "corpus.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


def experiment(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def data_key(exp: Path) -> str:
    [run_] = load_experiment(exp).runs
    return run_.keys["data"]


def test_editing_a_transcript_changes_the_data_key_and_everything_after_it(tmp_path, manifest):
    exp = experiment(tmp_path, f"controls: {{data.source: manifest, data.path: {manifest}}}\n")
    before = load_experiment(exp).runs[0].keys
    manifest.write_text(manifest.read_text().replace("word number 1", "word number one"))
    after = load_experiment(exp).runs[0].keys
    assert all(before[s] != after[s] for s in ("data", "features", "train", "rescore"))
    assert before["lm"] != after["lm"]  # the LM text is the training transcripts


def test_an_audio_file_rewritten_changes_the_data_key(tmp_path, manifest):
    exp = experiment(tmp_path, f"controls: {{data.source: manifest, data.path: {manifest}}}\n")
    before = data_key(exp)
    sf.write(tmp_path / "u0.wav", np.ones(3200, dtype=np.float32) * 0.1, 16000)
    assert data_key(exp) != before


def test_demo_settings_do_not_enter_a_real_corpus_key(tmp_path, manifest):
    base = f"controls: {{data.source: manifest, data.path: {manifest}"
    a = data_key(experiment(tmp_path, base + "}\n"))
    b = data_key(experiment(tmp_path, base + ", data.demo.seed: 7}\n"))
    assert a == b


def test_snakemake_n_plans_the_data_stage_again_after_a_transcript_edit(tmp_path, manifest):
    exp = experiment(tmp_path, f"controls: {{data.source: manifest, data.path: {manifest}}}\n")
    results = tmp_path / "r"
    old = results / "exp" / "data" / data_key(exp)
    old.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv", "test.tsv", "lm.txt", "report.json"):
        (old / name).write_text("done\n")  # the data stage of the unedited corpus has run
    config = ["--config", f"experiment={exp}", f"results={results}"]
    before = run(SNAKEMAKE, "-n", *config)
    assert before.returncode == 0, before.stderr[-2000:]
    assert "rule prepare_data:" not in before.stdout + before.stderr
    manifest.write_text(manifest.read_text().replace("word number 1", "word number one"))
    after = run(SNAKEMAKE, "-n", *config)
    assert after.returncode == 0 and "rule prepare_data:" in after.stdout + after.stderr


@pytest.mark.parametrize("setting", ["data.path", "train.init_from"])
def test_a_missing_path_is_refused_by_plan_and_snakemake_n_with_one_line(tmp_path, setting):
    controls = {"data.path": "{data.source: manifest, data.path: nowhere/corpus.tsv}",
                "train.init_from": "{train.init_from: nowhere/model.pt}"}[setting]
    exp = experiment(tmp_path, f"controls: {controls}\n")
    with pytest.raises(UserError, match=setting):
        load_experiment(exp)
    results = tmp_path / "r"
    for proc in (run(ASRSWEEP, "plan", str(exp), "--results", str(results)),
                 run(SNAKEMAKE, "-n", "--config", f"experiment={exp}", f"results={results}")):
        assert proc.returncode != 0
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and setting in lines[0] and "nowhere" in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
    assert not results.exists()


def test_provenance_names_the_corpus_fingerprint(tmp_path, manifest):
    exp = experiment(tmp_path, f"controls: {{data.source: manifest, data.path: {manifest}}}\n")
    [run_] = load_experiment(exp).runs
    corpus = run_.inputs["data.path"]
    assert corpus["path"] == str(manifest) and corpus["files"] == 5 and len(corpus["sha1"]) == 16


@pytest.fixture
def digests(tmp_path, monkeypatch) -> list[Path]:
    """A fresh fingerprint cache under tmp_path; the list of files whose bytes were hashed."""
    from asrsweep.core import inputs

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    hashed = []
    real = inputs.file_digest
    monkeypatch.setattr(inputs, "file_digest", lambda path: hashed.append(Path(path)) or real(path))
    return hashed


def settled(path: Path, seconds_ago: int = 60) -> Path:
    """Give `path` an mtime in the past (a file written this instant is never cached: RACY_NS)."""
    stamp = path.stat().st_mtime_ns - seconds_ago * 1_000_000_000
    os.utime(path, ns=(stamp, stamp))
    return path


def test_an_unchanged_input_is_hashed_once_across_expansions(tmp_path, manifest, digests):
    # Every job's write_config expands the experiment again: the corpus must be read once.
    exp = experiment(tmp_path, f"controls: {{data.source: manifest, data.path: {settled(manifest)}}}\n")
    keys = [load_experiment(exp).runs[0].keys for _ in range(3)]
    assert keys[0] == keys[1] == keys[2]
    assert digests == [manifest.resolve()]


def test_a_changed_input_is_hashed_again(tmp_path, manifest, digests):
    from asrsweep.core.inputs import fingerprint

    before = fingerprint(settled(manifest))
    # Same size, other bytes and mtime: only the mtime tells, and it must be enough.
    manifest.write_text(manifest.read_text().replace("word number 1", "word number 7"))
    after = fingerprint(settled(manifest, seconds_ago=30))
    assert len(digests) == 2 and after["bytes"] == before["bytes"] and after["sha1"] != before["sha1"]
    assert fingerprint(manifest) == after and len(digests) == 2  # the new content is cached in turn


def test_a_rewritten_audio_file_is_noticed_with_the_manifest_cached(tmp_path, manifest, digests):
    exp = experiment(tmp_path, f"controls: {{data.source: manifest, data.path: {settled(manifest)}}}\n")
    before = data_key(exp)
    sf.write(tmp_path / "u2.wav", np.ones(3200, dtype=np.float32) * 0.1, 16000)
    assert data_key(exp) != before and len(digests) == 1  # audio is stat-ed, the manifest not re-read


def test_a_file_written_just_now_is_not_cached(tmp_path, digests):
    from asrsweep.core.inputs import fingerprint

    text = tmp_path / "lm.txt"
    text.write_text("a sentence\n")
    fingerprint(text)
    fingerprint(text)
    assert len(digests) == 2 and not (tmp_path / "cache").exists()
