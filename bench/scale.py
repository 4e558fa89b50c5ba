"""python bench/scale.py [--utts-small 3000 --utts-large 30000 | --hours-small 2 --hours-large 20] [--steps 30] [--block-steps 5] [--rounds 4] [--extract-rounds 2] [--workdir DIR] [--threads 2]

How the data path grows with the corpus (issue 13, item 5), on the generated demo corpus at two
sizes (`data.demo.train_utts`; 3,000 and 30,000 are 2 h and 20 h of training audio), in one run.
Every corpus is made by the real step CLIs in subprocesses (prepare_demo, train_tokenizer,
compute_features), from --config files holding the schema's defaults with these changes:
data.demo.train_utts, features.type logmel (what `auto` is for the built-in encoder) and
train.max_steps --steps with one dev evaluation and one checkpoint, at the end.

1. Memory: `python -m asrsweep.acoustic.train` trains --steps steps on each corpus; its peak RSS
   (the kernel's VmHWM, polled) at the large size over the small one (goal <= 1.25), and the
   disk per hour of the feature store, of the audio and of the manifests.
2. Reader: one `asrsweep.acoustic.train.Trainer` on the large corpus runs blocks of
   --block-steps steps through `run()`, alternately reading `train["feats"]` from the sharded
   store (positioned reads of its shards) and from a list of the same tensors read up front; each block starts from
   a reset `progress`, so every block trains the same batches with the same seeds. One uncounted
   warm-up block of each (3 steps), then --rounds rounds in alternating order (BA, AB, ...): short blocks,
   many of them, so that a load change on the machine falls on both. Goal: sharded steps/s >=
   0.95 x in-memory.
3. Extraction of the large corpus: compute_features as one job against `--num-shards 2` shard
   jobs run as 2 parallel processes plus the `--merge` index job (1 thread each, as the rules
   run them): wall time, utterances/s, peak RSS; the two stores must be bitwise equal.

A --workdir of an earlier run keeps its corpora and tokenizers (their generation is then not
timed); features and trainings are always redone. Without --workdir a temporary one is removed.
"""

from __future__ import annotations

import argparse
import dataclasses
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from asrsweep.core.common import load_section, read_json, write_json_atomic  # noqa: E402
from asrsweep.experiment.sweep import stage_config  # noqa: E402
from asrsweep.experiment.validate import load_schema, schema_defaults  # noqa: E402

# make demo's corpus: 3,000 train utterances are 2.0203 h (its report.json); turns --hours-* into
# data.demo.train_utts before a corpus exists.
DEMO_SECONDS_PER_UTT = 2.0203 * 3600 / 3000
WARMUP_STEPS = 3  # steps of the reader's uncounted first block of each variant
POLL_S = 0.05  # VmHWM is a high-water mark: polling misses only growth in a process's last 50 ms
STAGES = ("data", "features", "tokenizer", "train")
MB = 1e6


@dataclasses.dataclass
class Measured:
    """Wall seconds of processes run together, and each one's peak RSS in bytes."""

    seconds: float
    peaks: list[int]  # the processes themselves
    worker_peak: int = 0  # largest peak of any of their child processes (DataLoader workers)


def utts_for_hours(hours: float) -> int:
    """data.demo.train_utts that make about `hours` of training audio."""
    return max(1, round(hours * 3600 / DEMO_SECONDS_PER_UTT))


