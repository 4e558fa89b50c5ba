"""python -m asrsweep.data.prepare_corpus --config <stage>/config.json --outdir R/E/data/<k>

Prepare a real corpus: read `data.source` at `data.path` (sources.py; formats and examples in
config/README.md), normalise transcripts, convert audio to 16 kHz mono int16 WAV under
outdir/audio (built aside, moved into place once complete), and write train.tsv dev.tsv
test.tsv (core/tsv.py format), lm.txt (= the train transcripts) and report.json. Settings:
section `data` (audio.DataConfig).

Splits come from the source when it has them. A missing test split, then a missing dev split,
is carved out of train deterministically (hash order): data.test_fraction of train, then
data.dev_fraction of what is left. `data.split_by: speaker` moves whole speakers (when train has
at least 3 named speakers, else it falls back to utterances and says so), `utterance` single
utterances; report.json's `carved_by` records which. Broken entries (missing/unreadable/empty
audio, missing transcript) are skipped and counted as bad (error above data.max_bad_fraction);
utterances outside [min_duration, max_duration] are skipped and counted as filtered.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections import Counter
from pathlib import Path

from asrsweep.core.common import UserError, cli_main, write_json_atomic, write_text_atomic
from asrsweep.data.audio import (
    SPLIT_BY, SPLITS, TARGET_RATE, DataConfig, manifest_text, normalize_text, parse_data_step, read_audio, resample,
    staged_audio, write_wav16k,
)
from asrsweep.data.sources import READERS, Entry, canonical_split

# Held-out speakers need one for each carved split (dev, test) and one left for training.
MIN_SPEAKERS = 3
BAD_REASONS = ("missing_audio", "unreadable_audio", "empty_audio", "missing_transcript", "unsupported_audio")


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


def assign_splits(entries: list[Entry], cfg: DataConfig) -> tuple[dict[str, list[Entry]], str | None]:
    """Group entries into train/dev/test: the source's own splits, missing ones carved from train.

    Returns (splits, how dev/test were carved: "speaker", "utterance" or None when the source
    had both).
    """
    splits: dict[str, list[Entry]] = {s: [] for s in SPLITS}
    labelled = [e for e in entries if e.split is not None]
    if labelled and len(labelled) != len(entries):
        raise UserError(f"data.path: {cfg.path}: some entries have a split and others not")
    for entry in entries:
        split = canonical_split(entry.split) if entry.split is not None else "train"
        if split is None:
            raise UserError(f"data.path: {cfg.path}: unknown split name {entry.split!r}; use train*/dev*/test*")
        splits[split].append(entry)
    missing = [(s, f) for s, f in (("test", cfg.test_fraction), ("dev", cfg.dev_fraction)) if not splits[s]]
    by_speaker = cfg.split_by == "speaker" and len({e.speaker for e in splits["train"] if e.speaker}) >= MIN_SPEAKERS
    for split, fraction in missing:
        splits["train"], splits[split] = _carve(splits["train"], fraction, split, by_speaker)
    return splits, ("speaker" if by_speaker else "utterance") if missing else None


def convert(job: tuple[Entry, str, str, float, float]) -> tuple[dict | None, str | None]:
    """Worker: read, check, resample and write one utterance into the audio folder given.

    Returns (manifest row, None) or (None, reason); the row's `audio` is `audio/<utt_id>.wav`.
    """
    entry, text, audio_dir, min_dur, max_dur = job
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
    write_wav16k(Path(audio_dir) / f"{entry.utt_id}.wav", audio)
    return {"utt_id": entry.utt_id, "audio": f"audio/{entry.utt_id}.wav", "text": text,
            "speaker": entry.speaker or "unknown", "duration": len(audio) / TARGET_RATE}, None


def convert_all(splits: dict[str, list[Entry]], cfg: DataConfig, audio_dir: Path) -> tuple[dict, Counter, list]:
    """Convert every entry into `audio_dir` (a `cfg.workers` process pool) → rows per split, skip counts, examples."""
    order = [(split, e) for split in SPLITS for e in splits[split]]
    jobs = [(e, normalize_text(e.text if isinstance(e.text, str) else "", cfg.normalize), str(audio_dir),
             cfg.min_duration, cfg.max_duration) for _, e in order]
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
    if cfg.split_by not in SPLIT_BY:
        raise UserError(f"{where}: data.split_by: {cfg.split_by!r} is not one of {', '.join(SPLIT_BY)}")


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


def read_entries(cfg: DataConfig, where: str) -> list[Entry]:
    """The entries of the corpus at `data.path`; a missing path or duplicate ids are UserErrors."""
    source = Path(cfg.path).expanduser()
    if not source.exists():
        raise UserError(f"{where}: data.path: {source} does not exist")
    entries = READERS[cfg.source](source)
    ids = Counter(e.utt_id for e in entries)
    duplicates = [u for u, n in ids.items() if n > 1]
    if duplicates:
        raise UserError(f"data.path: {source}: duplicate utterance ids, e.g. {duplicates[:3]}; add a utt_id column")
    return entries


def run(argv: list[str] | None = None) -> dict:
    """Parse flags, read the source, convert audio, write manifests, lm.txt and report.json."""
    args, outdir, cfg = parse_data_step("asrsweep.data.prepare_corpus", __doc__, argv)
    check_settings(cfg, args.config)
    start = time.time()
    splits, carved_by = assign_splits(read_entries(cfg, args.config), cfg)
    if carved_by and carved_by != cfg.split_by:
        print(f"prepare_corpus: data.split_by {cfg.split_by}: train has fewer than {MIN_SPEAKERS} named "
              f"speakers, so dev/test are carved by {carved_by}", flush=True)
    with staged_audio(outdir) as audio_dir:
        rows, skipped, examples = convert_all(splits, cfg, audio_dir)
        report = build_report(cfg, rows, skipped, examples)
    report["carved_by"] = carved_by
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
