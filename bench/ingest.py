"""python bench/ingest.py [--workdir DIR] [--utts 30000] [--jobs 2] [--rounds 2]

Ingestion of a real corpus with 1 vs N `data.shards` jobs (issue 13, item 2), in one run. The
generated demo corpus (`data.demo.train_utts` --utts; 30,000 are 20 h of training audio, made
by `prepare_demo` unless --workdir already holds it, e.g. bench/scale.py's) is listed in a
manifest with its splits (`data.source: manifest`) and run through the real step
`asrsweep.data.prepare_corpus`: as one job, and as --jobs parallel `--shard` jobs plus the
`--merge` job (one process each: `data.workers` 1), alternating, --rounds times. Both ways
of keeping the audio:
- in place (the default: 16 kHz mono WAV is referenced, its size and SHA-1 recorded);
- `data.copy_audio: true` (every file decoded and written again as a 16 kHz int16 WAV).
Prints wall time, utterances/s and peak RSS of each; the manifests written each way must be
equal (copied audio paths carry the shard folder, `shards/I-of-N/audio/`, and are compared
without it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
from pathlib import Path

from scale import one_vs_shards, prepare, print_one_vs_shards, write_configs  # bench/ is on sys.path

from asrsweep.core.common import write_json_atomic
from asrsweep.experiment.sweep import stage_config
from asrsweep.experiment.validate import load_schema, schema_defaults

SPLIT_FILES = ("train.tsv", "dev.tsv", "test.tsv")
SHARD_AUDIO = re.compile(r"shards/\d+-of-\d+/audio/")


def write_manifest(data: Path) -> tuple[Path, int]:
    """`data`/manifest.tsv: every utterance of the demo's split files with a split column."""
    lines = ["utt_id\taudio\ttext\tspeaker\tsplit"]
    for name in SPLIT_FILES:
        rows = (data / name).read_text().splitlines()
        header = rows[0].split("\t")
        for row in rows[1:]:
            cells = dict(zip(header, row.split("\t")))
            lines.append("\t".join([cells["utt_id"], cells["audio"], cells["text"], cells["speaker"], name[:-4]]))
    path = data / "manifest.tsv"
    path.write_text("\n".join(lines) + "\n")
    return path, len(lines) - 1


def data_config(folder: Path, manifest: Path, copy_audio: bool) -> Path:
    """prepare_corpus's --config: the schema's data defaults on this manifest, one process a job."""
    config = schema_defaults(load_schema("recipe"))
    config["data"].update(source="manifest", path=str(manifest), copy_audio=copy_audio, workers=1)
    path = folder / f"data-{'copy' if copy_audio else 'inplace'}.json"  # the figures print under this name
    write_json_atomic(path, stage_config(config, "data"))
    return path


def same_manifests(a: Path, b: Path) -> bool:
    """Whether two data folders list the same utterances, texts, audio (shard folders aside) and splits."""
    return all(SHARD_AUDIO.sub("audio/", (a / n).read_text()) == SHARD_AUDIO.sub("audio/", (b / n).read_text())
               for n in (*SPLIT_FILES, "lm.txt"))


def measure(config: Path, work: Path, utts: int, jobs: int, rounds: int) -> None:
    """One job vs `jobs` shard jobs + merge, alternating, printed; the data folders must be equal."""
    outs = (work / f"{config.stem}-1job", work / f"{config.stem}-{jobs}jobs")
    runs = one_vs_shards(f"  {config.stem}", "data.prepare_corpus", ("--config", config), outs, work, jobs, rounds)
    print(f"== {config.stem}: {utts} utts (best of {rounds})")
    print_one_vs_shards(runs, utts, jobs)
    equal = same_manifests(*outs)
    print(f"  manifests equal: {'yes' if equal else 'NO'}", flush=True)
    if not equal:
        raise SystemExit(f"{config.stem}: the {jobs}-job data folder lists other utterances than the 1-job one")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--utts", type=int, default=30000, help="data.demo.train_utts of the corpus")
    parser.add_argument("--jobs", type=int, default=2, help="shard jobs (data.shards)")
    parser.add_argument("--rounds", type=int, default=2, help="times each way is run (alternating)")
    parser.add_argument("--workdir", type=Path, help="keep the corpus here (bench/scale.py's --workdir works)")
    args = parser.parse_args(argv)
    if min(args.utts, args.rounds) < 1 or args.jobs < 2:
        parser.error("--utts and --rounds must be >= 1, --jobs >= 2")
    start = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="ingest."))
    try:
        folder = work / f"demo-{args.utts}"
        made = prepare(folder, write_configs(folder / "configs", args.utts, 1))
        manifest, utts = write_manifest(folder / "data")
        print(f"corpus: {utts} utts in {manifest}" + (f", made in {made['prepare_demo']:.1f} s" if made else ""))
        runs = work / "ingest"
        runs.mkdir(exist_ok=True)
        for copy_audio in (False, True):
            measure(data_config(runs, manifest, copy_audio), runs, utts, args.jobs, args.rounds)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"bench wall time {(time.perf_counter() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
