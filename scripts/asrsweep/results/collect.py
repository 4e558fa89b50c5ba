"""python -m asrsweep.results.collect E.yaml [--results results]   (`asrsweep collect E.yaml`)
   python -m asrsweep.results.collect --summary R/E/summary.tsv

Print the results of an experiment as aligned terminal tables: per run, the frozen test WER of
greedy, n-gram beam and rescored decoding (each selected on dev), then the chosen settings per
run (like wav2letter's collect), then the seed means when there are several seeds, and the best
run by rescored dev WER (selection on dev, never on test).

With an experiment file, its summary.tsv under --results (the `results=` the workflow ran with)
is read when it covers every run; mid-sweep (or when some runs failed) the table is gathered
from the runs whose results are on disk, and the first line says how many of how many that is.
Nothing is written either way.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from asrsweep.core import tsv
from asrsweep.core.common import UserError, cli_main
from asrsweep.core.stages import RESULT_STAGES
from asrsweep.experiment.workflow import SweepIndex
from asrsweep.results.gather import result_of
from asrsweep.results.stats import StatsConfig
from asrsweep.results.table import summarize_results


def number(value) -> float | None:
    """A summary cell as a number, None when it is empty, not a number or NaN."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if result != result else result


def fmt(value) -> str:
    """A WER as a percentage with two decimals, or '-' when missing."""
    return "-" if number(value) is None else f"{100 * number(value):.2f}"


def with_interval(row: pd.Series, split: str) -> str:
    """'4.10 [3.20, 5.00]': a WER and its 95 % interval in percent (the WER alone without one)."""
    text, lo, hi = fmt(row.get(f"{split}_wer")), fmt(row.get(f"{split}_wer_lo")), fmt(row.get(f"{split}_wer_hi"))
    return text if "-" in (lo, hi) else f"{text} [{lo}, {hi}]"


def wide(rows: pd.DataFrame, index: list[str]) -> pd.DataFrame:
    """One line per run: <stage> test WER columns (percent, with intervals), plus rescored dev WER."""
    cells = rows.assign(_test=rows.apply(with_interval, axis=1, split="test"),
                        _dev=rows.apply(with_interval, axis=1, split="dev"))
    table = cells.pivot_table(index=index, columns="stage", values="_test", aggfunc="first", sort=False)
    out = pd.DataFrame(index=table.index)
    for stage in RESULT_STAGES:
        out[f"{stage} test"] = table[stage].fillna("-") if stage in table else "-"
    dev = cells[cells["stage"] == "rescored"].set_index(index)["_dev"]
    out["rescored dev"] = dev.reindex(out.index).fillna("-") if not dev.empty else "-"
    for split in ("dev", "test"):  # OOV % against the lexicon: one value per run, on every stage row
        oov = rows.groupby(index, sort=False, dropna=False)[f"oov_{split}"].first() if f"oov_{split}" in rows else None
        out[f"oov {split}"] = oov.reindex(out.index).map(fmt) if oov is not None else "-"
    return out.reset_index()


def probability(value) -> str:
    """A probability with three decimals, or '' when missing."""
    return "" if number(value) is None else f"{number(value):.3f}"


def significance_lines(runs: pd.DataFrame) -> list[str]:
    """The paired tests on test: each run x stage vs the baseline's stage and vs its previous stage."""
    if "p_vs_baseline" not in runs:
        return []
    shown = runs["p_vs_baseline"].map(probability) + runs["p_vs_prev"].map(probability)
    if not shown.any():
        return []
    table = pd.DataFrame({"run": runs["run"], "stage": runs["stage"],
                          "P(better than baseline)": runs["p_improve"].map(probability),
                          "p": runs["p_vs_baseline"].map(probability),
                          "P(better than previous stage)": runs["p_improve_prev"].map(probability),
                          "p ": runs["p_vs_prev"].map(probability)})
    baseline = runs["baseline"].iloc[0]
    lines = ["", f"significance on test (paired bootstrap over utterances; baseline: {baseline})",
             table.to_string(index=False)]
    # A row with an interval but no test against the baseline could not be paired with it.
    unpaired = runs[(runs["run"] != baseline) & (runs["test_wer_lo"].map(probability) != "")
                    & (runs["p_vs_baseline"].map(probability) == "")]
    if not unpaired.empty:
        lines.append("not compared with the baseline (other test utterances, or no baseline result): "
                     + ", ".join(f"{row['run']} {row['stage']}" for _, row in unpaired.iterrows()))
    return lines


def edge_lines(runs: pd.DataFrame) -> list[str]:
    """'run stage: knob=side: hint' for each dev-selected setting on the edge of its swept range."""
    if "edge" not in runs:
        return []
    found = runs[runs["edge"].fillna("") != ""]
    if found.empty:
        return []
    return (["", "on the edge of the swept range (dev WER still falling there; extend the range):"]
            + [f"  {row['run']:<12} {row['stage']:<11} {row['edge']}: {row['edge_hint']}" for _, row in found.iterrows()])


