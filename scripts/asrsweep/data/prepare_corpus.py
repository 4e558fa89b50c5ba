"""python -m asrsweep.data.prepare_corpus --config <stage>/config.json --outdir R/E/data/<k> [--shard I --num-shards N | --merge --num-shards N]

Prepare a real corpus: read `data.source` at `data.path` (sources.py; formats and examples in
config/README.md), normalise transcripts, reference audio that is already a 16 kHz mono WAV/FLAC
file in place (absolute path; size and SHA-1 in in_place.tsv) unless data.copy_audio, convert
the rest to 16 kHz mono int16 WAV under outdir/audio (built aside, moved into place once
complete), and write train.tsv dev.tsv test.tsv (core/tsv.py format), lm.txt (= the train
transcripts), in_place.tsv and report.json. Settings: section `data` (audio.DataConfig).

data.shards > 1 runs the conversion as N jobs: `--shard I --num-shards N` reads and splits the
whole corpus (cheap, deterministic), converts the entries at manifest positions ≡ I (mod N) into
outdir/shards/I-of-N/audio and writes outdir/shards/I-of-N/part.json last; `--merge` deals the
parts back into manifest order and writes the same files as one job would (the bad-audio check
runs there, over all shards). Only copied audio paths differ: shards/I-of-N/audio/... for audio/....

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
import json
import multiprocessing
import time
from collections import Counter
from pathlib import Path

from asrsweep.core import tsv
from asrsweep.core.common import UserError, cli_main, file_digest, open_outdir, write_json_atomic, write_text_atomic
from asrsweep.data.audio import (
    SPLIT_BY, SPLITS, TARGET_RATE, DataConfig, is_target_format, manifest_text, normalize_text,
    parse_data_step, read_audio, resample, staged_audio, write_wav16k,
)
from asrsweep.data.sources import READERS, Entry, canonical_split

# Held-out speakers need one for each carved split (dev, test) and one left for training.
MIN_SPEAKERS = 3
IN_PLACE_COLUMNS = ["utt_id", "audio", "bytes", "sha1"]
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


def convert(job: tuple[Entry, str, str, float, float, str, bool]) -> tuple[dict | None, str | None]:
    """Worker: read, check, and reference in place or resample and write one utterance.

    job: (entry, normalised text, audio folder, min and max duration, that folder's path as
    written in the manifest, copy_audio). A path entry that is already 16 kHz mono WAV/FLAC
    is referenced in place (absolute path; the row also carries its `bytes` and `sha1`) unless
    copy_audio; anything else becomes `<prefix>/<utt_id>.wav`. Returns (row, None) or (None, reason).
    """
    entry, text, audio_dir, min_dur, max_dur, prefix, copy_audio = job
    if entry.problem:
        return None, entry.problem
    if not text:
        return None, "missing_transcript"
    if entry.audio is None or (isinstance(entry.audio, str) and not Path(entry.audio).is_file()):
        return None, "missing_audio"
    try:
        audio, rate = read_audio(entry.audio)
        in_place = isinstance(entry.audio, str) and not copy_audio and is_target_format(entry.audio)
    except Exception:  # soundfile raises several types for corrupt/unknown formats
        return None, "unreadable_audio"
    if len(audio) == 0:
        return None, "empty_audio"
    duration = len(audio) / rate
    if duration < min_dur or duration > max_dur:
        return None, "too_short" if duration < min_dur else "too_long"
    row = {"utt_id": entry.utt_id, "text": text, "speaker": entry.speaker or "unknown"}
    if in_place:
        path = Path(entry.audio).resolve()
        return {**row, "audio": str(path), "duration": duration, "bytes": path.stat().st_size,
                "sha1": file_digest(path)}, None
    audio = resample(audio, rate, TARGET_RATE)
    write_wav16k(Path(audio_dir) / f"{entry.utt_id}.wav", audio)
    return {**row, "audio": f"{prefix}/{entry.utt_id}.wav", "duration": len(audio) / TARGET_RATE}, None


def ordered(splits: dict[str, list[Entry]]) -> list[tuple[str, Entry]]:
    """Every (split, entry) in manifest order; a shard takes the positions ≡ its index mod the shard count."""
    return [(split, e) for split in SPLITS for e in splits[split]]


def convert_some(order: list[tuple[str, Entry]], cfg: DataConfig, audio_dir: Path, prefix: str) -> list:
    """Convert the entries of `order` into `audio_dir` (a `cfg.workers` process pool) → [(row, reason)]."""
    jobs = [(e, normalize_text(e.text if isinstance(e.text, str) else "", cfg.normalize), str(audio_dir),
             cfg.min_duration, cfg.max_duration, prefix, cfg.copy_audio) for _, e in order]
    if cfg.workers > 1 and len(jobs) > 50:
        with multiprocessing.get_context("spawn").Pool(cfg.workers) as pool:
            return pool.map(convert, jobs, chunksize=16)
    return [convert(job) for job in jobs]


def collect(order: list[tuple[str, str]], results: list) -> tuple[dict, Counter, list]:
    """(split, utt_id) and (row, reason) of every entry, in manifest order → rows per split, skip counts, examples."""
    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    skipped: Counter = Counter()
    examples = []
    for (split, utt_id), (row, reason) in zip(order, results):
        if row is not None:
            rows[split].append(row)
        else:
            skipped[reason] += 1
            if len(examples) < 20:
                examples.append({"utt_id": utt_id, "split": split, "reason": reason})
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
    if not isinstance(cfg.shards, int) or cfg.shards < 1:
        raise UserError(f"{where}: data.shards: must be a positive integer")
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


def add_shard_flags(parser) -> None:
    """--shard/--num-shards (one conversion job of data.shards) and --merge (the job that merges them)."""
    parser.add_argument("--shard", type=int, help="convert only this shard (0-based) into outdir/shards/<i>-of-<n>/")
    parser.add_argument("--num-shards", type=int, default=1, help="how many shards the entries are dealt into")
    parser.add_argument("--merge", action="store_true", help="write the manifests and report from the shard folders")


def shard_dir(outdir: Path, shard: int, count: int) -> Path:
    """Folder of one shard's audio and part.json: outdir/shards/<shard>-of-<count>."""
    return outdir / "shards" / f"{shard}-of-{count}"


