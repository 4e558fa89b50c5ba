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

from scale import MB, Measured, prepare, run_measured, step, write_configs  # bench/ is on sys.path

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
    path = folder / f"data-{'copy' if copy_audio else 'inplace'}.json"
    write_json_atomic(path, stage_config(config, "data"))
    return path


def one_job(config: Path, out: Path, logs: Path) -> Measured:
    """prepare_corpus as one job into a fresh `out`."""
    shutil.rmtree(out, ignore_errors=True)
    return run_measured([step("data.prepare_corpus", "--config", config, "--outdir", out)], [logs / f"{out.name}.log"])


def shard_jobs(config: Path, out: Path, logs: Path, jobs: int) -> tuple[Measured, Measured]:
    """prepare_corpus as `jobs` parallel shard jobs, then the merge job, into a fresh `out`."""
    shutil.rmtree(out, ignore_errors=True)
    common = ("--config", config, "--outdir", out)
    shards = run_measured([step("data.prepare_corpus", *common, "--shard", i, "--num-shards", jobs)
                           for i in range(jobs)], [logs / f"{out.name}-shard{i}.log" for i in range(jobs)])
    merge = run_measured([step("data.prepare_corpus", *common, "--merge", "--num-shards", jobs)],
                         [logs / f"{out.name}-merge.log"])
    return shards, merge


def same_manifests(a: Path, b: Path) -> bool:
    """Whether two data folders list the same utterances, texts, audio (shard folders aside) and splits."""
    return all(SHARD_AUDIO.sub("audio/", (a / n).read_text()) == SHARD_AUDIO.sub("audio/", (b / n).read_text())
               for n in (*SPLIT_FILES, "lm.txt"))


def measure(config: Path, work: Path, jobs: int, rounds: int) -> dict:
    """One job vs `jobs` shard jobs + merge, alternating; the best of `rounds` each."""
    one, split = [], []
    for rnd in range(rounds):
        for kind in (("one", "shards") if rnd % 2 == 0 else ("shards", "one")):
            if kind == "one":
                one.append(one_job(config, work / f"{config.stem}-1job", work))
            else:
                split.append(shard_jobs(config, work / f"{config.stem}-{jobs}jobs", work, jobs))
        print(f"  {config.stem} round {rnd + 1}: 1 job {one[-1].seconds:.1f} s; {jobs} jobs "
              f"{split[-1][0].seconds:.1f} s + merge {split[-1][1].seconds:.1f} s", flush=True)
    best = min(split, key=lambda pair: pair[0].seconds + pair[1].seconds)
    return {"one": min(one, key=lambda m: m.seconds), "shards": best[0], "merge": best[1],
            "equal": same_manifests(work / f"{config.stem}-1job", work / f"{config.stem}-{jobs}jobs")}


def report(name: str, row: dict, utts: int, jobs: int) -> None:
    one, shards, merge = row["one"], row["shards"], row["merge"]
    both = shards.seconds + merge.seconds
    print(f"== {name}: {utts} utts")
    print(f"  1 job: {one.seconds:.1f} s, {utts / one.seconds:.0f} utts/s, peak RSS {one.peaks[0] / MB:.0f} MB")
    print(f"  {jobs} jobs: shards {shards.seconds:.1f} s (peak RSS {max(shards.peaks) / MB:.0f} MB each at most)"
          f" + merge {merge.seconds:.1f} s (peak RSS {merge.peaks[0] / MB:.0f} MB) = {both:.1f} s,"
          f" {utts / both:.0f} utts/s; speed-up {one.seconds / both:.2f}x (shards alone"
          f" {one.seconds / shards.seconds:.2f}x)")
    print(f"  manifests equal: {'yes' if row['equal'] else 'NO'}", flush=True)
    if not row["equal"]:
        raise SystemExit(f"{name}: the {jobs}-job data folder lists other utterances than the 1-job one")


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
        for copy_audio, name in ((False, "in place (size + SHA-1)"), (True, "data.copy_audio: true")):
            report(name, measure(data_config(runs, manifest, copy_audio), runs, args.jobs, args.rounds),
                   utts, args.jobs)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"bench wall time {(time.perf_counter() - start) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
