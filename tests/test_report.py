"""Tests for asrsweep.results.report: PNGs and summary.html from a fabricated tiny results tree."""

from __future__ import annotations

import json

from asrsweep.results import report

from asrsweep.results import summarize


def fabricate(root) -> None:
    """Two runs sharing one sweep, each with its own training log and rescoring grid."""
    (root / "decode").mkdir(parents=True)
    sweep = ["decoder\tlm_weight\tword_score\tsplit\twer", "greedy\t\t\tdev\t0.3"]
    sweep += [f"lexicon\t{a}\t{b}\tdev\t{0.1 + 0.01 * a + 0.02 * b}" for a in (0.5, 1.0, 1.5) for b in (0, 1)]
    (root / "decode" / "sweep.tsv").write_text("\n".join(sweep) + "\n")
    for i, run in enumerate(("r1", "r2")):
        d = root / "runs" / run
        d.mkdir(parents=True)
        log = ["step\tepoch\tlr\ttrain_loss\tdev_loss\tdev_cer\tseconds"] + [f"{s}\t0\t0.001\t{3 - s / 10}\t{3.1 - s / 10}\t{0.5 - s / 100}\t{s}" for s in (1, 5, 10)]
        (d / "train_log.tsv").write_text("\n".join(log) + "\n")
        grid = ["ngram_weight\tlm_weight\tlength_weight\tsplit\terrors\twords\twer"]
        grid += [f"{a}\t{b}\t{c}\tdev\t{5 + i}\t100\t{0.05 + 0.01 * b + 0.001 * c}" for a in (0, 1) for b in (0, 0.5) for c in (0, 1)]
        (d / "grid.tsv").write_text("\n".join(grid) + "\n")
        result = {"experiment": "demo", "run": run, "values": {"seed": i + 1},
                  "train": {"steps": 10, "train_seconds": 1.0, "n_params": 10},
                  "paths": {"train_log": str(d / "train_log.tsv"), "sweep": str(root / "decode" / "sweep.tsv"),
                            "grid": str(d / "grid.tsv")},
                  "beam": {"best_on_dev": {"setting": {"lm_weight": 0.5}, "dev_wer": 0.1}, "test": {"wer": 0.11, "cer": 0.03}}}
        (d / "result.json").write_text(json.dumps(result))


def test_report_builds_pngs_and_html(tmp_path) -> None:
    fabricate(tmp_path)
    summarize.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "summary.tsv")])
    out = tmp_path / "report"
    report.main(["--summary", str(tmp_path / "summary.tsv"), "--runs", str(tmp_path / "runs"), "--outdir", str(out)])
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["rescore_r1.png", "rescore_r2.png", "sweep_r1.png", "training_curves.png"]
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "summary.html").read_text()
    assert "<table" in page and page.count("data:image/png;base64,") == 4 and "ngram_beam" in page
