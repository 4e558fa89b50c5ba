"""python -m asrsweep.results.report --summary R/E/summary.tsv --runs R/E/runs --outdir R/E/report

Plots and a self-contained HTML page for one experiment (matplotlib, Agg backend):
  training_curves.png        train_loss, dev_loss, dev_cer vs step, one line per run
                             (train_log.tsv from result.json paths.train_log; LM logs too
                             when paths.lm_log is given: train_loss, dev_loss)
  sweep_<run>.png            dev WER heatmap over lm_weight x word_score (min over other knobs)
                             from paths.sweep (sweep.tsv, beam rows)
  rescore_<run>.png          dev WER over lm_weight x ngram_weight (min over length_weight) from
                             paths.grid (grid.tsv)
  summary.html               the summary table plus every PNG embedded (base64)
Runs sharing an upstream file (same path) get one plot, named after the first run.
"""

from __future__ import annotations

import argparse
import base64
import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from asrsweep.core import tsv  # noqa: E402
from asrsweep.core.common import UserError, atomic_write, cli_main, read_json, record_command  # noqa: E402


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


def unique_paths(results: list[dict], key: str) -> list[tuple[str, Path]]:
    """(first run name, path) for each distinct existing paths[key] across runs."""
    seen, out = set(), []
    for result in results:
        path = (result.get("paths") or {}).get(key)
        if path and path not in seen and Path(path).exists():
            seen.add(path)
            out.append((result["run"], Path(path)))
    return out


def save_png(fig, path: Path) -> Path:
    """Save and close a figure atomically."""
    with atomic_write(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def training_curves(results: list[dict], out: Path) -> Path | None:
    """One panel per logged quantity; acoustic model and LM logs side by side."""
    panels = [("train_log", c) for c in ("train_loss", "dev_loss", "dev_cer")] + [("lm_log", c) for c in ("train_loss", "dev_loss")]
    logs = {key: [(run, read_numeric(p)) for run, p in unique_paths(results, key)] for key in ("train_log", "lm_log")}
    panels = [(k, c) for k, c in panels if any(c in df.columns for _, df in logs[k])]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (key, column) in zip(axes[0], panels):
        for run, df in logs[key]:
            if column in df.columns:
                rows = df[["step", column]].apply(pd.to_numeric, errors="coerce").dropna()
                ax.plot(rows["step"], rows[column], label=run, marker=".")
        ax.set_title(f"{'LM ' if key == 'lm_log' else ''}{column}")
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    return save_png(fig, out)


def heatmap(table: pd.DataFrame, rows: str, cols: str, title: str, out: Path) -> Path:
    """WER heatmap (percent, annotated), min over every other column."""
    pivot = table.pivot_table(index=rows, columns=cols, values="wer", aggfunc="min") * 100
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(pivot.columns), 1.0 + 0.45 * len(pivot.index)))
    image = ax.imshow(pivot.to_numpy(), cmap="viridis_r", aspect="auto", origin="lower")
    ax.set_xticks(range(len(pivot.columns)), [f"{v:g}" for v in pivot.columns])
    ax.set_yticks(range(len(pivot.index)), [f"{v:g}" for v in pivot.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    for (i, j), value in pd.DataFrame(pivot.to_numpy()).stack().items():
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="dev WER %")
    return save_png(fig, out)


def sweep_plots(results: list[dict], outdir: Path) -> list[Path]:
    """sweep_<run>.png from each distinct sweep.tsv (beam rows only)."""
    made = []
    for run, path in unique_paths(results, "sweep"):
        sweep = read_numeric(path)
        if "decoder" in sweep.columns:
            sweep = sweep[sweep["decoder"] != "greedy"]
        sweep = sweep.dropna(subset=["lm_weight", "word_score"])
        if not sweep.empty:
            made.append(heatmap(sweep, "lm_weight", "word_score", f"{run}: beam sweep", outdir / f"sweep_{run}.png"))
    return made


def rescore_plots(results: list[dict], outdir: Path) -> list[Path]:
    """rescore_<run>.png from each distinct grid.tsv."""
    return [heatmap(read_numeric(path), "lm_weight", "ngram_weight", f"{run}: rescoring (min over length)",
                    outdir / f"rescore_{run}.png") for run, path in unique_paths(results, "grid")]


def write_html(summary: pd.DataFrame, pngs: list[Path], out: Path) -> None:
    """summary.html: the table and the images inline, no external files."""
    images = "".join(
        f"<h3>{html.escape(p.name)}</h3><img src='data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}'>"
        for p in pngs)
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>asrsweep summary</title><style>"
            "body{font-family:sans-serif}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body><h1>asrsweep summary</h1>"
            f"{summary.to_html(index=False, na_rep='', escape=True)}{images}</body></html>\n")
    with atomic_write(out) as tmp:
        tmp.write_text(page)


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
    results = load_runs(args.runs)
    pngs = [p for p in [training_curves(results, args.outdir / "training_curves.png")] if p]
    pngs += sweep_plots(results, args.outdir) + rescore_plots(results, args.outdir)
    write_html(tsv.read_frame(args.summary), pngs, args.outdir / "summary.html")
    print(f"{args.outdir}: {len(pngs)} plots + summary.html", flush=True)
    return pngs + [args.outdir / "summary.html"]


def main(argv: list[str] | None = None) -> list[Path]:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