def write_configs(folder: Path, train_utts: int, steps: int) -> dict[str, Path]:
    """Each step's --config file (`<folder>/<stage>.json`) for a demo corpus of `train_utts`."""
    config = schema_defaults(load_schema("recipe"))
    config["data"]["demo"]["train_utts"] = train_utts
    config["features"]["type"] = "logmel"
    config["train"].update(max_steps=steps, eval_every=0, checkpoint_every=0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stage in STAGES:
        paths[stage] = folder / f"{stage}.json"
        write_json_atomic(paths[stage], stage_config(config, stage))
    return paths


def step(module: str, *flags) -> list[str]:
    """The command line of step CLI `asrsweep.<module>`."""
    return [sys.executable, "-m", f"asrsweep.{module}", *map(str, flags)]


def vm_hwm(pid: int) -> int:
    """Peak resident bytes of process `pid` so far (VmHWM); 0 once it has exited."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def child_pids(pid: int) -> list[int]:
    """The live child processes of `pid` (of all its threads)."""
    pids = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids += [int(c) for c in path.read_text().split()]
        except OSError:
            pass
    return pids


def run_measured(cmds: list[list[str]], logs: list[Path]) -> Measured:
    """Run `cmds` in parallel to completion, stdout+stderr to `logs`, polling every peak RSS.

    Polled, not wait4's ru_maxrss: a child forked (or vforked) from this process carries this
    process's own high-water mark into its ru_maxrss (the kernel keeps the peak from before exec).
    """
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "scripts"),
                                                                    os.environ.get("PYTHONPATH")])))
    start, outs, procs = time.perf_counter(), [open(log, "w") for log in logs], []
    try:
        procs = [subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
                 for cmd, out in zip(cmds, outs)]
        peaks, worker = [0] * len(procs), 0
        while any(p.poll() is None for p in procs):
            for i, proc in enumerate(procs):
                peaks[i] = max(peaks[i], vm_hwm(proc.pid))
                worker = max([worker, *map(vm_hwm, child_pids(proc.pid))])
            time.sleep(POLL_S)
        seconds = time.perf_counter() - start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for out in outs:
            out.close()
    for cmd, log, proc in zip(cmds, logs, procs):
        if proc.returncode:
            tail = "\n".join(Path(log).read_text().splitlines()[-15:])
            raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return Measured(seconds, peaks, worker)


def prepare(folder: Path, configs: dict[str, Path]) -> dict:
    """The corpus (`folder/data`) and its tokenizer (`folder/tokenizer`); seconds of what was made."""
    data, tokenizer, made = folder / "data", folder / "tokenizer", {}
    if not (data / "report.json").is_file():  # written last: its presence means the corpus is complete
        made["prepare_demo"] = run_measured([step("data.prepare_demo", "--config", configs["data"],
                                                  "--outdir", data)], [folder / "prepare_demo.log"]).seconds
    if not (tokenizer / "tokens.txt").is_file():
        made["train_tokenizer"] = run_measured(
            [step("data.train_tokenizer", "--config", configs["tokenizer"], "--data", data, "--outdir", tokenizer)],
            [folder / "train_tokenizer.log"]).seconds
    return made


def one_job(module: str, flags: tuple, out: Path, logs: Path) -> Measured:
    """Step `module` as one job into a fresh `out` (its log in `logs`)."""
    shutil.rmtree(out, ignore_errors=True)
    return run_measured([step(module, *flags, "--outdir", out)], [logs / f"{out.name}.log"])


def shard_jobs(module: str, flags: tuple, out: Path, logs: Path, jobs: int) -> tuple[Measured, Measured]:
    """Step `module` as `jobs` parallel `--shard` jobs, then its `--merge` job, into a fresh `out`."""
    shutil.rmtree(out, ignore_errors=True)
    common = (*flags, "--outdir", out)
    shards = run_measured([step(module, *common, "--shard", i, "--num-shards", jobs) for i in range(jobs)],
                          [logs / f"{out.name}-shard{i}.log" for i in range(jobs)])
    merge = run_measured([step(module, *common, "--merge", "--num-shards", jobs)], [logs / f"{out.name}-merge.log"])
    return shards, merge


def one_vs_shards(label: str, module: str, flags: tuple, outs: tuple[Path, Path], logs: Path, jobs: int,
                  rounds: int) -> dict:
    """`module` as one job into outs[0] against `jobs` shard jobs + merge into outs[1], alternating
    (AB, BA, ...) `rounds` times: {"one": [Measured], "shards": [Measured], "merge": [Measured]}."""
    runs = {"one": [], "shards": [], "merge": []}
    for rnd in range(rounds):
        for kind in (("one", "shards") if rnd % 2 == 0 else ("shards", "one")):
            if kind == "one":
                runs["one"].append(one_job(module, flags, outs[0], logs))
            else:
                shards, merge = shard_jobs(module, flags, outs[1], logs, jobs)
                runs["shards"].append(shards)
                runs["merge"].append(merge)
        print(f"{label} round {rnd + 1}: 1 job {runs['one'][-1].seconds:.1f} s; {jobs} jobs "
              f"{runs['shards'][-1].seconds:.1f} s + merge {runs['merge'][-1].seconds:.1f} s", flush=True)
    return runs


def print_one_vs_shards(runs: dict, utts: int, jobs: int) -> None:
    """The best round of each way: wall time, utterances/s, peak RSS, and the speed-up."""
    one = min(runs["one"], key=lambda m: m.seconds)
    best = min(range(len(runs["shards"])), key=lambda i: runs["shards"][i].seconds + runs["merge"][i].seconds)
    shards, merge = runs["shards"][best], runs["merge"][best]
    both = shards.seconds + merge.seconds
    print(f"  1 job: {one.seconds:.1f} s, {utts / one.seconds:.0f} utts/s, peak RSS "
          f"{max(m.peaks[0] for m in runs['one']) / MB:.0f} MB")
    print(f"  {jobs} jobs: shards {shards.seconds:.1f} s (peak RSS {max(shards.peaks) / MB:.0f} MB each at most) + merge"
          f" {merge.seconds:.1f} s (peak RSS {merge.peaks[0] / MB:.0f} MB) = {both:.1f} s, {utts / both:.0f} utts/s;"
          f" speed-up {one.seconds / both:.2f}x (shards alone {one.seconds / shards.seconds:.2f}x)")


def feature_flags(folder: Path, configs: dict[str, Path]) -> tuple:
    """compute_features's flags for the corpus of `folder`, one thread (as the rules run shard jobs)."""
    return ("--config", configs["features"], "--data", folder / "data", "--threads", 1)


def store_files(folder: Path) -> list[Path]:
    """What the feature store of `folder` is (shards, indexes, cmvn.json), not parts/ or logs."""
    return sorted([*folder.glob("*.npy"), *folder.glob("*.index.tsv"), *folder.glob("cmvn.json")])


def same_store(a: Path, b: Path) -> bool:
    """Whether two feature folders hold byte-identical stores."""
    names = [p.name for p in store_files(a)]
    return bool(names) and names == [p.name for p in store_files(b)] and all(
        filecmp.cmp(a / n, b / n, shallow=False) for n in names)


def store_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in store_files(folder))


