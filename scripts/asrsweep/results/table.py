"""The summary table: one row per run x result stage, plus seed aggregates (see summarize).

Library module (no CLI), used by `python -m asrsweep.results.summarize` and `asrsweep collect`.
Intervals and paired tests come from `results.stats`, grid-edge warnings from `results.edges`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from asrsweep.core import tsv
from asrsweep.core.common import UserError, read_json
from asrsweep.results import stats
from asrsweep.results.edges import table_edges
from asrsweep.results.gather import hyps_path

METRICS = ["dev_wer", "dev_cer", "test_wer", "test_cer", "oracle_dev_wer", "oracle_test_wer",
           "oov_dev", "oov_test", "steps", "train_seconds", "n_params"]
FIXED = ["experiment", "run", "aggregate", "stage"]
# Where the dev-selected setting of a stage sits on the edge of its swept range (see edges).
EDGE_COLUMNS = ["edge", "edge_hint"]


def find_results(paths: list[Path]) -> list[Path]:
    """result.json files: each path is a run folder or a folder of run folders (sorted)."""
    found = []
    for path in paths:
        if (path / "result.json").exists():
            found.append(path / "result.json")
        elif path.is_dir():
            found.extend(sorted(path.glob("*/result.json")))
        else:
            raise UserError(f"{path}: neither a run folder with result.json nor a folder of runs")
    if not found:
        raise UserError(f"{', '.join(map(str, paths))}: no result.json found; has the workflow run?")
    return found


def _get(data: dict | None, *keys, default=None):
    """Nested lookup that tolerates missing levels."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def greedy_row(result: dict) -> dict:
    """Greedy stage: result['greedy'] {dev_wer, dev_cer, test_wer, test_cer}, else beam.test.greedy."""
    g = result.get("greedy") or {}
    test_greedy = _get(result, "beam", "test", "greedy", default={}) or {}
    return {"dev_wer": g.get("dev_wer"), "dev_cer": g.get("dev_cer"),
            "test_wer": g.get("test_wer", test_greedy.get("wer")),
            "test_cer": g.get("test_cer", test_greedy.get("cer")), "settings": {"decoder": "greedy"}}


def selected_row(stage: dict | None) -> dict:
    """Beam or rescore stage: {"best_on_dev": best_on_dev.json, "test": test.json}."""
    best, test = _get(stage, "best_on_dev", default={}) or {}, _get(stage, "test", default={}) or {}
    return {"dev_wer": best.get("dev_wer"), "dev_cer": best.get("dev_cer"), "test_wer": test.get("wer"),
            "test_cer": test.get("cer"), "oracle_dev_wer": best.get("oracle_wer"),
            "oracle_test_wer": test.get("oracle_wer"), "settings": best.get("setting", test.get("setting"))}


def run_rows(result: dict, where: Path) -> list[dict]:
    """The stage rows of one run's result.json."""
    for key in ("experiment", "run", "values"):
        if key not in result:
            raise UserError(f"{where}: missing key '{key}'")
    train = result.get("train") or {}
    common = {"experiment": result["experiment"], "run": result["run"], "aggregate": "run",
              **result["values"], "steps": train.get("steps"), "train_seconds": train.get("train_seconds"),
              "n_params": train.get("n_params"),
              # OOV: share of dev/test reference words not in the lexicon (decode_frozen's test.json).
              **{f"oov_{split}": _get(result, "beam", "test", "oov", split, "rate") for split in ("dev", "test")},
              "paths": json.dumps(result.get("paths", {}), sort_keys=True)}
    stages = {"greedy": greedy_row(result) if ("greedy" in result or "beam" in result) else None,
              "ngram_beam": selected_row(result["beam"]) if result.get("beam") else None,
              "rescored": selected_row(result["rescore"]) if result.get("rescore") else None}
    paths = result.get("paths", {})
    edges = {"ngram_beam": table_edges(paths.get("sweep"), _get(result, "beam", "best_on_dev"), "decode"),
             "rescored": table_edges(paths.get("grid"), _get(result, "rescore", "best_on_dev"), "rescore")}
    rows = []
    for stage, values in stages.items():
        if values is not None:
            settings = json.dumps(values.pop("settings") or {}, sort_keys=True)
            found = edges.get(stage, [])
            rows.append({**common, "stage": stage, **values, "settings": settings, "n": 1,
                         "edge": "; ".join(e.label for e in found), "edge_hint": "; ".join(e.hint for e in found)})
    return rows


