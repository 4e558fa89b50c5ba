"""python bench/stats.py [--runs 100] [--utts 1000] [--resamples 10000] [--seed 0]

Time the summary's statistics (asrsweep.results.stats.with_statistics: 95 % bootstrap interval
of every dev and test WER, paired tests of every run x stage against the baseline and against
its previous stage) on synthetic hyps_{split}.tsv files: R runs x 3 stages (greedy, ngram_beam,
rescored) x 2 splits, U utterances each, B resamples. Prints the wall and CPU time for --runs
runs and for 1 run (scaling), and apart from it the time to read the files (core.tsv). The goal
is absolute: statistics < 2 s for 100 runs x 1,000 utterances x 10,000 resamples.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from asrsweep.core import tsv
from asrsweep.results import stats

STAGES = ("greedy", "ngram_beam", "rescored")


def write_runs(root: Path, runs: int, utts: int, rng: np.random.Generator) -> pd.DataFrame:
    """The run rows of a summary and their hyps files (errors falling stage by stage)."""
    words = {split: rng.integers(3, 20, size=utts) for split in stats.SPLITS}
    rows = []
    for run in range(runs):
        for depth, stage in enumerate(STAGES):
            row = {"run": f"r{run}", "stage": stage, "_files": {}}
            for split in stats.SPLITS:
                errors = rng.binomial(words[split], 0.25 / (1 + 2 * depth) + 0.002 * (run % 7))
                path = root / f"{run}_{stage}_{split}.tsv"
                tsv.write_tsv(path, ["utt_id", "ref", "hyp", "errors", "ref_words"],
                              [{"utt_id": f"{split}-{i:05d}", "ref": "r", "hyp": "h", "errors": e, "ref_words": w}
                               for i, (e, w) in enumerate(zip(errors, words[split]))])
                row["_files"][split] = path
                row[f"{split}_wer"] = errors.sum() / words[split].sum()
            rows.append(row)
    return pd.DataFrame(rows)


def timed(runs: pd.DataFrame, config: stats.StatsConfig) -> dict[str, tuple[float, float]]:
    """{"read": (wall s, CPU s) reading the hyps files, "stats": the same for the statistics}."""
    hyps_of = lambda label, split: runs.at[label, "_files"][split]  # noqa: E731 (as table._hyps_of)
    clocks = [(time.perf_counter(), time.process_time())]
    cache = {path: stats.read_errors(path) for files in runs["_files"] for path in files.values()}
    clocks.append((time.perf_counter(), time.process_time()))
    out, notes, _ = stats.with_statistics(runs, hyps_of, config, None, cache)
    clocks.append((time.perf_counter(), time.process_time()))
    assert not notes and out["test_wer_lo"].notna().all() and out["p_vs_baseline"].notna().sum() == len(out) - 3
    assert ((out["test_wer_lo"] <= out["test_wer"]) & (out["test_wer"] <= out["test_wer_hi"])).all()
    spans = [tuple(b - a for a, b in zip(start, end)) for start, end in zip(clocks, clocks[1:])]
    return {"read": spans[0], "stats": spans[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--utts", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = stats.StatsConfig(args.resamples, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        runs = write_runs(Path(folder), args.runs, args.utts, np.random.default_rng(args.seed))
        timed(runs[:3], config)  # warm-up (imports, BLAS threads)
        for count in (1, args.runs):
            spent = timed(runs[: 3 * count].copy(), config)
            print(f"{count:>4} runs x 3 stages x 2 splits, {args.utts} utterances, {args.resamples} resamples: "
                  f"statistics {spent['stats'][0]:.2f} s wall ({spent['stats'][1]:.2f} s CPU); reading the "
                  f"{6 * count} hyps files {spent['read'][0]:.2f} s wall ({spent['read'][1]:.2f} s CPU)", flush=True)
    if (args.runs, args.utts, args.resamples) == (100, 1000, 10000):
        print(f"goal: statistics < 2 s for 100 runs x 1,000 utterances x 10,000 resamples: "
              f"{'met' if spent['stats'][0] < 2 else 'NOT met'}", flush=True)

if __name__ == "__main__":
    main()
