"""Bootstrap statistics of WERs: intervals per run and stage, paired tests between them.

Library module (no CLI), used by `python -m asrsweep.results.summarize --runs R/E/runs --out
R/E/summary.tsv` and by `asrsweep collect`. It reads the per-utterance errors of each stage
(hyps_{split}.tsv: utt_id, ref, hyp, errors, ref_words) and resamples utterances:

- interval (Bisani & Ney 2004, as Kaldi's compute-wer-bootci): B resamples of the utterances
  with replacement; WER*_b = errors / reference words of resample b; the 95 % interval is the
  2.5 and 97.5 percentiles of WER*.
- paired test (Koehn 2004's paired bootstrap resampling; Bisani & Ney's "probability of
  improvement"): both systems are scored on the same resamples. p_improve = the share of
  resamples in which the system's WER is below the other's; the p-value (two-sided, of "equal
  WER") counts how often the difference, centred on its bootstrap mean, is at least as far from
  0 as the observed one (Efron & Tibshirani 1993 §16.4, as sacrebleu's paired bootstrap):
  p = (1 + #{|Δ*_b - mean Δ*| >= |Δ|}) / (B + 1).

Vectorised: the resamples of an utterance set are one [B, utts] matrix of draw counts, so the
errors of every system on that set are one matrix product. The draws depend only on the seed and
the utterance ids (their sorted list), so a table gathered mid-sweep and the final summary give
every run the same interval.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asrsweep.core import tsv
from asrsweep.core.common import UserError
from asrsweep.experiment.validate import load_schema, schema_defaults

LEVEL = 0.95  # the interval's coverage


@dataclass(frozen=True)
class Errors:
    """Per-utterance errors of one system on one split, sorted by utterance id.

    utt_ids: the ids (sorted); errors, ref_words: [utts] integer arrays.
    """

    utt_ids: tuple[str, ...]
    errors: np.ndarray
    ref_words: np.ndarray

    @property
    def wer(self) -> float:
        words = int(self.ref_words.sum())
        return float(self.errors.sum() / words) if words else float("nan")


def read_errors(path: Path) -> Errors:
    """The errors of a hyps_{split}.tsv file."""
    table = tsv.read_columns(path, required=("utt_id", "errors", "ref_words"))
    order = np.argsort(np.array(table["utt_id"], dtype=object), kind="stable")
    ids = tuple(table["utt_id"][i] for i in order)
    return Errors(ids, np.array(table["errors"], dtype=np.int64)[order],
                  np.array(table["ref_words"], dtype=np.int64)[order])


def resampling_rng(utt_ids: tuple[str, ...], seed: int) -> np.random.Generator:
    """The generator of an utterance set's draws: seeded by `seed` and a digest of the ids."""
    digest = int.from_bytes(hashlib.sha1("\n".join(utt_ids).encode()).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


BLOCK = 1000  # resamples drawn at a time: a [BLOCK, utts] count matrix stays in cache-sized memory


def draw_counts(utt_ids: tuple[str, ...], resamples: int, seed: int) -> np.ndarray:
    """[resamples, utts]: how often each utterance is drawn in each resample (all blocks at once)."""
    return np.concatenate(list(count_blocks(utt_ids, resamples, seed)), axis=0)


def count_blocks(utt_ids: tuple[str, ...], resamples: int, seed: int):
    """[<=BLOCK, utts] int64 count matrices, resample after resample.

    Resample b draws len(utt_ids) utterances with replacement: together the blocks are the rows
    of one integers(0, n, size=(resamples, n)) call of resampling_rng(utt_ids, seed).
    """
    rng, n = resampling_rng(utt_ids, seed), len(utt_ids)
    for first in range(0, resamples, BLOCK):
        rows = min(BLOCK, resamples - first)
        draws = rng.integers(0, n, size=(rows, n))
        draws += np.arange(rows)[:, None] * n  # one bin per (resample, utterance)
        yield np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)