def settings_lines(runs: pd.DataFrame) -> list[str]:
    """'run stage: key=value ...' lines for the settings chosen on dev."""
    lines = []
    for _, row in runs[runs["stage"] != "greedy"].iterrows():
        try:
            settings = json.loads(row["settings"]) if row["settings"] else {}
        except json.JSONDecodeError:
            settings = {}
        knobs = " ".join(f"{k}={v}" for k, v in sorted(settings.items()))
        lines.append(f"  {row['run']:<12} {row['stage']:<11} {knobs}")
    return lines


def report(table: pd.DataFrame, varied: list[str]) -> str:
    """The whole terminal report as one string."""
    runs = table[table["aggregate"] == "run"]
    if runs.empty:
        raise UserError("summary has no run rows; has the workflow finished any run?")
    parts = ["WER % (test, settings selected on dev) [95 % bootstrap interval]",
             wide(runs, ["run"] + varied).to_string(index=False), "",
             "chosen settings per run"] + settings_lines(runs) + edge_lines(runs) + significance_lines(runs)
    means = table[table["aggregate"] == "seed_mean"]
    if not means.empty:
        keys = [v for v in varied if v != "seed"] + ["n"]
        parts += ["", "mean over seeds", wide(means.assign(run="mean"), keys).to_string(index=False)]
    rescored = runs[runs["stage"] == "rescored"].copy()
    if not rescored.empty:
        rescored["_dev"] = pd.to_numeric(rescored["dev_wer"], errors="coerce")
        best = rescored.sort_values("_dev", kind="stable").iloc[0]
        parts += ["", f"best run by rescored dev WER: {best['run']} (dev {fmt(best['dev_wer'])}, "
                      f"test {fmt(best['test_wer'])}) settings {best['settings']}"]
    return "\n".join(parts)


def read_summary(path: Path) -> pd.DataFrame:
    """A summary.tsv (the project's TSV format) as text columns, empty where a value is missing."""
    return tsv.read_frame(path)


def gather_finished(index: SweepIndex, name: str) -> tuple[pd.DataFrame, str]:
    """(summary table of the runs whose results are on disk, a line saying how many)."""
    experiment = index.experiments[name]
    runs = experiment.runs
    results = [(result_of(name, run.run_id, run.values, index.stages(name, run.run_id)),
                index.run_dirs()[(name, run.run_id)]) for run in runs if index.run_finished(name, run.run_id)]
    if not results:
        folder = index.results / name
        if not folder.is_dir():
            raise UserError(f"{name}: nothing in {folder} (no such folder); if the workflow ran with "
                            f"--config results=DIR, pass --results DIR")
        raise UserError(f"{name}: no run has finished yet in {folder}; `asrsweep status` shows where "
                        f"each stands (results elsewhere? pass --results DIR)")
    # As text, like a summary.tsv read back: the report formats every column the same way.
    config = StatsConfig.from_flags(**runs[0].config["stats"])
    table, notes = summarize_results(results, config, experiment.baseline)
    text = tsv.tsv_text(*tsv.frame_rows(table))
    note = "\n".join([f"partial: {len(results)} of {len(runs)} runs finished (summary.tsv is written when "
                      f"all have; `asrsweep status` shows the others)"] + [f"note: {n}" for n in notes])
    columns, rows = tsv.parse_tsv(text, "summary")
    return pd.DataFrame([dict(zip(columns, row)) for row in rows], columns=columns, dtype=str), note


def experiment_table(experiment: str, results: str) -> tuple[pd.DataFrame, str | None]:
    """The experiment's summary.tsv when it covers every run, else the finished runs gathered."""
    index = SweepIndex(experiment, results)
    [name] = index.experiments
    summary = Path(results) / name / "summary.tsv"
    if summary.exists():
        table = read_summary(summary)
        wanted = {run.run_id for run in index.experiments[name].runs}
        if set(table.loc[table["aggregate"] == "run", "run"]) == wanted:
            return table, None
    return gather_finished(index, name)


def run(argv: list[str] | None = None) -> str:
    """Read the summary (or the finished runs) and print the report."""
    parser = argparse.ArgumentParser(
        prog="asrsweep collect", description=run.__doc__,
        usage="%(prog)s E.yaml [--results DIR]\n       %(prog)s --summary DIR/E/summary.tsv")
    parser.add_argument("experiment", nargs="?", metavar="E.yaml", help="an experiment file")
    parser.add_argument("--summary", type=Path, help="an experiment's summary.tsv (instead of an experiment file)")
    parser.add_argument("--results", default="results", metavar="DIR",
                        help="the results root the workflow wrote to (its `results=`; default: results)")
    args = parser.parse_args(argv)
    if (args.experiment is None) == (args.summary is None):
        parser.error("give an experiment file or --summary (one of them)")
    note = None
    if args.experiment:
        table, note = experiment_table(args.experiment, args.results)
    elif args.summary.exists():
        table = read_summary(args.summary)
    else:
        raise UserError(f"{args.summary}: file not found; run the workflow (it writes the summary last)")
    fixed = {"experiment", "run", "aggregate", "stage", "settings", "paths", "n"}
    first_metric = list(table.columns).index("dev_wer") if "dev_wer" in table.columns else len(table.columns)
    varied = [c for c in table.columns[:first_metric] if c not in fixed]
    text = "\n".join([note, report(table, varied)] if note else [report(table, varied)])
    print(text, flush=True)
    return text


def main(argv: list[str] | None = None) -> str:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
