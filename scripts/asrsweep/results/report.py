"""python -m asrsweep.results.report --summary R/E/summary.tsv --runs R/E/runs --outdir R/E/report

One self-contained HTML page for one experiment, `summary.html` (inline CSS, every image a
data: URI, links relative to the report folder), and its figures as PNG files:
  wer_intervals.png          dev and test WER % per stage across runs (95 % intervals when the
                             summary has test_wer_lo/hi, dev_wer_lo/hi)
  training_curves.png        acoustic train_loss, dev_loss, dev_cer and LM train_loss, dev_loss
                             vs step (result.json paths.train_log, paths.lm_log)
  sweep_<run>.png            dev WER over lm_weight x word_score (min over other knobs), from
                             paths.sweep (beam rows), the dev-chosen setting outlined
  rescore_<run>.png          dev WER over lm_weight x ngram_weight (min over length_weight), from
                             paths.grid, the chosen weights outlined
The page: the comparison table (runs x stages, best per column marked, significance and grid-
edge warnings when the summary has them), the figures, the ten worst test utterances of the best
run (lowest dev WER of its last stage) aligned word by word, and each run's settings and files.
Runs sharing an upstream file (same path) get one plot, named after the first run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from asrsweep.core import tsv
from asrsweep.core.common import UserError, cli_main, read_json, record_command, write_text_atomic
from asrsweep.results import plots
from asrsweep.results import report_html as rh

STAGES = ["greedy", "ngram_beam", "rescored"]


def read_numeric(path) -> pd.DataFrame:
    """A table of the project's TSV format with its numeric columns as numbers."""
    frame = tsv.read_frame(path)
    for column in frame.columns:
        converted = pd.to_numeric(frame[column], errors="coerce")
        if converted.notna().sum() == (frame[column] != "").sum():
            frame[column] = converted
    return frame


def load_runs(runs_dir: Path) -> list[dict]:
    """result.json of every run under `runs_dir` (sorted by run folder)."""
    results = [read_json(p) for p in sorted(runs_dir.glob("*/result.json"))]
    if not results:
        raise UserError(f"{runs_dir}: no */result.json; has the workflow run?")
    return results


def unique_paths(results: list[dict], key: str) -> list[tuple[dict, Path]]:
    """(first run's result, path) for each distinct existing paths[key] across runs."""
    seen, out = set(), []
    for result in results:
        path = (result.get("paths") or {}).get(key)
        if path and path not in seen and Path(path).exists():
            seen.add(path)
            out.append((result, Path(path)))
    return out


def dev_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows scored on all of dev (a halving search also scores settings on shares of it)."""
    if "split" in table.columns:
        table = table[table["split"] == "dev"]
    return table[table["dev_share"] == 1.0] if "dev_share" in table.columns else table


def edge_of(summary: pd.DataFrame, run: str, stage: str) -> str:
    """The summary's `edge` entry of one run x stage ('' when none or no such column)."""
    if "edge" not in summary.columns:
        return ""
    rows = summary[(summary["run"] == run) & (summary["stage"] == stage) & (summary["aggregate"] == "run")]
    values = [str(v) for v in rows["edge"] if not rh.missing(v)]
    return values[0] if values else ""


def swept(chosen: dict | None, table: pd.DataFrame) -> str:
    """The chosen values of the knobs that `table` varies ('lm_weight=0.5, word_score=1')."""
    return rh.settings_text({k: v for k, v in (chosen or {}).items() if k in table.columns and table[k].nunique() > 1})


def surface_plots(results: list[dict], summary: pd.DataFrame, outdir: Path) -> list[tuple[Path, str]]:
    """sweep_<run>.png (beam rows of sweep.tsv) and rescore_<run>.png (grid.tsv), chosen point outlined."""
    made = []
    for result, path in unique_paths(results, "sweep"):
        sweep = dev_rows(read_numeric(path))
        if "decoder" in sweep.columns:
            sweep = sweep[sweep["decoder"] != "greedy"]
        sweep = sweep.dropna(subset=["lm_weight", "word_score"])
        if not sweep.empty:
            run, edge = result["run"], edge_of(summary, result["run"], "ngram_beam")
            chosen = ((result.get("beam") or {}).get("best_on_dev") or {}).get("setting")
            fig = plots.heatmap(sweep, "lm_weight", "word_score", f"{run}: decoder sweep (dev)", chosen, edge)
            made.append((plots.save_png(fig, outdir / f"sweep_{run}.png"),
                         f"decoder sweep of {run}: dev WER %; red box: chosen on dev ({swept(chosen, sweep)})"))
    for result, path in unique_paths(results, "grid"):
        run, edge = result["run"], edge_of(summary, result["run"], "rescored")
        chosen = ((result.get("rescore") or {}).get("best_on_dev") or {}).get("setting")
        title = f"{run}: rescoring (dev, min over length_weight)"
        grid = dev_rows(read_numeric(path))
        fig = plots.heatmap(grid, "lm_weight", "ngram_weight", title, chosen, edge)
        made.append((plots.save_png(fig, outdir / f"rescore_{run}.png"),
                     f"rescoring grid of {run}: dev WER %; red box: chosen on dev ({swept(chosen, grid)})"))
    return made


def best_run(summary: pd.DataFrame, stages: list[str]) -> tuple[str, str] | None:
    """(run, last stage) of the run whose last stage has the lowest dev WER."""
    runs = summary[(summary["aggregate"] == "run") & summary["dev_wer"].notna()]
    if runs.empty:
        return None
    last = runs.assign(order=runs["stage"].map({s: i for i, s in enumerate(stages)}))
    last = last.sort_values("order").groupby("run", sort=False).tail(1)
    row = last.sort_values(["dev_wer", "run"]).iloc[0]
    return str(row["run"]), str(row["stage"])