def resampled_wers(systems: list[Errors], resamples: int, seed: int) -> np.ndarray:
    """[systems, resamples] WER* of every system; systems on one utterance set share the draws."""
    out = np.empty((len(systems), resamples))
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, system in enumerate(systems):
        groups.setdefault(system.utt_ids, []).append(i)
    for utt_ids, members in groups.items():
        errors = np.stack([systems[i].errors for i in members], axis=1)  # [utts, members]
        # Systems of one split mostly share their reference words: one product per distinct column.
        words, which = np.unique(np.stack([systems[i].ref_words for i in members], axis=0), axis=0,
                                 return_inverse=True)
        # float32 products are exact while every sum stays below 2**24 (a resample's sum is at
        # most utts x the largest count): twice the speed of float64.
        exact32 = len(utt_ids) * max(int(errors.max(initial=0)), int(words.max(initial=0))) < 2 ** 24
        dtype = np.float32 if exact32 else np.float64
        errors, words = errors.astype(dtype), words.T.astype(dtype)
        first = 0
        for counts in count_blocks(utt_ids, resamples, seed):
            counts = counts.astype(dtype)
            rows = slice(first, first + len(counts))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[members, rows] = ((counts @ errors).T.astype(np.float64)
                                      / (counts @ words).T.astype(np.float64)[which.ravel()])
            first += len(counts)
    return out


def intervals(wers: np.ndarray) -> np.ndarray:
    """[2, systems] percentile interval (LEVEL) of [systems, resamples] WER*."""
    tail = 100 * (1 - LEVEL) / 2
    if not wers.size:
        return np.empty((2, 0))
    return np.percentile(wers, [tail, 100 - tail], axis=1)


def paired(wers: np.ndarray, observed: np.ndarray, system: np.ndarray, other: np.ndarray) -> tuple:
    """(p_improve, p_value) arrays: does `system` beat `other` (row indices of `wers`)?

    observed: [systems] WER of each system on all utterances (the difference tested is
    observed[system] - observed[other]).
    """
    delta = wers[system] - wers[other]  # [pairs, resamples]
    p_improve = (delta < 0).mean(axis=1)
    shifted = np.abs(delta - delta.mean(axis=1, keepdims=True))
    far = (shifted >= np.abs(observed[system] - observed[other])[:, None] - 1e-12).sum(axis=1)
    return p_improve, (1 + far) / (1 + wers.shape[1])


SPLITS = ("dev", "test")
# The stage each result stage is compared with in the same run (does rescoring really help?).
PREVIOUS = {"ngram_beam": "greedy", "rescored": "ngram_beam"}
COLUMNS = ["dev_wer_lo", "dev_wer_hi", "test_wer_lo", "test_wer_hi", "baseline", "p_improve", "p_vs_baseline",
           "p_improve_prev", "p_vs_prev"]


@dataclass(frozen=True)
class StatsConfig:
    """Section `stats` of the recipe (descriptions and defaults: workflow/schemas/recipe.schema.yaml)."""

    resamples: int
    seed: int

    @classmethod
    def from_flags(cls, resamples: int | None = None, seed: int | None = None) -> "StatsConfig":
        """The given values, the schema's defaults for those left out (None)."""
        defaults = schema_defaults(load_schema("recipe"))["stats"]
        if resamples is not None and resamples < 1:
            raise UserError(f"--resamples {resamples}: give at least 1 (the schema's default is {defaults['resamples']})")
        return cls(defaults["resamples"] if resamples is None else resamples,
                   defaults["seed"] if seed is None else seed)


@dataclass
class Bootstrap:
    """The resampled WERs of every run row x split that has a hyps file.

    wers: [systems, resamples]; column: (row label, split) -> its row of `wers`; observed: [systems].
    """

    wers: np.ndarray
    observed: np.ndarray
    column: dict[tuple, int]

    def mean_interval(self, rows: list, split: str) -> tuple[float, float]:
        """Interval of the mean WER over `rows` (seeds): the mean of their WER* per resample."""
        columns = [self.column.get((row, split)) for row in rows]
        if not columns or None in columns:
            return float("nan"), float("nan")
        lo, hi = intervals(self.wers[columns].mean(axis=0, keepdims=True))[:, 0]
        return float(lo), float(hi)


