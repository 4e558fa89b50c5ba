"""python -m asrsweep.results.summarize --runs R/E/runs [RUN_DIR ...] --out R/E/summary.tsv
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
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from asrsweep.core.common import cli_main
from asrsweep.core.tsv import write_frame
from asrsweep.results.table import concat_summaries, summarize_runs


def run(argv: list[str] | None = None) -> pd.DataFrame:
    """Build and write the summary; returns the table."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.results.summarize", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", nargs="+", type=Path, help="run folders or folders of run folders")
    source.add_argument("--summaries", nargs="+", type=Path, help="per-experiment summary.tsv files")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    table = summarize_runs(args.runs) if args.runs else concat_summaries(args.summaries)
    write_frame(args.out, table)  # floats at full precision, missing values empty
    print(f"{args.out}: {len(table)} rows", flush=True)
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