def worst_section(results: list[dict], summary: pd.DataFrame, stages: list[str]) -> str:
    """The ten worst test utterances of the best run (rescored hyps, else the beam's)."""
    chosen = best_run(summary, stages)
    result = next((r for r in results if chosen and r["run"] == chosen[0]), None)
    if result is None:
        return ""
    paths = result.get("paths") or {}
    for key, name, label in (("rescore", "hyps_test.tsv", "rescored"), ("nbest", "hyps_test.tsv", "n-gram beam"),
                             ("nbest", "hyps_greedy_test.tsv", "greedy")):
        hyps = Path(paths[key]) / name if paths.get(key) else None
        if hyps is not None and hyps.exists():
            note = (f"<p class='note'>Best run <b>{rh.esc(chosen[0])}</b> (lowest dev WER of its last stage, "
                    f"{rh.esc(plots.STAGE_LABELS.get(chosen[1], chosen[1]))}); test hypotheses of its {label} "
                    f"stage, most word errors first.</p>")
            return note + rh.worst_table(tsv.read_frame(hyps))
    return ""


def edge_notes(summary: pd.DataFrame) -> str:
    """One warning per run x stage whose dev-chosen setting sits on the edge of its grid (the
    summary's `edge` and `edge_hint` columns, written by results.edges)."""
    if "edge" not in summary.columns:
        return ""
    lines = []
    for _, row in summary[summary["aggregate"] == "run"].iterrows():
        if rh.missing(row["edge"]):
            continue
        hint = "" if rh.missing(row.get("edge_hint")) else f": {rh.esc(row['edge_hint'])}"
        lines.append(f"<div class='warn'>\u26a0 {rh.esc(row['run'])}, {rh.esc(plots.STAGE_LABELS.get(row['stage'], row['stage']))}: "
                     f"the dev-chosen setting is on the edge of the swept range ({rh.esc(row['edge'])}){hint}.</div>")
    return "".join(lines)


INTRO = ("<p class='note'>{n} runs of experiment <b>{exp}</b>. WER in %; <i>dev</i> is the selection "
         "(decoder settings and rescoring weights tuned on dev), <i>test</i> is scored once with them frozen. "
         "Brackets: 95 % bootstrap interval over utterances; ± : sd over seeds; shaded: best run of the column; "
         "p: paired bootstrap against the baseline run's same stage or the run's previous stage.</p>")


def build_page(summary: pd.DataFrame, results: list[dict], runs_dir: Path, outdir: Path) -> tuple[str, list[Path]]:
    """The page's HTML and the PNG files it embeds."""
    scored = summary[summary[["dev_wer", "test_wer"]].notna().any(axis=1)]  # a stage with no WER gets no column
    stages = [s for s in STAGES if s in set(scored["stage"])] + [s for s in dict.fromkeys(scored["stage"]) if s not in STAGES]
    varied = [k for r in results for k in r.get("values", {})]
    varied = [k for k in dict.fromkeys(varied) if k in summary.columns]
    runs = summary[summary["aggregate"] == "run"]
    figures = []
    fig = plots.wer_intervals(runs, stages)
    if fig is not None:
        figures.append((plots.save_png(fig, outdir / "wer_intervals.png"), "WER % per stage across runs"))
    logs = {key: [(r["run"], read_numeric(p)) for r, p in unique_paths(results, key)] for key in ("train_log", "lm_log")}
    fig = plots.training_curves(logs)
    curves = [(plots.save_png(fig, outdir / "training_curves.png"), "training curves")] if fig is not None else []
    surfaces = surface_plots(results, summary, outdir)
    experiment = ", ".join(dict.fromkeys(str(e) for e in summary["experiment"]))
    sections = [("Comparison", edge_notes(summary) + rh.comparison_table(summary, varied, stages)),
                ("WER with intervals", rh.figures(figures)),
                ("Decoder sweep and rescoring surfaces", rh.figures(surfaces)),
                ("Training curves", rh.figures(curves)),
                ("Ten worst test utterances", worst_section(results, summary, stages)),
                ("Runs", rh.runs_table(results, runs_dir, outdir))]
    page = rh.page(f"asrsweep report: {experiment}", sections, INTRO.format(n=len(results), exp=rh.esc(experiment)))
    return page, [p for p, _ in figures + curves + surfaces]


def run(argv: list[str] | None = None) -> list[Path]:
    """Make every plot that has data, then summary.html; returns the files written."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.results.report", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", required=True, type=Path, help="the experiment's summary.tsv")
    parser.add_argument("--runs", required=True, type=Path, help="folder of run folders with result.json")
    parser.add_argument("--outdir", required=True, type=Path)
    args = parser.parse_args(argv)
    if not args.summary.exists():
        raise UserError(f"{args.summary}: file not found; run asrsweep.results.summarize first")
    args.outdir.mkdir(parents=True, exist_ok=True)
    record_command(args.outdir, None if argv is None else ["report"] + list(argv))
    page, pngs = build_page(read_numeric(args.summary), load_runs(args.runs), args.runs, args.outdir)
    write_text_atomic(args.outdir / "summary.html", page)
    print(f"{args.outdir}: {len(pngs)} plots + summary.html", flush=True)
    return pngs + [args.outdir / "summary.html"]


def main(argv: list[str] | None = None) -> list[Path]:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