def split_corpus(cfg: DataConfig, where: str) -> tuple[list[tuple[str, Entry]], str | None]:
    """Read and split the corpus → ((split, entry) in manifest order, carved_by)."""
    splits, carved_by = assign_splits(read_entries(cfg, where), cfg)
    if carved_by and carved_by != cfg.split_by:
        print(f"prepare_corpus: data.split_by {cfg.split_by}: train has fewer than {MIN_SPEAKERS} named "
              f"speakers, so dev/test are carved by {carved_by}", flush=True)
    return ordered(splits), carved_by


def run_shard(args, outdir: Path, cfg: DataConfig, argv: list[str] | None) -> dict:
    """Convert the entries at positions ≡ args.shard (mod args.num_shards); write the shard's part.json last.

    The shard folder gets its own command.sh (the data folder's is the last job's, the merge's).
    """
    if not 0 <= args.shard < args.num_shards:
        raise UserError(f"--shard {args.shard}: must be in [0, --num-shards {args.num_shards})")
    order, carved_by = split_corpus(cfg, args.config)
    mine = order[args.shard::args.num_shards]
    folder = open_outdir(shard_dir(outdir, args.shard, args.num_shards), argv)
    with staged_audio(folder) as audio_dir:
        results = convert_some(mine, cfg, audio_dir, f"shards/{args.shard}-of-{args.num_shards}/audio")
    part = {"shard": args.shard, "num_shards": args.num_shards, "total": len(order), "carved_by": carved_by,
            "settings": cfg.as_dict(), "entries": [[s, e.utt_id, row, why] for (s, e), (row, why) in zip(mine, results)]}
    write_json_atomic(folder / "part.json", part)
    print(f"prepare_corpus: shard {args.shard} of {args.num_shards}: {len(mine)} of {len(order)} entries", flush=True)
    return part


def read_shards(outdir: Path, count: int, cfg: DataConfig) -> tuple[list, list, str | None]:
    """The part.json of every shard, dealt back into manifest order → (order, results, carved_by)."""
    parts = []
    for shard in range(count):
        path = shard_dir(outdir, shard, count) / "part.json"
        if not path.is_file():
            raise UserError(f"--merge: {path} is missing; run prepare_corpus --shard {shard} --num-shards {count}")
        parts.append(json.loads(path.read_text()))
    total = parts[0]["total"]
    if any(p["total"] != total or p["settings"] != cfg.as_dict() or p["carved_by"] != parts[0]["carved_by"]
           for p in parts):
        raise UserError(f"--merge: the shards under {outdir / 'shards'} come from different settings or corpora")
    merged: list = [None] * total
    for shard, part in enumerate(parts):
        merged[shard::count] = part["entries"]
    return [(s, u) for s, u, _, _ in merged], [(row, why) for _, _, row, why in merged], parts[0]["carved_by"]


def write_outputs(outdir: Path, report: dict, rows: dict) -> None:
    """{split}.tsv, lm.txt, in_place.tsv (files referenced in place: size and SHA-1) and report.json."""
    for split in SPLITS:
        write_text_atomic(outdir / f"{split}.tsv", manifest_text(rows[split]))
    write_text_atomic(outdir / "lm.txt", "".join(r["text"] + "\n" for r in rows["train"]))
    in_place = [r for split in SPLITS for r in rows[split] if "sha1" in r]
    listing = tsv.tsv_text(IN_PLACE_COLUMNS, in_place)
    write_text_atomic(outdir / "in_place.tsv", listing)
    report["in_place"] = {"files": len(in_place), "bytes": sum(r["bytes"] for r in in_place),
                          "listing_sha1": hashlib.sha1(listing.encode()).hexdigest()}
    write_json_atomic(outdir / "report.json", report)


def run(argv: list[str] | None = None) -> dict:
    """Parse flags; convert one shard, merge the shards, or (the default) read, convert and write everything."""
    args, outdir, cfg = parse_data_step("asrsweep.data.prepare_corpus", __doc__, argv, add_shard_flags)
    check_settings(cfg, args.config)
    if args.num_shards < 1:
        raise UserError(f"--num-shards {args.num_shards}: must be a positive integer")
    if args.shard is not None:
        return run_shard(args, outdir, cfg, argv)
    start = time.time()
    if args.merge:
        order, results, carved_by = read_shards(outdir, args.num_shards, cfg)
        rows, skipped, examples = collect(order, results)
        report = build_report(cfg, rows, skipped, examples)
    else:
        entries, carved_by = split_corpus(cfg, args.config)
        with staged_audio(outdir) as audio_dir:
            results = convert_some(entries, cfg, audio_dir, "audio")
            rows, skipped, examples = collect([(s, e.utt_id) for s, e in entries], results)
            report = build_report(cfg, rows, skipped, examples)
    report["carved_by"] = carved_by
    report["seconds"] = round(time.time() - start, 2)
    write_outputs(outdir, report, rows)
    print(f"prepare_corpus: kept {report['kept']}, skipped {report['skipped']}, {report['seconds']} s", flush=True)
    return report


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserErrors turned into one line on stderr and exit status 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
