"""Tests for data.shards and data.copy_audio (asrsweep.data.prepare_corpus --shard/--merge).

N shard jobs + the merge give the files of one job; 16 kHz mono WAV/FLAC is referenced in place
(size and SHA-1 kept), 8 kHz and stereo audio is copied; bad audio is counted over all shards;
the workflow plans one job per shard; compute_features reads audio referenced in place.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
import soundfile

from asrsweep.core import tsv
from asrsweep.core.common import UserError
from asrsweep.data import compute_features as cf
from asrsweep.data import prepare_corpus as pc
from asrsweep.data.audio import read_manifest
from test_workflow import snakemake

OUTPUTS = ("train.tsv", "dev.tsv", "test.tsv", "lm.txt", "in_place.tsv")


def corpus(root, bad: int = 2) -> str:
    """A manifest of 40 utterances (4 speakers): 16 kHz WAV and FLAC, 8 kHz WAV, 16 kHz stereo, plus `bad` junk files."""
    root.mkdir()
    rng = np.random.default_rng(0)
    lines = ["audio\ttext\tspeaker"]
    for i in range(40):
        rate, channels, ext = [(16000, 1, "wav"), (16000, 1, "flac"), (8000, 1, "wav"), (16000, 2, "wav")][i % 4]
        audio = 0.1 * rng.standard_normal((int(rate * (0.3 + i / 100)), channels))
        soundfile.write(str(root / f"u{i}.{ext}"), audio, rate, subtype="PCM_16")
        lines.append(f"u{i}.{ext}\tWord {i}, again!\tspk{i % 4}")
    for i in range(bad):
        (root / f"junk{i}.wav").write_bytes(b"not audio")
        lines.append(f"junk{i}.wav\tjunk\tspk{i % 4}")
    (root / "m.tsv").write_text("\n".join(lines) + "\n")
    return str(root / "m.tsv")


def prepare(tmp_path, data: dict, name: str, shards: int = 1) -> tuple:
    """One prepare_corpus job (shards=1) or `shards` shard jobs and the merge → (outdir, report)."""
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"data": {**data, "shards": shards}}))
    base = ["--config", str(config), "--outdir", str(tmp_path / name)]
    if shards == 1:
        return tmp_path / name, pc.run(base)
    for shard in range(shards):
        pc.run([*base, "--shard", str(shard), "--num-shards", str(shards)])
    return tmp_path / name, pc.run([*base, "--merge", "--num-shards", str(shards)])


def job_counts(plan: str) -> dict[str, str]:
    """rule → job count, from the job-stats table of a `snakemake -n`."""
    return dict(line.split() for line in plan.splitlines() if len(line.split()) == 2 and line.split()[1].isdigit())


def comparable(report: dict) -> dict:
    """A report without what differs between one job and shards: its timing and data.shards."""
    return {k: v for k, v in report.items() if k not in ("seconds", "settings")}


@pytest.mark.parametrize("copy_audio", [False, True])
def test_three_shards_and_merge_equal_one_job(tmp_path, copy_audio):
    data = {"source": "manifest", "path": corpus(tmp_path / "c"), "copy_audio": copy_audio, "workers": 1}
    one, report1 = prepare(tmp_path, data, "one")
    three, report3 = prepare(tmp_path, data, "three", shards=3)
    for name in OUTPUTS:
        sharded = re.sub(r"shards/[0-9]+-of-3/audio/", "audio/", (three / name).read_text())
        assert sharded == (one / name).read_text(), name
    assert comparable(report3) == comparable(report1)
    assert report1["bad"] == 2 and sum(report1["kept"].values()) == 40
    assert sorted(p.name for p in (three / "shards").iterdir()) == ["0-of-3", "1-of-3", "2-of-3"]
    assert not (three / "audio").exists()
    assert "--shard 1 --num-shards 3" in (three / "shards" / "1-of-3" / "command.sh").read_text()
    for split in ("train", "dev", "test"):
        for row in read_manifest(three / f"{split}.tsv"):
            info = soundfile.info(row["audio"])
            assert (info.samplerate, info.channels) == (16000, 1)


def test_16k_mono_wav_and_flac_in_place_others_copied(tmp_path):
    out, report = prepare(tmp_path, {"source": "manifest", "path": corpus(tmp_path / "c"), "workers": 1}, "o")
    rows = {r["utt_id"]: r for s in ("train", "dev", "test") for r in tsv.read_tsv(out / f"{s}.tsv", ["utt_id", "audio"])}
    listing = {r["utt_id"]: r for r in tsv.read_tsv(out / "in_place.tsv", pc.IN_PLACE_COLUMNS)}
    source = tmp_path / "c"
    for i in range(40):
        utt, kind = f"{source.name}-u{i}" if f"{source.name}-u{i}" in rows else f"u{i}", i % 4
        row = rows[utt]
        if kind in (0, 1):  # 16 kHz mono WAV / FLAC: the source file itself
            path = source / f"u{i}.{'wav' if kind == 0 else 'flac'}"
            assert row["audio"] == str(path.resolve())
            assert listing[utt]["bytes"] == str(path.stat().st_size)
            assert listing[utt]["sha1"] == hashlib.sha1(path.read_bytes()).hexdigest()
        else:  # 8 kHz or stereo: a 16 kHz mono copy
            assert row["audio"] == f"audio/{utt}.wav" and utt not in listing
            assert soundfile.info(str(out / row["audio"])).samplerate == 16000
    assert report["in_place"]["files"] == 20 == len(listing)
    assert report["in_place"]["bytes"] == sum(int(r["bytes"]) for r in listing.values())


def test_copy_audio_copies_everything(tmp_path):
    data = {"source": "manifest", "path": corpus(tmp_path / "c"), "copy_audio": True, "workers": 1}
    out, report = prepare(tmp_path, data, "o")
    assert report["in_place"]["files"] == 0 and len((out / "in_place.tsv").read_text().splitlines()) == 1
    assert len(list((out / "audio").iterdir())) == 40


def test_bad_fraction_is_checked_over_all_shards_in_the_merge(tmp_path):
    # 6 bad of 46 (13 %) > 10 %: the shard jobs never check (each sees only its share), the merge does.
    data = {"source": "manifest", "path": corpus(tmp_path / "c", bad=6), "max_bad_fraction": 0.1, "workers": 1}
    with pytest.raises(UserError, match="6 of 46 entries are broken"):
        prepare(tmp_path, data, "o", shards=3)
    assert all((tmp_path / "o" / "shards" / f"{i}-of-3" / "part.json").is_file() for i in range(3))
    assert not (tmp_path / "o" / "train.tsv").exists()


def test_merge_refuses_missing_or_mismatched_shards(tmp_path):
    data = {"source": "manifest", "path": corpus(tmp_path / "c"), "workers": 1}
    out, _ = prepare(tmp_path, data, "o", shards=2)
    config = tmp_path / "o.json"
    with pytest.raises(UserError, match="missing"):
        pc.run(["--config", str(config), "--outdir", str(out), "--merge", "--num-shards", "3"])
    config.write_text(json.dumps({"data": {**data, "shards": 2, "min_duration": 0.2}}))
    with pytest.raises(UserError, match="different settings"):
        pc.run(["--config", str(config), "--outdir", str(out), "--merge", "--num-shards", "2"])
    with pytest.raises(UserError, match="--shard 2"):
        pc.run(["--config", str(config), "--outdir", str(out), "--shard", "2", "--num-shards", "2"])


def test_compute_features_reads_audio_referenced_in_place(tmp_path):
    out, _ = prepare(tmp_path, {"source": "manifest", "path": corpus(tmp_path / "c"), "workers": 1}, "o")
    config = tmp_path / "features.json"
    config.write_text(json.dumps({"features": {"n_mels": 40, "win_ms": 25, "hop_ms": 10}}))
    cf.run(["--config", str(config), "--data", str(out), "--outdir", str(tmp_path / "f")])
    assert (tmp_path / "f" / "cmvn.json").is_file()


def test_workflow_plans_one_job_per_shard_and_a_merge(tmp_path, write_experiment):
    path = corpus(tmp_path / "c")
    experiment = write_experiment(f"""\
        recipe: default
        controls:
          data: {{source: manifest, path: {path}, shards: 3}}
        """)
    proc = snakemake("-n", "--config", f"experiment={experiment}", f"results={tmp_path}/r")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    counts = job_counts(proc.stdout)
    assert counts["prepare_data_shard"] == "3" and counts["prepare_data"] == "1"
    assert "--merge --num-shards 3" in snakemake("-n", "-p", "--config", f"experiment={experiment}",
                                                 f"results={tmp_path}/r").stdout


def test_a_finished_shard_job_is_not_planned_again(tmp_path, write_experiment):
    path = corpus(tmp_path / "c")
    experiment = write_experiment(f"""\
        recipe: default
        controls:
          data: {{source: manifest, path: {path}, shards: 3, workers: 1}}
        """)
    config = ("--config", f"experiment={experiment}", f"results={tmp_path}/r")
    plan = snakemake("-n", *config).stdout
    part = next(word for word in plan.split() if word.endswith("/shards/1-of-3/part.json"))
    proc = snakemake("--cores", "1", *config, "--", part)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert job_counts(snakemake("-n", *config).stdout)["prepare_data_shard"] == "2"
