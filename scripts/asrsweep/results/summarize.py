"""python -m asrsweep.results.summarize --runs R/E/runs [RUN_DIR ...] --out R/E/summary.tsv [--baseline RUN] [--resamples 10000] [--seed 0]
   python -m asrsweep.results.summarize --summaries R/A/summary.tsv R/B/summary.tsv --out R/summary.tsv

Concatenate the per-run `result.json` files into one table (icefall's wer-summary, per run and
stage), or concatenate per-experiment summaries. Paths are never parsed: every value comes from
result.json. A --runs argument is a run folder (holding result.json) or a folder of run folders.

Rows: one per run x stage (greedy, ngram_beam, rescored), `aggregate` = run, with the varied
values as columns (dotted keys, e.g. `decode.lm_weight`, `seed`), dev_wer/dev_cer of the
selection, frozen test_wer/test_cer, oracle_dev_wer/oracle_test_wer, settings (JSON of the
chosen knobs), steps, train_seconds, n_params, paths (JSON). Plus, when runs vary `seed`, one
row per stage and setting of the other varied values with `aggregate` = seed_mean: metric
columns hold the mean over seeds, `<metric>_std` the sample standard deviation (empty for one
seed) and `n` the number of seeds.

Statistics (asrsweep.results.stats; README "Comparing runs: intervals and significance"), from
each stage's hyps_{split}.tsv, empty where a stage has none: dev_wer_lo/dev_wer_hi and
test_wer_lo/test_wer_hi, the 95 % bootstrap interval over utterances (a seed mean's: of the mean
over seeds, resampling utterances); on test, p_improve (the share of paired resamples in which
the row beats the same stage of the --baseline run, default the first) and p_vs_baseline (the
paired-bootstrap p-value of "equal WER"), p_improve_prev and p_vs_prev the same against the
previous stage of the row's own run (ngram_beam vs greedy, rescored vs ngram_beam). edge and
edge_hint: the knobs whose dev-selected value sits on the edge of the swept range
(`rescore.length_weight=max`) and the range to extend (asrsweep.results.edges).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from asrsweep.core.common import cli_main
from asrsweep.core.tsv import write_frame
from asrsweep.results.stats import StatsConfig
from asrsweep.results.table import concat_summaries, summarize_runs


def run(argv: list[str] | None = None) -> pd.DataFrame:
    """Build and write the summary; returns the table."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.results.summarize", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", nargs="+", type=Path, help="run folders or folders of run folders")
    source.add_argument("--summaries", nargs="+", type=Path, help="per-experiment summary.tsv files")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--baseline", metavar="RUN", help="run id the paired tests compare with (default: the first)")
    parser.add_argument("--resamples", type=int, help="bootstrap resamples (default: the schema's stats.resamples)")
    parser.add_argument("--seed", type=int, help="seed of the resampling (default: the schema's stats.seed)")
    args = parser.parse_args(argv)
    if args.summaries:
        table = concat_summaries(args.summaries)
    else:
        table, notes = summarize_runs(args.runs, StatsConfig.from_flags(args.resamples, args.seed), args.baseline)
        for note in notes:
            print(f"note: {note}", flush=True)
    write_frame(args.out, table)  # floats at full precision, missing values empty
    print(f"{args.out}: {len(table)} rows", flush=True)
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
