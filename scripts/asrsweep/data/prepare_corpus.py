"""python -m asrsweep.data.prepare_corpus --config <stage>/config.json --outdir R/E/data/<k>

Prepare a real corpus: read `data.source` at `data.path`, normalise transcripts, convert audio
to 16 kHz mono int16 WAV under outdir/audio, and write train.tsv dev.tsv test.tsv lm.txt
(= the train transcripts) and report.json. Settings: section `data` (audio.DataConfig).

Sources (`data.source`):
  manifest     a .tsv (header) or .jsonl file: audio (or path/wav/file), text (or transcript/
               sentence), optional utt_id (or id), speaker, split, duration; audio paths are
               absolute or relative to the manifest's folder
  librispeech  a folder with */*.trans.txt and <utt>.flac; top-level subfolders named train*/dev*/test*
               become the splits
  kaldi        a folder with wav.scp + text (+ utt2spk), or train*/dev*/test* subfolders of those;
               wav.scp entries must be plain paths
  parquet      a .parquet file or folder: audio ({bytes,path} struct, bytes or path) + text column
  hf           a `datasets.save_to_disk` folder (needs `pip install datasets`)
Splits come from the source when it has them; a missing dev or test split is carved out of
train deterministically (by speaker when there are ≥ 3 speakers), data.dev_fraction /
data.test_fraction of the utterances. Broken entries (missing/unreadable/empty audio, missing
transcript) are skipped and counted as bad (error above data.max_bad_fraction); utterances
outside [min_duration, max_duration] are skipped and counted as filtered.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import re
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from asrsweep.data.audio import (
    SPLITS, TARGET_RATE, DataConfig, manifest_text, normalize_text, parse_data_step, read_audio, resample, write_wav16k,
)
from asrsweep.core.common import UserError, cli_main, write_json_atomic, write_text_atomic

BAD_REASONS = ("missing_audio", "unreadable_audio", "empty_audio", "missing_transcript", "unsupported_audio")
AUDIO_KEYS = ("audio", "path", "wav", "file", "audio_path", "audio_filepath")
TEXT_KEYS = ("text", "transcript", "sentence", "transcription", "normalized_text")
SPEAKER_KEYS = ("speaker", "speaker_id", "client_id")
ID_KEYS = ("utt_id", "id", "key")


@dataclass(frozen=True)
class Entry:
    """One source utterance before conversion; `audio` is a path, encoded bytes or None."""

    utt_id: str
    audio: str | bytes | None
    text: str | None
    speaker: str = ""
    split: str | None = None
    problem: str | None = None  # a reason known before reading the audio


def canonical_split(name: str) -> str | None:
    """Map a source split name to train/dev/test: `train-clean-100` → train, `validation` → dev."""
    name = name.lower()
    for split, prefixes in (("train", ("train",)), ("dev", ("dev", "valid", "val")), ("test", ("test", "eval"))):
        if name.startswith(prefixes):
            return split
    return None


def clean_id(raw: str) -> str:
    """A file-name-safe utterance id."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(raw)) or "utt"


def _pick(row: dict, keys: tuple[str, ...]):
    """The value of the first of `keys` present (and not None) in `row`."""
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def read_manifest_source(path: Path) -> list[Entry]:
    """Entries of a manifest .tsv (with header) or .jsonl; audio paths relative to its folder."""
    import csv

    if not path.is_file():
        raise UserError(f"data.path: {path}: manifest not found")
    if path.suffix in (".jsonl", ".json"):
        try:
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        except json.JSONDecodeError as err:
            raise UserError(f"{path}: line {err.lineno}: not valid JSON lines") from None
    else:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    if rows and _pick(rows[0], AUDIO_KEYS) is None:
        raise UserError(f"{path}: no audio column; expected one of {', '.join(AUDIO_KEYS)}")
    entries = []
    for i, row in enumerate(rows):
        audio = _pick(row, AUDIO_KEYS)
        utt = _pick(row, ID_KEYS) or (Path(audio).stem if audio else f"row{i}")
        split = row.get("split") or None
        entries.append(Entry(clean_id(utt), str(path.parent / audio) if audio else None, _pick(row, TEXT_KEYS),
                             str(_pick(row, SPEAKER_KEYS) or ""), split))
    return entries