def train_peak(folder: Path, configs: dict[str, Path], features: Path, threads: int) -> Measured:
    """`python -m asrsweep.acoustic.train` on `features` from scratch, measured."""
    out, ckpt = folder / "train", folder / "checkpoints"
    for old in (out, ckpt):  # a leftover checkpoint would be resumed from
        shutil.rmtree(old, ignore_errors=True)
    return run_measured([step("acoustic.train", "--config", configs["train"], "--features", features,
                              "--tokenizer", folder / "tokenizer", "--outdir", out, "--checkpoint-dir", ckpt,
                              "--threads", threads)], [folder / "train.log"])


def reader_speed(folder: Path, configs: dict[str, Path], features: Path, block_steps: int, rounds: int,
                 threads: int) -> tuple[dict[str, list[tuple[float, float]]], float]:
    """(wall, CPU) seconds of every counted block per variant (sharded, in-memory), and seconds to
    read the list. CPU seconds are this process's (all threads: on CPU the trainer reads its
    batches itself), which other load on the machine changes less than the wall time.

    Dev evaluation and the checkpoint at the end of a block are switched off on this instance:
    the same model work in both variants, not the data path.
    """
    from asrsweep.acoustic.model import ModelConfig
    from asrsweep.acoustic.train import Progress, Trainer, TrainConfig, TrainPaths

    cfg = dataclasses.replace(load_section(configs["train"], "train", TrainConfig), max_steps=block_steps)
    paths = TrainPaths(features, folder / "tokenizer", folder / "speed-out", folder / "speed-checkpoints")
    shutil.rmtree(paths.checkpoint_dir, ignore_errors=True)
    trainer = Trainer(cfg, load_section(configs["train"], "model", ModelConfig), read_json(configs["train"])["seed"],
                      paths, threads)
    trainer.eval_and_log = trainer.save = lambda: None
    sharded = trainer.train["feats"]
    start = time.perf_counter()
    variants = {"sharded": sharded, "in-memory": [sharded[i] for i in range(len(sharded))]}
    read_s = time.perf_counter() - start
    blocks = {name: [] for name in variants}
    for rnd in range(rounds + 1):  # round 0 warms both up (first reads, allocator), WARMUP_STEPS steps
        trainer.cfg = dataclasses.replace(cfg, max_steps=min(WARMUP_STEPS, block_steps) if rnd == 0 else block_steps)
        for name in (list(variants) if rnd % 2 == 0 else list(reversed(variants))):
            trainer.train["feats"], trainer.progress = variants[name], Progress()
            start, cpu = time.perf_counter(), time.process_time()
            trainer.run()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            if trainer.progress.step != trainer.cfg.max_steps:
                raise SystemExit(f"reader: block ran {trainer.progress.step} steps, not {trainer.cfg.max_steps}")
            if rnd:
                blocks[name].append((seconds, cpu))
                print(f"  round {rnd} {name:9s} {cfg.max_steps / seconds:.3f} steps/s ({seconds:.1f} s wall,"
                      f" {cpu:.1f} CPU s)", flush=True)
    trainer.train["feats"] = sharded
    return blocks, read_s


