"""The report page's HTML parts; a library of `python -m asrsweep.results.report`.

One self-contained page: inline CSS, images as data: URIs, links relative to the page's folder.
The summary's optional columns (test_wer_lo/hi, dev_wer_lo/hi, p_vs_baseline, p_improve,
p_vs_prev, p_improve_prev, edge, oov_dev, oov_test) are shown when present and left out when not.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path

import jiwer
import pandas as pd

from asrsweep.results.plots import STAGE_LABELS

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;
  max-width:1200px;line-height:1.35}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
p.note{color:#555;font-size:12px;margin:4px 0 10px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border:1px solid #d0d0d0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f1f3f6;font-weight:600} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.agg td{background:#fafafa;font-style:italic}
td.best{background:#e3f4e1;font-weight:700} .ci{color:#666;font-weight:400;font-size:11px}
.sig{color:#0a6b0a;font-size:11px;display:block} .nsig{color:#888;font-size:11px;display:block}
.edge{color:#b00000;font-size:11px;display:block;font-weight:600}
.warn{background:#fff4e5;border-left:4px solid #e69500;padding:6px 10px;font-size:13px;margin:6px 0}
figure{display:inline-table;margin:6px 12px 6px 0;vertical-align:top} img{max-width:100%;border:1px solid #eee}
figcaption{display:table-caption;caption-side:bottom;font-size:12px;color:#444}
.align{display:flex;flex-wrap:wrap;gap:2px 4px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
.w{display:inline-flex;flex-direction:column;padding:0 2px;border-radius:2px}
.w span{white-space:pre} .w.S{background:#fde2c8} .w.D{background:#f8d0d0} .w.I{background:#d6e9fb}
.w .h{color:#333} .w.D .h,.w.I .r{color:#aaa}
p.legend{font-size:12px;margin:4px 0} p.legend span.w{display:inline;padding:1px 5px;margin-right:6px}
td.lbl{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px;color:#555}
a{color:#0645ad}
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def missing(value) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def value_text(value) -> str:
    """A table value as a person writes it: 1.0 -> 1, NaN -> ''."""
    if missing(value):
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def pct(value, digits: int = 1) -> str:
    return "" if missing(value) else f"{float(value) * 100:.{digits}f}"


def data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()


def figures(pngs: list[tuple[Path, str]]) -> str:
    return "".join(f"<figure><img alt='{esc(cap)}' src='{data_uri(p)}'><figcaption>{esc(cap)}</figcaption></figure>"
                   for p, cap in pngs)


def p_note(row: pd.Series, p_key: str, prob_key: str, against: str) -> str:
    """'p = 0.012 vs baseline' (green when < 0.05), with P(improve) when present."""
    if missing(row.get(p_key)):
        return ""
    p = float(row[p_key])
    prob = "" if missing(row.get(prob_key)) else f", P(better) {float(row[prob_key]):.2f}"
    return f"<span class='{'sig' if p < 0.05 else 'nsig'}'>p = {p:.3g} vs {against}{prob}</span>"


def wer_cell(row: pd.Series | None, split: str, best: float | None) -> str:
    """One WER cell: value in %, its 95 % interval or ± sd, best marked; empty when no row."""
    if row is None or missing(row.get(f"{split}_wer")):
        return "<td class='num'></td>"
    value = float(row[f"{split}_wer"])
    text = pct(value)
    lo, hi = row.get(f"{split}_wer_lo"), row.get(f"{split}_wer_hi")
    if not missing(lo) and not missing(hi):
        text += f" <span class='ci'>[{pct(lo)}, {pct(hi)}]</span>"
    if not missing(row.get(f"{split}_wer_std")):
        text += f" <span class='ci'>± {pct(row[f'{split}_wer_std'])}</span>"
    if split == "test":
        text += p_note(row, "p_vs_baseline", "p_improve", "baseline" if missing(row.get("baseline")) else str(row["baseline"]))
        text += p_note(row, "p_vs_prev", "p_improve_prev", "previous stage")
    if not missing(row.get("edge")) and split == "dev":
        text += f"<span class='edge'>\u26a0 grid edge: {esc(row['edge'])}</span>"
    is_best = best is not None and row.get("aggregate", "run") == "run" and abs(value - best) < 1e-12
    return f"<td class='num{' best' if is_best else ''}'>{text}</td>"


def comparison_table(summary: pd.DataFrame, varied: list[str], stages: list[str]) -> str:
    """Runs (rows) x stages (dev and test WER % columns); seed means after the runs."""
    runs = summary[summary["aggregate"] == "run"]
    best = {}
    for s, split in ((s, split) for s in stages for split in ("dev", "test")):
        column = runs.loc[runs["stage"] == s, f"{split}_wer"].dropna()
        best[(s, split)] = column.min() if column.nunique() > 1 else None  # all equal: no best to mark
    oov = [c for c in ("oov_dev", "oov_test") if c in summary.columns and summary[c].notna().any()]
    head = "".join(f"<th rowspan=2>{esc(v)}</th>" for v in varied) + "".join(f"<th rowspan=2>{esc(c)} %</th>" for c in oov)
    head += "".join(f"<th colspan=2>{esc(STAGE_LABELS.get(s, s))}</th>" for s in stages)
    sub = "".join("<th>dev WER %</th><th>test WER %</th>" for _ in stages)
    body = []
    keys = ["aggregate", "run"] + varied
    for _, group in summary.groupby(keys, sort=False, dropna=False):
        first = group.iloc[0]
        by_stage = {r["stage"]: r for _, r in group.iterrows()}
        label = esc(first["run"]) if first["aggregate"] == "run" else f"mean of {esc(value_text(first.get('n')))} seeds"
        if first["aggregate"] == "run" and first["run"] == first.get("baseline"):
            label += " <span class='ci'>(baseline)</span>"
        cells = [f"<td>{label}</td>"] + [f"<td>{esc(value_text(first.get(v)))}</td>" for v in varied]
        cells += [f"<td class='num'>{pct(first.get(c), 2)}</td>" for c in oov]
        for s in stages:
            cells += [wer_cell(by_stage.get(s), split, best[(s, split)]) for split in ("dev", "test")]
        body.append(f"<tr class='{'run' if first['aggregate'] == 'run' else 'agg'}'>{''.join(cells)}</tr>")
    return (f"<table class='compare'><thead><tr><th rowspan=2>run</th>{head}</tr><tr>{sub}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def settings_text(settings: dict | None) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted((settings or {}).items()))


def relative(target: str | Path, page_dir: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), page_dir.resolve())).as_posix()


def runs_table(results: list[dict], runs_dir: Path, page_dir: Path) -> str:
    """Per run: its chosen settings and links to its folder, config, provenance and commands."""
    rows = []
    for result in results:
        run_dir = runs_dir / result["run"]
        links = [f"<a href='{esc(relative(run_dir, page_dir))}/'>folder</a>"]
        links += [f"<a href='{esc(relative(run_dir / n, page_dir))}'>{n}</a>" for n in ("config.yaml", "provenance.json")
                  if (run_dir / n).exists()]
        commands = " ".join(f"<a href='{esc(relative(path, page_dir))}'>{esc(name)}</a>"
                            for name, path in sorted((result.get("commands") or {}).items()))
        beam = ((result.get("beam") or {}).get("best_on_dev") or {}).get("setting")
        rescore = ((result.get("rescore") or {}).get("best_on_dev") or {}).get("setting")
        values = ", ".join(f"{k}={v}" for k, v in result.get("values", {}).items())
        rows.append(f"<tr><td>{esc(result['run'])}</td><td>{esc(values)}</td><td>{esc(settings_text(beam))}</td>"
                    f"<td>{esc(settings_text(rescore))}</td><td>{' · '.join(links)}</td><td>{commands}</td></tr>")
    return ("<table><thead><tr><th>run</th><th>varied values</th><th>beam setting (dev-chosen)</th>"
            "<th>rescoring weights (dev-chosen)</th><th>files</th><th>commands</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def alignment(ref: str, hyp: str) -> str:
    """ref over hyp word by word; substitutions, deletions and insertions coloured (jiwer)."""
    ref_words, hyp_words = ref.split(), hyp.split()
    if not ref_words:
        chunks = [("insert", 0, 0, 0, len(hyp_words))] if hyp_words else []
    else:
        chunks = [(c.type, c.ref_start_idx, c.ref_end_idx, c.hyp_start_idx, c.hyp_end_idx)
                  for c in jiwer.process_words(ref, hyp if hyp_words else "").alignments[0]]
    cells = []
    for kind, r0, r1, h0, h1 in chunks:
        refs, hyps = ref_words[r0:r1], hyp_words[h0:h1]
        for i in range(max(len(refs), len(hyps))):
            r = refs[i] if i < len(refs) else "*" * len(hyps[i])
            h = hyps[i] if i < len(hyps) else "*" * len(refs[i])
            tag = {"equal": "", "substitute": "S", "delete": "D", "insert": "I"}[kind]
            cells.append(f"<span class='w {tag}'><span class='r'>{esc(r)}</span><span class='h'>{esc(h)}</span></span>")
    return f"<div class='align'>{''.join(cells)}</div>"


def worst_table(hyps: pd.DataFrame, n: int = 10) -> str:
    """The `n` test utterances with the most word errors (ties: higher error rate first)."""
    frame = hyps.copy()
    frame["errors"] = pd.to_numeric(frame["errors"], errors="coerce").fillna(0)
    frame["ref_words"] = pd.to_numeric(frame["ref_words"], errors="coerce").fillna(0)
    frame["rate"] = frame["errors"] / frame["ref_words"].clip(lower=1)
    frame = frame[frame["errors"] > 0].sort_values(["errors", "rate", "utt_id"], ascending=[False, False, True]).head(n)
    if frame.empty:
        return "<p class='note'>No test utterance has an error.</p>"
    rows = "".join(
        f"<tr><td class='lbl'>{esc(r.utt_id)}</td><td class='num'>{int(r.errors)}/{int(r.ref_words)}</td>"
        f"<td>{alignment(str(r.ref), str(r.hyp))}</td></tr>" for r in frame.itertuples())
    legend = ("<p class='legend'>top line reference, bottom line hypothesis: <span class='w S'>substitution</span>"
              "<span class='w D'>deletion</span><span class='w I'>insertion</span> (*** = no word)</p>")
    return (f"{legend}<table><thead><tr><th>utterance</th><th>errors / words</th><th>alignment</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def page(title: str, sections: list[tuple[str, str]], intro: str = "") -> str:
    """The whole document: a title, a note and (heading, html) sections."""
    parts = "".join(f"<h2 id='{esc(h.lower().replace(' ', '-'))}'>{esc(h)}</h2>{body}" for h, body in sections if body)
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{intro}{parts}</body></html>\n")