def read_librispeech(root: Path) -> list[Entry]:
    """Entries of a LibriSpeech-style folder (<spk>/<chapter>/<spk>-<chapter>.trans.txt + .flac)."""
    entries = []
    for trans in sorted(root.rglob("*.trans.txt")):
        top = trans.relative_to(root).parts[0]
        split = top if canonical_split(top) else None
        for line in trans.read_text().splitlines():
            if not line.strip():
                continue
            utt, _, text = line.strip().partition(" ")
            flac = trans.parent / f"{utt}.flac"
            entries.append(Entry(clean_id(utt), str(flac), text, utt.split("-")[0], split))
    if not entries:
        raise UserError(f"data.path: {root}: no *.trans.txt files found (source: librispeech)")
    return entries


def _kaldi_table(path: Path) -> dict[str, str]:
    """A Kaldi `key value...` file as a dict (missing file → empty)."""
    if not path.is_file():
        return {}
    lines = (line.strip().split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {parts[0]: parts[1] if len(parts) > 1 else "" for parts in lines}


def read_kaldi(root: Path) -> list[Entry]:
    """Entries of a Kaldi data folder (wav.scp, text, utt2spk) or of its train*/dev*/test* subfolders."""
    folders = [root] if (root / "wav.scp").is_file() else sorted(
        d for d in root.iterdir() if d.is_dir() and (d / "wav.scp").is_file() and canonical_split(d.name))
    if not folders:
        raise UserError(f"data.path: {root}: no wav.scp (nor train*/dev*/test* subfolders with one)")
    entries = []
    for folder in folders:
        split = folder.name if folder != root else None
        texts, spk = _kaldi_table(folder / "text"), _kaldi_table(folder / "utt2spk")
        for utt, where in _kaldi_table(folder / "wav.scp").items():
            # Pipes (`sox ... |`) and archives (`x.ark:12`) would need Kaldi tools: counted as bad.
            problem = "unsupported_audio" if where.endswith("|") or ".ark:" in where else None
            audio = where if Path(where).is_absolute() else str(folder / where)
            entries.append(Entry(clean_id(utt), audio, texts.get(utt), spk.get(utt, ""), split, problem))
    return entries


def entries_from_frame(frame, default_split: str | None, base: Path) -> list[Entry]:
    """Entries of a pandas DataFrame (parquet / HF): audio column = {bytes,path} dict, bytes or path."""
    columns = list(frame.columns)
    audio_col = next((c for c in AUDIO_KEYS if c in columns), None)
    text_col = next((c for c in TEXT_KEYS if c in columns), None)
    if audio_col is None or text_col is None:
        raise UserError(f"data.path: {base}: need an audio column ({', '.join(AUDIO_KEYS)}) and a text "
                        f"column ({', '.join(TEXT_KEYS)}); found {', '.join(map(str, columns))}")
    speaker_col = next((c for c in SPEAKER_KEYS if c in columns), None)
    id_col = next((c for c in ID_KEYS if c in columns), None)
    entries = []
    for i, row in enumerate(frame.to_dict("records")):
        audio = row[audio_col]
        if isinstance(audio, dict):
            audio = audio.get("bytes") or audio.get("path")
        if isinstance(audio, str) and not Path(audio).is_absolute():
            audio = str(base / audio)
        split = row.get("split") if isinstance(row.get("split"), str) and row.get("split") else default_split
        utt = row[id_col] if id_col else f"{canonical_split(split) if split else 'utt'}-{i:06d}"
        speaker = str(row[speaker_col]) if speaker_col and row[speaker_col] is not None else ""
        entries.append(Entry(clean_id(utt), audio or None, row[text_col], speaker, split))
    return entries


def read_parquet(path: Path) -> list[Entry]:
    """Entries of a .parquet file or of every *.parquet under a folder (split from the file name)."""
    import pandas

    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files:
        raise UserError(f"data.path: {path}: no .parquet files found")
    entries = []
    for file in files:
        try:
            frame = pandas.read_parquet(file)
        except ImportError:
            raise UserError("source parquet needs a parquet engine: pip install pyarrow") from None
        split = next((n for n in (file.stem, file.parent.name) if canonical_split(n)), None)
        found = entries_from_frame(frame, split, file.parent)
        # Shards of one split number their rows from 0: keep ids unique across files.
        entries += [replace(e, utt_id=f"{file.stem}-{e.utt_id}") for e in found] if len(files) > 1 else found
    return entries


def read_hf(path: Path) -> list[Entry]:
    """Entries of a `datasets.save_to_disk` folder (Dataset or DatasetDict), audio not decoded."""
    try:
        import datasets
    except ImportError:
        raise UserError("source hf needs the `datasets` package: pip install datasets") from None
    loaded = datasets.load_from_disk(str(path))
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    entries = []
    for split, ds in parts:
        if "audio" in ds.column_names:
            ds = ds.cast_column("audio", datasets.Audio(decode=False))
        entries += entries_from_frame(ds.to_pandas(), split, path)
    return entries


READERS = {"manifest": read_manifest_source, "librispeech": read_librispeech, "kaldi": read_kaldi,
           "parquet": read_parquet, "hf": read_hf}


def _carve(train: list[Entry], fraction: float, salt: str, by_speaker: bool) -> tuple[list[Entry], list[Entry]]:
    """Move ≈ `fraction` of `train` (whole speakers if `by_speaker`) to a new split; hash-ordered."""
    key = (lambda e: e.speaker) if by_speaker else (lambda e: e.utt_id)
    groups: dict[str, list[Entry]] = {}
    for entry in train:
        groups.setdefault(key(entry), []).append(entry)
    order = sorted(groups, key=lambda g: hashlib.sha1(f"{salt}:{g}".encode()).hexdigest())
    target, taken = fraction * len(train), []
    for group in order:
        if len(taken) >= target or len(groups) - len(set(map(key, taken))) <= 1:
            break
        taken += groups[group]
    chosen = {id(e) for e in taken}
    return [e for e in train if id(e) not in chosen], taken


def assign_splits(entries: list[Entry], cfg: DataConfig) -> dict[str, list[Entry]]:
    """Group entries into train/dev/test: the source's own splits, missing ones carved from train."""
    splits: dict[str, list[Entry]] = {s: [] for s in SPLITS}
    labelled = [e for e in entries if e.split is not None]
    if labelled and len(labelled) != len(entries):
        raise UserError(f"data.path: {cfg.path}: some entries have a split and others not")
    for entry in entries:
        split = canonical_split(entry.split) if entry.split is not None else "train"
        if split is None:
            raise UserError(f"data.path: {cfg.path}: unknown split name {entry.split!r}; use train*/dev*/test*")
        splits[split].append(entry)
    # Held-out speakers need one for each carved split and one left for training.
    by_speaker = len({e.speaker for e in splits["train"] if e.speaker}) >= 3
    for split, fraction in (("test", cfg.test_fraction), ("dev", cfg.dev_fraction)):
        if not splits[split]:
            splits["train"], splits[split] = _carve(splits["train"], fraction, split, by_speaker)
    return splits


def convert(job: tuple[Entry, str, str, float, float]) -> tuple[dict | None, str | None]:
    """Worker: read, check, resample and write one utterance → (manifest row, None) or (None, reason)."""
    entry, text, outdir, min_dur, max_dur = job
    if entry.problem:
        return None, entry.problem
    if not text:
        return None, "missing_transcript"
    if entry.audio is None or (isinstance(entry.audio, str) and not Path(entry.audio).is_file()):
        return None, "missing_audio"
    try:
        audio, rate = read_audio(entry.audio)
    except Exception:  # soundfile raises several types for corrupt/unknown formats
        return None, "unreadable_audio"
    if len(audio) == 0:
        return None, "empty_audio"
    duration = len(audio) / rate
    if duration < min_dur or duration > max_dur:
        return None, "too_short" if duration < min_dur else "too_long"
    audio = resample(audio, rate, TARGET_RATE)
    write_wav16k(Path(outdir) / "audio" / f"{entry.utt_id}.wav", audio)
    return {"utt_id": entry.utt_id, "audio": f"audio/{entry.utt_id}.wav", "text": text,
            "speaker": entry.speaker or "unknown", "duration": len(audio) / TARGET_RATE}, None


def convert_all(splits: dict[str, list[Entry]], cfg: DataConfig, outdir: Path) -> tuple[dict, Counter, list]:
    """Convert every entry (a `cfg.workers` process pool) → rows per split, skip counts, examples."""
    order = [(split, e) for split in SPLITS for e in splits[split]]
    jobs = [(e, normalize_text(e.text if isinstance(e.text, str) else "", cfg.normalize), str(outdir), cfg.min_duration, cfg.max_duration)
            for _, e in order]
    if cfg.workers > 1 and len(jobs) > 50:
        with multiprocessing.get_context("spawn").Pool(cfg.workers) as pool:
            results = pool.map(convert, jobs, chunksize=16)
    else:
        results = [convert(job) for job in jobs]
    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    skipped: Counter = Counter()
    examples = []
    for (split, entry), (row, reason) in zip(order, results):
        if row is not None:
            rows[split].append(row)
        else:
            skipped[reason] += 1
            if len(examples) < 20:
                examples.append({"utt_id": entry.utt_id, "split": split, "reason": reason})
    return rows, skipped, examples


def check_settings(cfg: DataConfig, where: str) -> None:
    """Reject settings the conversion cannot honour, naming the key."""
    if cfg.source not in READERS:
        raise UserError(f"{where}: data.source: {cfg.source!r} is not one of {', '.join(READERS)} "
                        "(use prepare_demo for source demo)")
    if not cfg.path:
        raise UserError(f"{where}: data.path: empty; set it to the corpus file or folder")
    if cfg.normalize.punctuation not in ("drop", "keep") or cfg.normalize.digits not in ("drop", "keep"):
        raise UserError(f"{where}: data.normalize: punctuation and digits must be 'drop' or 'keep'")
    for key in ("dev_fraction", "test_fraction", "max_bad_fraction"):
        if not 0 <= getattr(cfg, key) < 1:
            raise UserError(f"{where}: data.{key}: must be in [0, 1)")
    if not 0 <= cfg.min_duration < cfg.max_duration:
        raise UserError(f"{where}: data.min_duration/max_duration: need 0 ≤ min < max")
    if not isinstance(cfg.workers, int) or cfg.workers < 1:
        raise UserError(f"{where}: data.workers: must be a positive integer")


def build_report(cfg: DataConfig, rows: dict, skipped: Counter, examples: list) -> dict:
    """report.json body; raises UserError when too much is broken or a split is empty."""
    total = sum(map(len, rows.values())) + sum(skipped.values())
    bad = sum(n for reason, n in skipped.items() if reason in BAD_REASONS)
    report = {
        "source": cfg.source, "path": cfg.path, "total": total, "kept": {s: len(r) for s, r in rows.items()},
        "skipped": dict(sorted(skipped.items())), "bad": bad, "bad_fraction": round(bad / max(total, 1), 4),
        "filtered": sum(skipped.values()) - bad, "skipped_examples": examples,
        "hours": {s: round(sum(r["duration"] for r in rs) / 3600, 4) for s, rs in rows.items()},
        "speakers": {s: len({r["speaker"] for r in rs}) for s, rs in rows.items()},
        "settings": cfg.as_dict(),
    }
    if bad / max(total, 1) > cfg.max_bad_fraction:
        raise UserError(f"data.path: {cfg.path}: {bad} of {total} entries are broken "
                        f"({dict(skipped)}), more than data.max_bad_fraction={cfg.max_bad_fraction}; "
                        f"first: {examples[:3]}")
    empty = [s for s in SPLITS if not rows[s]]
    if empty:
        raise UserError(f"data.path: {cfg.path}: split(s) {', '.join(empty)} empty after filtering "
                        f"(skipped: {dict(skipped)}); check the durations, fractions or the source")
    return report


def run(argv: list[str] | None = None) -> dict:
    """Parse flags, read the source, convert audio, write manifests, lm.txt and report.json."""
    args, outdir, cfg = parse_data_step("asrsweep.data.prepare_corpus", __doc__, argv)
    check_settings(cfg, args.config)
    start = time.time()
    source = Path(cfg.path).expanduser()
    if not source.exists():
        raise UserError(f"{args.config}: data.path: {source} does not exist")
    entries = READERS[cfg.source](source)
    ids = Counter(e.utt_id for e in entries)
    duplicates = [u for u, n in ids.items() if n > 1]
    if duplicates:
        raise UserError(f"data.path: {source}: duplicate utterance ids, e.g. {duplicates[:3]}; add a utt_id column")
    rows, skipped, examples = convert_all(assign_splits(entries, cfg), cfg, outdir)
    report = build_report(cfg, rows, skipped, examples)
    for split in SPLITS:
        write_text_atomic(outdir / f"{split}.tsv", manifest_text(rows[split]))
    write_text_atomic(outdir / "lm.txt", "".join(r["text"] + "\n" for r in rows["train"]))
    report["seconds"] = round(time.time() - start, 2)
    write_json_atomic(outdir / "report.json", report)
    print(f"prepare_corpus: kept {report['kept']}, skipped {report['skipped']}, {report['seconds']} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserErrors turned into one line on stderr and exit status 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