def aggregate_seeds(runs: pd.DataFrame, varied: list[str], boot: stats.Bootstrap) -> pd.DataFrame:
    """seed_mean rows: mean, sample std and n over seeds per stage x other varied values.

    The interval of a seed mean resamples utterances: each resample's WER is the mean over the
    seeds of their WER on that resample (the seeds share the draws), so it is the test-set
    uncertainty of the mean; `<metric>_std` is the spread over seeds.
    """
    keys = ["experiment", "stage"] + [v for v in varied if v != "seed"]
    rows = []
    for group_key, group in runs.groupby(keys, dropna=False, sort=False):
        row = dict(zip(keys, group_key if isinstance(group_key, tuple) else (group_key,)))
        row.update(run="", aggregate="seed_mean", n=len(group), seed="")
        row["settings"] = group["settings"].iloc[0] if group["settings"].nunique() == 1 else ""
        for metric in METRICS:
            values = pd.to_numeric(group[metric], errors="coerce")
            row[metric] = values.mean()
            row[f"{metric}_std"] = values.std(ddof=1) if values.notna().sum() > 1 else None
        for split in stats.SPLITS:
            row[f"{split}_wer_lo"], row[f"{split}_wer_hi"] = boot.mean_interval(list(group.index), split)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_runs(paths: list[Path], config: stats.StatsConfig, baseline: str | None) -> tuple[pd.DataFrame, list[str]]:
    """(The summary table (run rows, then seed_mean rows) of the runs under `paths`, notes)."""
    return summarize_results([(read_json(path), path) for path in find_results(paths)], config, baseline)


def summarize_results(results: list[tuple[dict, Path]], config: stats.StatsConfig,
                      baseline: str | None) -> tuple[pd.DataFrame, list[str]]:
    """(The summary table of (result.json content, where it comes from) pairs, notes).

    baseline: the run every row is tested against (None: the first result's run).
    """
    rows, varied = [], []
    for result, where in results:
        rows.extend(run_rows(result, where))
        varied.extend(k for k in result["values"] if k not in varied)
    runs = pd.DataFrame(rows)
    for metric in METRICS:
        runs[metric] = pd.to_numeric(runs.get(metric), errors="coerce")
    runs, notes, boot = stats.with_statistics(runs, _hyps_of(runs), config, baseline)
    parts = [runs]
    if "seed" in varied:
        parts.append(aggregate_seeds(runs.astype({v: str for v in varied if v != "seed"}), varied, boot))
    table = pd.concat(parts, ignore_index=True)
    ordered = (FIXED + varied + [m for m in METRICS] + stats.COLUMNS + [f"{m}_std" for m in METRICS]
               + EDGE_COLUMNS + ["n", "settings", "paths"])
    return table.reindex(columns=[c for c in ordered if c in table.columns]), notes


def _hyps_of(runs: pd.DataFrame):
    """(row label, split) -> the row's hyps file or None (from the stage folders in `paths`)."""
    paths = {label: json.loads(text) for label, text in runs["paths"].items()}
    return lambda label, split: hyps_path(paths[label], runs.at[label, "stage"], split)


def concat_summaries(paths: list[Path]) -> pd.DataFrame:
    """Per-experiment summaries stacked (union of columns, experiment order kept)."""
    frames = []
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: file not found")
        frames.append(tsv.read_frame(path))
    return pd.concat(frames, ignore_index=True).fillna("")
