"""The report's figures (matplotlib, Agg backend); a library of `python -m asrsweep.results.report`.

Every function takes tables that were already read and returns a matplotlib figure (or None when
there is nothing to draw); `save_png` writes one. WERs arrive as fractions and are drawn in %.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from asrsweep.core.common import atomic_write  # noqa: E402

STAGE_LABELS = {"greedy": "greedy CTC", "ngram_beam": "n-gram beam", "rescored": "+ LM rescoring"}


def save_png(fig, path: Path) -> Path:
    """Save and close a figure atomically."""
    with atomic_write(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def training_curves(logs: dict[str, list[tuple[str, pd.DataFrame]]]):
    """One panel per logged quantity; `logs` = {"train_log": [(run, table)], "lm_log": [...]}."""
    panels = [("train_log", c) for c in ("train_loss", "dev_loss", "dev_cer")]
    panels += [("lm_log", c) for c in ("train_loss", "dev_loss")]
    panels = [(k, c) for k, c in panels if any(c in df.columns for _, df in logs.get(k, []))]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 2.8), squeeze=False)
    for ax, (key, column) in zip(axes[0], panels):
        for run, df in logs[key]:
            if column in df.columns:
                rows = df[["step", column]].apply(pd.to_numeric, errors="coerce").dropna()
                ax.plot(rows["step"], rows[column], label=run, marker=".")
        ax.set_title(f"{'LM' if key == 'lm_log' else 'acoustic'} {column}", fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _interval(rows: pd.DataFrame, split: str) -> tuple[pd.Series, list | None]:
    """WER % of `split` and, when the summary has its bounds, the error-bar half-widths."""
    wer = rows[f"{split}_wer"] * 100
    lo, hi = f"{split}_wer_lo", f"{split}_wer_hi"
    if lo not in rows.columns or hi not in rows.columns or rows[[lo, hi]].isna().all().all():
        return wer, None
    return wer, [(wer - rows[lo] * 100).clip(lower=0).fillna(0), (rows[hi] * 100 - wer).clip(lower=0).fillna(0)]


def wer_intervals(table: pd.DataFrame, stages: list[str]):
    """One panel per stage: dev and test WER % of every run, with intervals when present."""
    stages = [s for s in stages if table.loc[table["stage"] == s, "test_wer"].notna().any()]
    if not stages:
        return None
    runs = list(dict.fromkeys(table["run"]))
    fig, axes = plt.subplots(1, len(stages), figsize=(max(3.2, 0.5 * len(runs) + 2) * len(stages), 3.0),
                             squeeze=False, sharey=False)
    for ax, stage in zip(axes[0], stages):
        rows = table[table["stage"] == stage].set_index("run").reindex(runs).reset_index()
        x = pd.Series(range(len(runs)), dtype=float)
        for offset, split, colour in ((-0.12, "dev", "#7f7f7f"), (0.12, "test", "#1f77b4")):
            if f"{split}_wer" not in rows.columns or rows[f"{split}_wer"].isna().all():
                continue
            wer, err = _interval(rows, split)
            ax.errorbar(x + offset, wer, yerr=err, fmt="o", color=colour, capsize=3, ms=4,
                        label=f"{split}{' (95% CI)' if err is not None else ''}")
        ax.set_xticks(range(len(runs)), runs, rotation=30 if len(runs) > 4 else 0, ha="right" if len(runs) > 4 else "center",
                      fontsize=8)
        ax.set_title(STAGE_LABELS.get(stage, stage), fontsize=10)
        ax.set_ylabel("WER %")
        ax.set_xlim(-0.6, len(runs) - 0.4)
        ax.grid(axis="y", alpha=0.3)
    legends = {}  # label -> handle over every panel: a stage without intervals has plain labels
    for ax in axes[0]:
        legends.update(zip(*reversed(ax.get_legend_handles_labels())))
    if any("CI" in label for label in legends):
        legends = {label: h for label, h in legends.items() if "CI" in label}
    labels, handles = list(legends), list(legends.values())
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def heatmap(table: pd.DataFrame, rows: str, cols: str, title: str, chosen: dict | None = None,
            warning: str = ""):
    """Dev WER % heatmap (annotated), min over every other column; the chosen cell outlined."""
    pivot = table.pivot_table(index=rows, columns=cols, values="wer", aggfunc="min") * 100
    fig, ax = plt.subplots(figsize=(2.4 + 0.7 * len(pivot.columns), 1.6 + 0.45 * len(pivot.index)))
    image = ax.imshow(pivot.to_numpy(), cmap="viridis_r", aspect="auto", origin="lower")
    ax.set_xticks(range(len(pivot.columns)), [f"{v:g}" for v in pivot.columns])
    ax.set_yticks(range(len(pivot.index)), [f"{v:g}" for v in pivot.index])
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    low, high = image.norm.vmin, image.norm.vmax
    for (i, j), value in pd.DataFrame(pivot.to_numpy()).stack().items():
        light = high > low and (value - low) / (high - low) < 0.5  # viridis_r: low WER is yellow
        ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7, color="black" if light else "white")
    if chosen and rows in chosen and cols in chosen:
        try:
            i, j = list(pivot.index).index(float(chosen[rows])), list(pivot.columns).index(float(chosen[cols]))
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
        except (ValueError, TypeError):
            pass  # the chosen value is not on this grid (e.g. a shard's file): nothing to outline
    ax.set_title(title + (f"\n\u26a0 {warning}" if warning else ""), fontsize=9,
                 color="#b00" if warning else "black")
    fig.colorbar(image, ax=ax, label="dev WER %")
    return fig
