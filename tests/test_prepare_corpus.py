"""Tests for asrsweep.data.prepare_corpus, .sources and .audio: sources, skips, splits, resampling."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas
import pytest
import soundfile

from asrsweep.data import prepare_corpus as pc
from asrsweep.data import sources
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
    entries = sources.entries_from_frame(frame, "validation", tmp_path)
    assert [e.utt_id for e in entries] == ["dev-000000", "dev-000001"]
    assert isinstance(entries[0].audio, bytes) and entries[1].audio == str(tmp_path / "x.wav")
    row, reason = pc.convert((entries[0], "one", str(tmp_path / "o" / "audio"), 0.1, 10.0, "audio", False))
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
            sources.read_parquet(tmp_path / "train.parquet")
        return
    _, report = run_cli(tmp_path, {"source": "parquet", "path": str(tmp_path / "train.parquet"),
                                   "dev_fraction": 0.2, "test_fraction": 0.2})
    assert sum(report["kept"].values()) == 10 and report["speakers"]["test"] >= 1


def test_hf_without_datasets_is_a_clear_error(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(UserError, match="pip install datasets"):
        sources.read_hf(tmp_path)


def carve(split_by: str, speakers: int = 10) -> tuple[dict, str | None]:
    """assign_splits of 100 unlabelled entries of `speakers` speakers: 20 % dev, 10 % test."""
    entries = [sources.Entry(f"u{i}", "x", "t", f"s{i % speakers}") for i in range(100)]
    return pc.assign_splits(entries, DataConfig(source="manifest", path="x", dev_fraction=0.2, test_fraction=0.1,
                                                split_by=split_by))


def test_split_by_speaker_keeps_speakers_whole():
    splits, carved_by = carve("speaker")
    spk = {s: {e.speaker for e in es} for s, es in splits.items()}
    assert not spk["train"] & spk["dev"] and not spk["train"] & spk["test"] and not spk["dev"] & spk["test"]
    assert len(splits["dev"]) == 20 and len(splits["test"]) == 10 and carved_by == "speaker"


def test_split_by_utterance_spreads_speakers_over_the_splits():
    splits, carved_by = carve("utterance")
    spk = {s: {e.speaker for e in es} for s, es in splits.items()}
    assert spk["train"] & spk["dev"] and spk["train"] & spk["test"] and carved_by == "utterance"
    assert len(splits["test"]) == 10 and len(splits["dev"]) == 18  # dev: 20 % of the 90 left after test
    assert {e.utt_id for es in splits.values() for e in es} == {f"u{i}" for i in range(100)}


def test_split_by_speaker_with_two_speakers_carves_by_utterance_and_says_so(tmp_path, capsys):
    assert carve("speaker", speakers=2)[1] == "utterance"
    rows = [{"audio": write_wav(tmp_path / f"u{i}.wav", 0.3), "text": f"w {i}", "speaker": f"s{i % 2}"} for i in range(20)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, report = run_cli(tmp_path, {"source": "manifest", "path": str(tmp_path / "m.jsonl")})
    assert report["carved_by"] == "utterance" and report["settings"]["split_by"] == "speaker"
    assert "data.split_by speaker: train has fewer than 3 named speakers" in capsys.readouterr().out


def test_splits_of_the_source_are_kept_whatever_split_by_says():
    entries = [sources.Entry(f"u{i}", "x", "t", f"s{i}", ("train", "dev", "test")[i % 3]) for i in range(9)]
    splits, carved_by = pc.assign_splits(entries, DataConfig(source="manifest", path="x", split_by="utterance"))
    assert carved_by is None and [len(splits[s]) for s in ("train", "dev", "test")] == [3, 3, 3]


def test_settings_errors(tmp_path):
    with pytest.raises(UserError, match="data.source"):
        run_cli(tmp_path, {"source": "demo", "path": "x"})
    with pytest.raises(UserError, match="does not exist"):
        run_cli(tmp_path, {"source": "manifest", "path": str(tmp_path / "nope.tsv")})
    with pytest.raises(UserError, match="punctuation"):
        run_cli(tmp_path, {"source": "manifest", "path": "x", "normalize": {"punctuation": "maybe"}})
    with pytest.raises(UserError, match="data.split_by: 'voice' is not one of speaker, utterance"):
        run_cli(tmp_path, {"source": "manifest", "path": "x", "split_by": "voice"})


def test_a_manifest_that_is_not_utf8_is_one_line_naming_file_and_line(tmp_path, capsys):
    text = f"audio\ttext\n{write_wav(tmp_path / 'a.wav', 0.5)}\tfine\n{write_wav(tmp_path / 'b.wav', 0.5)}\tcaf\xe9\n"
    (tmp_path / "m.tsv").write_bytes(text.encode("latin-1"))
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"data": {"source": "manifest", "path": str(tmp_path / "m.tsv")}}))
    with pytest.raises(SystemExit) as exit_info:
        pc.main(["--config", str(config), "--outdir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{tmp_path / 'm.tsv'}: line 3: byte 0xe9 is not UTF-8; re-encode the file as UTF-8" in err


@pytest.mark.parametrize("name, text, message", [
    ("m.tsv", "audio\ttext\nx.wav\tone\ttab\n", "m.tsv: line 2: 3 tab-separated fields, the header has 2"),
    ("m.jsonl", '{"audio": "x.wav"}\n\n{"audio": \n', r"m.jsonl: line 3: not valid JSON"),
    ("m.jsonl", '["x.wav", "one"]\n', "m.jsonl: line 1: expected a JSON object"),
    ("m.tsv", "\n\n", "no utterances"),
])
def test_malformed_manifests_name_the_line(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=message):
        sources.read_manifest_source(tmp_path / name)


def test_a_manifest_with_a_byte_order_mark_and_crlf_line_ends_reads(tmp_path):
    (tmp_path / "m.tsv").write_bytes("\ufeffaudio\ttext\r\nx.wav\tsay \"hi\" \\ there\r\n".encode())
    (entry,) = sources.read_manifest_source(tmp_path / "m.tsv")
    assert (entry.audio, entry.text) == (str(tmp_path / "x.wav"), 'say "hi" \\ there')


def test_a_failed_data_job_leaves_no_audio_folder(tmp_path):
    path = bad_manifest(tmp_path, good=10)
    with pytest.raises(UserError, match="max_bad_fraction"):
        run_cli(tmp_path, {"source": "manifest", "path": path, "max_bad_fraction": 0.0})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["command.sh"]


def test_a_rerun_replaces_the_audio_folder_whole(tmp_path):
    path = bad_manifest(tmp_path, good=10)
    (tmp_path / "out" / "audio").mkdir(parents=True)
    (tmp_path / "out" / "audio" / "old.wav").write_bytes(b"from an earlier run")
    (tmp_path / "out" / ".audio.partial").mkdir()  # left by a killed job
    out, report = run_cli(tmp_path, {"source": "manifest", "path": path, "max_bad_fraction": 0.5, "max_duration": 2.0})
    wavs = sorted(p.name for p in (out / "audio").iterdir())
    assert wavs == sorted(f"g{i}.wav" for i in range(10)) and not (out / ".audio.partial").exists()


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