def bootstrap_rows(runs, hyps_of, config: StatsConfig, cache: dict | None = None) -> tuple:
    """Resample every (row, split) whose hyps_of(row, split) names a file.

    Returns the Bootstrap, notes (a file whose WER is not the result's) and the systems; cache:
    path -> Errors already read (filled as files are read; stage folders shared by runs are read once).

    runs: the run rows (a DataFrame with `run`, `stage` and `<split>_wer`); hyps_of(label, split)
    -> Path or None.
    """
    systems, column, notes = [], {}, []
    cache = {} if cache is None else cache
    for label, row in runs.iterrows():
        for split in SPLITS:
            path = hyps_of(label, split)
            if path is None:
                continue
            if path not in cache:
                cache[path] = read_errors(path)
            column[(label, split)] = len(systems)
            systems.append(cache[path])
            wer = row.get(f"{split}_wer")
            if wer is not None and wer == wer and abs(systems[-1].wer - float(wer)) > 1e-9:
                notes.append(f"{row['run']} {row['stage']}: {path.name} gives {split} WER "
                             f"{systems[-1].wer:.6f}, the result {float(wer):.6f}; its interval is of the file's")
    wers = resampled_wers(systems, config.resamples, config.seed)
    observed = np.array([s.wer for s in systems])
    return Bootstrap(wers, observed, column), notes, systems


def with_statistics(runs, hyps_of, config: StatsConfig, baseline: str | None, cache: dict | None = None) -> tuple:
    """(runs with the COLUMNS filled where hyps files exist, notes, Bootstrap).

    Intervals for dev and test; the paired tests on test (the frozen, reported result): each row
    against the baseline run's same stage and against the previous stage of its own run.
    baseline: a run id (None: the first row's run).
    """
    runs = runs.copy()
    boot, notes, systems = bootstrap_rows(runs, hyps_of, config, cache)
    for name in COLUMNS:
        runs[name] = np.nan
    runs["baseline"] = ""
    ranges = intervals(boot.wers)
    for split in SPLITS:
        found = [(label, col) for (label, where), col in boot.column.items() if where == split]
        if found:
            labels, cols = zip(*found)
            runs.loc[list(labels), f"{split}_wer_lo"] = ranges[0, list(cols)]
            runs.loc[list(labels), f"{split}_wer_hi"] = ranges[1, list(cols)]
    if runs.empty:
        return runs, notes, boot
    baseline = baseline or runs["run"].iloc[0]
    if baseline not in set(runs["run"]):
        notes.append(f"baseline {baseline}: no result (yet); p_vs_baseline is left empty")
    runs["baseline"] = baseline
    return runs, notes + _paired_tests(runs, boot, systems, baseline), boot


def _paired_tests(runs, boot: Bootstrap, systems: list[Errors], baseline: str) -> list[str]:
    """Fill p_improve/p_vs_baseline and p_improve_prev/p_vs_prev of `runs` in place; the notes."""
    where = {(row["run"], row["stage"]): label for label, row in runs.iterrows()}
    against = {
        ("p_improve", "p_vs_baseline"): {label: where.get((baseline, row["stage"])) for label, row in runs.iterrows()
                                         if row["run"] != baseline},
        ("p_improve_prev", "p_vs_prev"): {label: where.get((row["run"], PREVIOUS.get(row["stage"])))
                                          for label, row in runs.iterrows()}}
    unpaired = []
    for (improve, p_column), other_of in against.items():
        labels, pairs = [], []
        for label, other in other_of.items():
            a, b = boot.column.get((label, "test")), boot.column.get((other, "test"))
            if a is None or b is None:
                continue
            if systems[a].utt_ids != systems[b].utt_ids:
                unpaired.append(f"{runs.loc[label, 'run']} {runs.loc[label, 'stage']}")
                continue
            labels.append(label)
            pairs.append((a, b))
        if pairs:
            mine, theirs = (np.array(side) for side in zip(*pairs))
            runs.loc[labels, improve], runs.loc[labels, p_column] = paired(boot.wers, boot.observed, mine, theirs)
    if not unpaired:
        return []
    return [f"not compared (their test utterances differ from the other system's, so they cannot be "
            f"paired): {', '.join(unpaired)}"]


def summary_flags(experiment) -> str:
    """summarize's --baseline, --resamples and --seed for an expanded experiment (sweep.Experiment).

    `stats` may not be varied (experiment.validate), so every run holds the same values.
    """
    config = experiment.runs[0].config["stats"]
    return (f"--baseline {shlex.quote(experiment.baseline)} --resamples {int(config['resamples'])} "
            f"--seed {int(config['seed'])}")
