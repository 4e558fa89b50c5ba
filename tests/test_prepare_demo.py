"""Tests for asrsweep.data.prepare_demo (+ synth): bit-exact output, held-out speakers and sentences."""

from __future__ import annotations

import json

import pytest
import soundfile

from asrsweep.data import prepare_demo
from asrsweep.data.audio import read_manifest

TINY = {
    "train_utts": 12, "dev_utts": 4, "test_utts": 4, "lm_sentences": 40, "seed": 3,
    "voices": ["en-us", "en"], "train_variants": ["m1", "f2"], "dev_variants": ["m4"],
    "test_variants": ["m8"], "speeds": [160], "pitches": [45, 55],
}


def make(tmp_path, name: str, workers: int = 2, **demo) -> tuple:
    """Run the CLI on a tiny config; returns (outdir, report)."""
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"data": {"source": "demo", "workers": workers, "demo": {**TINY, **demo}}}))
    outdir = tmp_path / name
    report = prepare_demo.main(["--config", str(config), "--outdir", str(outdir)])
    return outdir, report


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The tiny corpus generated twice (1 and 2 workers)."""
    tmp = tmp_path_factory.mktemp("demo")
    return make(tmp, "a", workers=2), make(tmp, "b", workers=1)


def test_output_is_bit_exact_whatever_the_worker_count(corpus):
    (a, _), (b, _) = corpus
    wavs = sorted(p.name for p in (a / "audio").iterdir())
    assert len(wavs) == 20 and wavs == sorted(p.name for p in (b / "audio").iterdir())
    for name in wavs:
        assert (a / "audio" / name).read_bytes() == (b / "audio" / name).read_bytes()
    for name in ("train.tsv", "dev.tsv", "test.tsv", "lm.txt"):
        assert (a / name).read_text() == (b / name).read_text()


def test_audio_is_16k_mono_int16_with_matching_durations(corpus):
    (a, report), _ = corpus
    for row in read_manifest(a / "train.tsv"):
        info = soundfile.info(row["audio"])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.duration - row["duration"]) < 1e-3 and info.duration > 0.5
    assert report["kept"] == {"train": 12, "dev": 4, "test": 4}
    assert (a / "command.sh").is_file() and json.loads((a / "report.json").read_text())["settings"]


def test_dev_and_test_speakers_and_sentences_are_held_out(corpus):
    (a, _), _ = corpus
    rows = {s: read_manifest(a / f"{s}.tsv") for s in ("train", "dev", "test")}
    speakers = {s: {r["speaker"] for r in rs} for s, rs in rows.items()}
    texts = {s: {r["text"] for r in rs} for s, rs in rows.items()}
    assert not speakers["train"] & (speakers["dev"] | speakers["test"])
    assert not speakers["dev"] & speakers["test"]
    assert all("+m4-" in s for s in speakers["dev"]) and all("+m8-" in s for s in speakers["test"])
    assert not texts["train"] & (texts["dev"] | texts["test"]) and not texts["dev"] & texts["test"]
    lm = (a / "lm.txt").read_text().splitlines()
    assert len(lm) == 40 and not set(lm) & (texts["dev"] | texts["test"])
    assert texts["train"] <= set(lm)


def test_overlapping_variant_lists_are_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        make(tmp_path, "bad", dev_variants=["m1"])
    assert exit_info.value.code == 2
    assert "disjoint" in capsys.readouterr().err


def test_unknown_voice_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        make(tmp_path, "bad", train_utts=2, dev_utts=1, test_utts=1, voices=["en-us", "xx-nonsense"])
    assert "no voice xx-nonsense" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["command.sh"]  # no audio/, no partial one


def test_unknown_key_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        make(tmp_path, "bad", train_utt=3)
    assert "train_utt" in capsys.readouterr().err