def corpus_sizes(folder: Path) -> dict:
    """Hours (train, all splits), utterances, and bytes of audio and manifests of a corpus."""
    data = folder / "data"
    report = read_json(data / "report.json")
    return {"train_h": report["hours"]["train"], "hours": sum(report["hours"].values()),
            "utts": sum(report["kept"].values()), "train_utts": report["kept"]["train"],
            "audio": sum(p.stat().st_size for p in (data / "audio").iterdir()),
            "manifests": sum((data / f"{s}.tsv").stat().st_size for s in ("train", "dev", "test"))}


def goal(ok: bool) -> str:
    return "met" if ok else "NOT met"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--utts-small", type=int, default=3000, help="data.demo.train_utts of the small corpus")
    parser.add_argument("--utts-large", type=int, default=30000, help="data.demo.train_utts of the large corpus")
    parser.add_argument("--hours-small", type=float, help="instead of --utts-small: hours of training audio")
    parser.add_argument("--hours-large", type=float, help="instead of --utts-large: hours of training audio")
    parser.add_argument("--steps", type=int, default=30, help="steps of the training of each size (peak RSS)")
    parser.add_argument("--block-steps", type=int, default=5, help="training steps per reader block")
    parser.add_argument("--rounds", type=int, default=4, help="counted reader rounds (one block of each variant)")
    parser.add_argument("--extract-rounds", type=int, default=2, help="times each extraction is run (alternating)")
    parser.add_argument("--workdir", type=Path, help="keep corpora and outputs here (default: a removed temp dir)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the trainings")
    args = parser.parse_args(argv)
    args.utts_small = utts_for_hours(args.hours_small) if args.hours_small else args.utts_small
    args.utts_large = utts_for_hours(args.hours_large) if args.hours_large else args.utts_large
    if min(args.utts_small, args.utts_large, args.steps, args.block_steps, args.rounds, args.extract_rounds) < 1:
        parser.error("sizes, --steps, --block-steps, --rounds and --extract-rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    bench_start = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="scale."))
    try:
        run_bench(args, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"bench wall time {(time.perf_counter() - bench_start) / 60:.1f} min", flush=True)


def run_bench(args: argparse.Namespace, work: Path) -> None:
    """The three measurements in order (corpora, extraction, training memory, reader), then the summary."""
    sizes = {"small": args.utts_small, "large": args.utts_large}
    folders = {k: work / f"demo-{n}" for k, n in sizes.items()}
    configs = {k: write_configs(folders[k] / "configs", n, args.steps) for k, n in sizes.items()}
    corpus = {}
    for k in sizes:
        made = prepare(folders[k], configs[k])
        corpus[k] = corpus_sizes(folders[k])
        c = corpus[k]
        print(f"corpus {k}: {c['train_utts']} train utts, {c['train_h']:.2f} h train, {c['hours']:.2f} h all, "
              + (", ".join(f"{s} {t:.1f} s" for s, t in made.items()) or "reused from --workdir"), flush=True)
    big = folders["large"]
    extract = extraction(big, configs["large"], corpus["large"]["utts"], args.extract_rounds)
    features = {"small": folders["small"] / "features", "large": big / "features-2jobs"}
    small = one_job("data.compute_features", feature_flags(folders["small"], configs["small"]), features["small"],
                    folders["small"])
    print(f"extract small: 1 job {small.seconds:.1f} s ({corpus['small']['utts']} utts)", flush=True)
    peaks = {k: train_peak(folders[k], configs[k], features[k], args.threads) for k in sizes}
    for k, m in peaks.items():
        print(f"train {k}: {args.steps} steps in {m.seconds:.1f} s, peak RSS {m.peaks[0] / MB:.0f} MB"
              f" (largest DataLoader worker {m.worker_peak / MB:.0f} MB, pages shared with the trainer included)", flush=True)
    print(f"reader: {args.block_steps} steps a block, large corpus", flush=True)
    blocks, read_s = reader_speed(big, configs["large"], features["large"], args.block_steps, args.rounds,
                                 args.threads)
    summary(args, corpus, features, peaks, blocks, read_s, extract)


def extraction(folder: Path, configs: dict[str, Path], utts: int, rounds: int) -> dict:
    """One job vs 2 shard jobs + merge, `rounds` times alternating; the stores compared bitwise."""
    outs = (folder / "features-1job", folder / "features-2jobs")
    runs = one_vs_shards("extract", "data.compute_features", feature_flags(folder, configs), outs, folder, 2, rounds)
    return {**runs, "utts": utts, "equal": same_store(*outs)}


def summary(args, corpus, features, peaks, blocks, read_s, extract) -> None:
    """Print the figures and the ratios against the goals."""
    s, g = corpus["small"], corpus["large"]
    ratio = peaks["large"].peaks[0] / peaks["small"].peaks[0]
    print(f"\n== memory: peak RSS of python -m asrsweep.acoustic.train, {args.steps} steps, --threads {args.threads}")
    for k, c in corpus.items():
        print(f"  {c['train_h']:.2f} h ({c['train_utts']} train utts): {peaks[k].peaks[0] / MB:.0f} MB")
    print(f"  ratio {g['train_h']:.1f} h / {s['train_h']:.1f} h = {ratio:.3f} (goal <= 1.25: {goal(ratio <= 1.25)})")
    print("== disk per hour of audio (train + dev + test hours)")
    for k, c in corpus.items():
        print(f"  {k}: feature store {store_bytes(features[k]) / MB / c['hours']:.1f} MB/h, audio (16 kHz int16 WAV"
              f" copies) {c['audio'] / MB / c['hours']:.1f} MB/h, manifests {c['manifests'] / 1e3 / c['hours']:.1f} kB/h")
    sharded, memory = (args.block_steps * len(blocks[k]) / sum(w for w, _ in blocks[k]) for k in ("sharded", "in-memory"))
    cpu_sharded, cpu_memory = (sum(c for _, c in blocks[k]) for k in ("sharded", "in-memory"))
    print(f"== reader: Trainer.run() on {g['train_h']:.1f} h, {args.rounds} rounds x {args.block_steps} steps each"
          f" (list of {g['train_utts']} tensors read in {read_s:.1f} s)")
    print(f"  sharded {sharded:.3f} steps/s, in-memory {memory:.3f} steps/s, ratio {sharded / memory:.3f}"
          f" (goal >= 0.95: {goal(sharded / memory >= 0.95)})")
    print(f"  CPU seconds: sharded {cpu_sharded:.1f}, in-memory {cpu_memory:.1f}: in-memory / sharded"
          f" {cpu_memory / cpu_sharded:.3f}")
    print(f"== extraction of the {g['hours']:.1f} h corpus ({extract['utts']} utts, 1 thread a job; "
          f"best of {args.extract_rounds})")
    print_one_vs_shards(extract, extract["utts"], 2)
    print(f"  stores bitwise equal: {'yes' if extract['equal'] else 'NO'}", flush=True)
    if not extract["equal"]:
        raise SystemExit("the 2-job store differs from the 1-job store")


if __name__ == "__main__":
    main()
