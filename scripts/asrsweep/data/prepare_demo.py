"""python -m asrsweep.data.prepare_demo --config <stage>/config.json --outdir R/E/data/<k>

Generate the demo corpus: sentences from the project's grammar (grammar.py) spoken by espeak-ng
voices (synth.py). Writes train.tsv dev.tsv test.tsv lm.txt report.json and audio/*.wav
(16 kHz mono int16). Settings: section `data`, sub-section `data.demo` (audio.DemoConfig).

Held out by construction: dev and test speakers use voice variants never used in training
(every dialect is seen, never the variant); dev, test and train sentences are pairwise
disjoint; lm.txt = the train sentences plus fresh generated ones, with every dev/test sentence
removed. Bit-exact for a given config (fixed synthesis chunks in fresh processes).
"""

from __future__ import annotations

import itertools
import random
import time
from pathlib import Path

from asrsweep.data import grammar
from asrsweep.data.audio import DemoConfig, manifest_text, parse_data_step, staged_audio
from asrsweep.core.common import UserError, cli_main, write_json_atomic, write_text_atomic
from asrsweep.data.synth import Job, Speaker, synthesize

SPLIT_VARIANTS = {"train": "train_variants", "dev": "dev_variants", "test": "test_variants"}


def validate(demo: DemoConfig, where: str) -> None:
    """Reject settings that would break the held-out guarantees or make an empty split."""
    for key in ("train_utts", "dev_utts", "test_utts", "lm_sentences"):
        if not isinstance(getattr(demo, key), int) or getattr(demo, key) < 1:
            raise UserError(f"{where}: data.demo.{key}: must be a positive integer")
    for key in ("voices", "speeds", "pitches", *SPLIT_VARIANTS.values()):
        if not isinstance(getattr(demo, key), list) or not getattr(demo, key):
            raise UserError(f"{where}: data.demo.{key}: must be a non-empty list")
    train, dev, test = (set(getattr(demo, k)) for k in SPLIT_VARIANTS.values())
    overlap = (train & dev) | (train & test) | (dev & test)
    if overlap:
        raise UserError(
            f"{where}: data.demo: variants {sorted(overlap)} are in more than one of "
            "train_variants/dev_variants/test_variants; held-out speakers need disjoint lists"
        )


def speakers_for(demo: DemoConfig, split: str) -> list[Speaker]:
    """All speakers of a split: voices × the split's variants × speeds × pitches."""
    variants = getattr(demo, SPLIT_VARIANTS[split])
    return [Speaker(v, var, s, p) for v, var, s, p in itertools.product(demo.voices, variants, demo.speeds, demo.pitches)]


def split_sentences(demo: DemoConfig) -> dict[str, list[str]]:
    """Pairwise-disjoint sentence lists per split (one seeded stream of distinct sentences)."""
    sizes = {"train": demo.train_utts, "dev": demo.dev_utts, "test": demo.test_utts}
    try:
        pool = grammar.unique_sentences(demo.seed, sum(sizes.values()))
    except ValueError as err:
        raise UserError(f"data.demo: {err}; ask for fewer utterances") from None
    out, start = {}, 0
    for split, size in sizes.items():
        out[split] = pool[start : start + size]
        start += size
    return out


def lm_sentences(demo: DemoConfig, train: list[str], held_out: set[str]) -> list[str]:
    """LM text: the train sentences, then fresh ones (a second seed stream) minus dev/test ones."""
    rng = random.Random(demo.seed + 1_000_003)
    lines = list(train[: demo.lm_sentences])
    while len(lines) < demo.lm_sentences:
        text = grammar.sentence(rng)
        if text not in held_out:
            lines.append(text)
    return lines


def build_jobs(demo: DemoConfig, texts: dict[str, list[str]], audio_dir: Path) -> tuple[list[Job], list[dict]]:
    """Assign speakers (shuffled round-robin, so all are used evenly) and WAV paths in `audio_dir`.

    The rows' `audio` is `audio/<utt_id>.wav`, relative to the output folder.
    """
    rng = random.Random(demo.seed + 7)
    jobs, rows = [], []
    for split, sentences in texts.items():
        speakers = speakers_for(demo, split)
        rng.shuffle(speakers)
        for i, text in enumerate(sentences):
            utt_id = f"{split}-{i:05d}"
            speaker = speakers[i % len(speakers)]
            jobs.append(Job(str(audio_dir / f"{utt_id}.wav"), text, speaker))
            rows.append({"split": split, "utt_id": utt_id, "audio": f"audio/{utt_id}.wav", "text": text,
                         "speaker": speaker.name})
    return jobs, rows


def run(argv: list[str] | None = None) -> dict:
    """Parse flags, generate the corpus, write manifests, lm.txt and report.json; returns the report."""
    args, outdir, cfg = parse_data_step("asrsweep.data.prepare_demo", __doc__, argv)
    demo = cfg.demo
    validate(demo, args.config)
    if not isinstance(cfg.workers, int) or cfg.workers < 1:
        raise UserError(f"{args.config}: data.workers: must be a positive integer")
    start = time.time()
    texts = split_sentences(demo)
    with staged_audio(outdir) as audio_dir:
        jobs, rows = build_jobs(demo, texts, audio_dir)
        try:
            durations = synthesize(jobs, demo.seed, cfg.workers)
        except ValueError as err:  # an unknown voice name, raised in a worker
            raise UserError(f"{args.config}: data.demo: {err}; see espeak-ng-data/voices") from None
    for row, duration in zip(rows, durations):
        row["duration"] = duration
    report = write_outputs(outdir, demo, texts, rows)
    report["settings"] = cfg.as_dict()
    report["seconds"] = round(time.time() - start, 2)
    write_json_atomic(outdir / "report.json", report)
    print(f"prepare_demo: {len(rows)} utterances, {report['hours']} h, {report['seconds']} s", flush=True)
    return report


def write_outputs(outdir: Path, demo: DemoConfig, texts: dict[str, list[str]], rows: list[dict]) -> dict:
    """Write {split}.tsv and lm.txt; return the report body (counts, hours, speakers)."""
    report = {"source": "demo", "kept": {}, "skipped": {}, "hours": {}, "speakers": {}}
    for split in texts:
        split_rows = [r for r in rows if r["split"] == split]
        write_text_atomic(outdir / f"{split}.tsv", manifest_text(split_rows))
        report["kept"][split] = len(split_rows)
        report["hours"][split] = round(sum(r["duration"] for r in split_rows) / 3600, 4)
        report["speakers"][split] = len({r["speaker"] for r in split_rows})
    held_out = set(texts["dev"]) | set(texts["test"])
    lines = lm_sentences(demo, texts["train"], held_out)
    write_text_atomic(outdir / "lm.txt", "\n".join(lines) + "\n")
    report["lm_sentences"] = len(lines)
    report["vocabulary"] = len({w for line in lines for w in line.split()})
    return report


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserErrors turned into one line on stderr and exit status 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
