"""Tests for asrsweep.data.prepare_corpus and asrsweep.data.audio: sources, skips, splits, resampling."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas
import pytest
import soundfile

from asrsweep.data import prepare_corpus as pc
from asrsweep.data.audio import DataConfig, NormalizeConfig, normalize_text, read_manifest, resample
from asrsweep.core.common import UserError
from conftest import SHARED_DATA


def tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    """A 0.3-amplitude sine [samples]."""
    return 0.3 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)


def peak_hz(x: np.ndarray, rate: int) -> float:
    """Frequency of the largest spectral peak."""
    return float(np.argmax(np.abs(np.fft.rfft(x))) * rate / len(x))


@pytest.mark.parametrize("rate", [8000, 44100, 22050, 48000])
def test_resample_keeps_frequency_and_length_ratio(rate):
    x = tone(1.0, rate, 1000.0)
    y = resample(x, rate, 16000)
    assert len(y) == 16000 and y.dtype == np.float32
    assert abs(peak_hz(y, 16000) - 1000.0) <= 1.0
    ref = 0.3 * np.sin(2 * np.pi * 1000.0 * np.arange(16000) / 16000)
    assert np.abs(y[300:-300] - ref[300:-300]).max() < 1e-3  # edges see the zero padding


def test_resample_removes_content_above_the_new_nyquist():
    y = resample(tone(1.0, 44100, 10000.0), 44100, 16000)
    assert np.abs(y[500:-500]).max() < 2e-3


def test_normalize_text_options():
    text = "Don't  STOP, 'til 42 o'clock!"
    assert normalize_text(text, NormalizeConfig()) == "don't stop til 42 o'clock"
    assert normalize_text(text, NormalizeConfig(digits="drop")) == "don't stop til o'clock"
    assert normalize_text(text, NormalizeConfig(lowercase=False, punctuation="keep")) == "Don't STOP, 'til 42 o'clock!"


def write_wav(path, seconds: float, rate: int = 8000) -> str:
    soundfile.write(str(path), tone(seconds, rate), rate, subtype="PCM_16")
    return path.name


def run_cli(tmp_path, data: dict, name: str = "out") -> tuple:
    """Run prepare_corpus.run on a config with section `data`; returns (outdir, report)."""
    config = tmp_path / f"{name}.json"
    config.write_text(json.dumps({"data": data}))
    outdir = tmp_path / name
    return outdir, pc.run(["--config", str(config), "--outdir", str(outdir)])


def bad_manifest(tmp_path, good: int = 30) -> str:
    """A TSV manifest with `good` good rows (3 speakers) and one of each broken kind."""
    lines = ["audio\ttext\tspeaker"]
    for i in range(good):
        lines.append(f"{write_wav(tmp_path / f'g{i}.wav', 0.5 + i / 100)}\tHello, World {i}!\tspk{i % 3}")
    soundfile.write(str(tmp_path / "empty.wav"), np.zeros(0), 8000)
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    lines += ["missing.wav\tgone\tspk0", "empty.wav\tnothing\tspk0", "junk.wav\tjunk\tspk0",
              f"{write_wav(tmp_path / 'notext.wav', 1.0)}\t\tspk1", f"{write_wav(tmp_path / 'long.wav', 3.0)}\ttoo long\tspk2"]
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "m.tsv")


def test_manifest_bad_rows_are_counted_and_good_ones_resampled(tmp_path):
    path = bad_manifest(tmp_path)
    out, report = run_cli(tmp_path, {"source": "manifest", "path": path, "max_duration": 2.0, "max_bad_fraction": 0.2})
    assert report["skipped"] == {"empty_audio": 1, "missing_audio": 1, "missing_transcript": 1,
                                 "too_long": 1, "unreadable_audio": 1}
    assert report["bad"] == 4 and report["filtered"] == 1 and report["total"] == 35
    assert sum(report["kept"].values()) == 30
    rows = {s: read_manifest(out / f"{s}.tsv") for s in ("train", "dev", "test")}
    speakers = {s: {r["speaker"] for r in rs} for s, rs in rows.items()}
    assert all(len(v) == 1 for v in speakers.values()) and len(set.union(*speakers.values())) == 3
    row = rows["train"][0]
    info = soundfile.info(row["audio"])
    assert (info.samplerate, info.channels) == (16000, 1) and abs(info.duration - row["duration"]) < 1e-3
    assert row["text"].startswith("hello world ")
    assert (out / "lm.txt").read_text().splitlines() == [r["text"] for r in rows["train"]]


def test_too_many_bad_rows_is_a_user_error(tmp_path):
    path = bad_manifest(tmp_path, good=10)
    with pytest.raises(UserError, match="max_bad_fraction"):
        run_cli(tmp_path, {"source": "manifest", "path": path, "max_bad_fraction": 0.1})


def test_jsonl_manifest_with_split_column_and_dev_carved_from_train(tmp_path):
    rows = [{"path": write_wav(tmp_path / f"u{i}.wav", 0.4), "transcript": f"word {i}", "id": f"u{i}",
             "split": "train" if i < 20 else "test"} for i in range(24)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out, report = run_cli(tmp_path, {"source": "manifest", "path": str(tmp_path / "m.jsonl")})
    assert report["kept"] == {"train": 18, "dev": 2, "test": 4}
    assert {r["utt_id"] for r in read_manifest(out / "test.tsv")} == {"u20", "u21", "u22", "u23"}
    _, again = run_cli(tmp_path, {"source": "manifest", "path": str(tmp_path / "m.jsonl")}, "again")
    assert (out / "dev.tsv").read_text() == (tmp_path / "again" / "dev.tsv").read_text()


def test_kaldi_folder_with_split_subfolders(tmp_path):
    for split, n in (("train", 6), ("dev", 2), ("test", 2)):
        folder = tmp_path / "kaldi" / split
        folder.mkdir(parents=True)
        ids = [f"{split}{i}" for i in range(n)]
        for utt in ids:
            write_wav(folder / f"{utt}.wav", 0.3, rate=22050)
        scp = [f"{u} {folder / u}.wav" for u in ids] + ([f"{split}pipe sox x.wav -t wav - |"] if split == "train" else [])
        (folder / "wav.scp").write_text("\n".join(scp) + "\n")
        (folder / "text").write_text("".join(f"{u} SOME WORDS\n" for u in ids + [f"{split}pipe"]))
        (folder / "utt2spk").write_text("".join(f"{u} s{i % 2}\n" for i, u in enumerate(ids)))
    out, report = run_cli(tmp_path, {"source": "kaldi", "path": str(tmp_path / "kaldi"), "max_bad_fraction": 0.1})
    assert report["kept"] == {"train": 6, "dev": 2, "test": 2}
    assert report["skipped"] == {"unsupported_audio": 1}
    assert read_manifest(out / "dev.tsv")[0]["speaker"] == "s0"


def test_librispeech_folder(tmp_path):
    for split, speakers in (("train-clean-5", ("19", "26")), ("dev-clean-2", ("84",)), ("test-clean", ("61",))):
        for spk in speakers:
            chapter = tmp_path / "LibriSpeech" / split / spk / "100"
            chapter.mkdir(parents=True)
            lines = []
            for i in range(2):
                utt = f"{spk}-100-{i:04d}"
                soundfile.write(str(chapter / f"{utt}.flac"), tone(0.5, 16000), 16000, format="FLAC")
                lines.append(f"{utt} HE SAID DON'T GO {i}")
            (chapter / f"{spk}-100.trans.txt").write_text("\n".join(lines) + "\n")
    out, report = run_cli(tmp_path, {"source": "librispeech", "path": str(tmp_path / "LibriSpeech")})
    assert report["kept"] == {"train": 4, "dev": 2, "test": 2} and report["speakers"]["train"] == 2
    assert read_manifest(out / "test.tsv")[0]["text"] == "he said don't go 0"


def test_frame_rows_with_audio_bytes(tmp_path):
    buf = io.BytesIO()
    soundfile.write(buf, tone(0.5, 8000), 8000, format="WAV", subtype="PCM_16")
    frame = pandas.DataFrame({"audio": [{"bytes": buf.getvalue(), "path": None}, {"bytes": None, "path": "x.wav"}],
                              "sentence": ["One", "Two"], "client_id": ["a", "b"]})
    entries = pc.entries_from_frame(frame, "validation", tmp_path)
    assert [e.utt_id for e in entries] == ["dev-000000", "dev-000001"]
    assert isinstance(entries[0].audio, bytes) and entries[1].audio == str(tmp_path / "x.wav")
    row, reason = pc.convert((entries[0], "one", str(tmp_path / "o"), 0.1, 10.0))
    assert reason is None and row["speaker"] == "a" and soundfile.info(str(tmp_path / "o" / row["audio"])).samplerate == 16000


def test_parquet_source(tmp_path):
    buf = io.BytesIO()
    soundfile.write(buf, tone(0.5, 8000), 8000, format="WAV", subtype="PCM_16")
    frame = pandas.DataFrame({"audio": [buf.getvalue()] * 10, "text": [f"w {i}" for i in range(10)],
                              "speaker": [f"s{i % 5}" for i in range(10)]})
    try:
        frame.to_parquet(tmp_path / "train.parquet")
    except ImportError:
        with pytest.raises(UserError, match="pip install pyarrow"):
            (tmp_path / "train.parquet").write_bytes(b"PAR1")
            pc.read_parquet(tmp_path / "train.parquet")
        return
    _, report = run_cli(tmp_path, {"source": "parquet", "path": str(tmp_path / "train.parquet"),
                                   "dev_fraction": 0.2, "test_fraction": 0.2})
    assert sum(report["kept"].values()) == 10 and report["speakers"]["test"] >= 1


def test_hf_without_datasets_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(UserError, match="pip install datasets"):
        pc.read_hf(tmp_path)


def test_carve_by_speaker_keeps_speakers_whole():
    entries = [pc.Entry(f"u{i}", "x", "t", f"s{i % 10}") for i in range(100)]
    splits = pc.assign_splits(entries, DataConfig(source="manifest", path="x", dev_fraction=0.2, test_fraction=0.1))
    spk = {s: {e.speaker for e in es} for s, es in splits.items()}
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"] and not spk["dev"] & spk["test"]
    assert len(splits["dev"]) == 20 and len(splits["test"]) == 10


def test_settings_errors(tmp_path):
    with pytest.raises(UserError, match="data.source"):
        run_cli(tmp_path, {"source": "demo", "path": "x"})
    with pytest.raises(UserError, match="does not exist"):
        run_cli(tmp_path, {"source": "manifest", "path": str(tmp_path / "nope.tsv")})
    with pytest.raises(UserError, match="punctuation"):
        run_cli(tmp_path, {"source": "manifest", "path": "x", "normalize": {"punctuation": "maybe"}})


@pytest.mark.skipif(not (SHARED_DATA / "yesno").is_dir(), reason="../shared/data/yesno absent")
def test_yesno_through_a_manifest(tmp_path):
    files = sorted((SHARED_DATA / "yesno").glob("*.wav"))
    lines = ["audio\ttext\tsplit"] + [
        f"{f}\t{' '.join('yes' if c == '1' else 'no' for c in f.stem.split('_'))}\t{'train' if i < 30 else 'test'}"
        for i, f in enumerate(files)]
    (tmp_path / "yesno.tsv").write_text("\n".join(lines) + "\n")
    out, report = run_cli(tmp_path, {"source": "manifest", "path": str(tmp_path / "yesno.tsv")})
    assert report["kept"] == {"train": 27, "dev": 3, "test": 30} and report["bad"] == 0
    row = read_manifest(out / "test.tsv")[0]
    assert set(row["text"].split()) <= {"yes", "no"} and len(row["text"].split()) == 8
    assert soundfile.info(row["audio"]).samplerate == 16000 and row["duration"] > 5


def test_saved_hugging_face_dataset_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    buf = io.BytesIO()
    soundfile.write(buf, tone(0.5, 22050), 22050, format="WAV", subtype="PCM_16")
    audio = [{"bytes": buf.getvalue(), "path": None}] * 6

    def split(prefix: str):
        return datasets.Dataset.from_dict(
            {"audio": audio, "text": [f"{prefix} word {i}" for i in range(6)],
             "speaker": [f"{prefix}{i % 2}" for i in range(6)]}
        ).cast_column("audio", datasets.Audio(decode=False))

    saved = tmp_path / "hf"
    datasets.DatasetDict({"train": split("a"), "validation": split("b"), "test": split("c")}).save_to_disk(str(saved))
    outdir, report = run_cli(tmp_path, {"source": "hf", "path": str(saved)})
    assert report["kept"] == {"train": 6, "dev": 6, "test": 6}
    rows = read_manifest(outdir / "dev.tsv")
    assert rows[0]["text"] == "b word 0"
    assert soundfile.info(str(outdir / rows[0]["audio"])).samplerate == 16000
