"""Tests for asrsweep.results.report: PNGs and summary.html from a fabricated tiny results tree."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

from asrsweep.core import tsv
from asrsweep.results import report, report_html, summarize


def fabricate(root) -> None:
    """Two runs sharing one sweep, each with its own training log, rescoring grid and test hyps."""
    (root / "decode").mkdir(parents=True)
    sweep = ["decoder\tlm_weight\tword_score\tsplit\twer", "greedy\t\t\tdev\t0.3"]
    sweep += [f"lexicon\t{a}\t{b}\tdev\t{0.1 + 0.01 * a + 0.02 * b}" for a in (0.5, 1.0, 1.5) for b in (0, 1)]
    (root / "decode" / "sweep.tsv").write_text("\n".join(sweep) + "\n")
    for i, run in enumerate(("r1", "r2")):
        d = root / "runs" / run
        (d / "commands").mkdir(parents=True)
        (d / "commands" / "train.sh").write_text("python -m asrsweep.acoustic.train\n")
        (d / "config.yaml").write_text("seed: 1\n")
        log = ["step\tepoch\tlr\ttrain_loss\tdev_loss\tdev_cer\tseconds"] + [f"{s}\t0\t0.001\t{3 - s / 10}\t{3.1 - s / 10}\t{0.5 - s / 100}\t{s}" for s in (1, 5, 10)]
        (d / "train_log.tsv").write_text("\n".join(log) + "\n")
        grid = ["ngram_weight\tlm_weight\tlength_weight\tsplit\terrors\twords\twer"]
        grid += [f"{a}\t{b}\t{c}\tdev\t{5 + i}\t100\t{0.05 + 0.01 * b + 0.001 * c}" for a in (0, 1) for b in (0, 0.5) for c in (0, 1)]
        (d / "grid.tsv").write_text("\n".join(grid) + "\n")
        hyps = [{"utt_id": f"u{k}", "ref": "the cat sat on the mat", "hyp": hyp, "errors": e, "ref_words": 6}
                for k, (hyp, e) in enumerate([("the cat sat on the mat", 0), ("a cat sat on mat", 2),
                                              ("the cat sat on the mat today", 1), ("", 6)])]
        tsv.write_tsv(d / "hyps_test.tsv", ["utt_id", "ref", "hyp", "errors", "ref_words"], hyps)
        result = {"experiment": "demo", "run": run, "values": {"seed": i + 1},
                  "train": {"steps": 10, "train_seconds": 1.0, "n_params": 10},
                  "paths": {"train_log": str(d / "train_log.tsv"), "sweep": str(root / "decode" / "sweep.tsv"),
                            "grid": str(d / "grid.tsv"), "rescore": str(d), "lm_log": str(d / "train_log.tsv")},
                  "commands": {"train": str(d / "commands" / "train.sh")},
                  "beam": {"best_on_dev": {"setting": {"lm_weight": 0.5, "word_score": 0.0}, "dev_wer": 0.1 - i / 100},
                           "test": {"wer": 0.11, "cer": 0.03}},
                  "rescore": {"best_on_dev": {"setting": {"lm_weight": 0.0, "ngram_weight": 1.0, "length_weight": 0.0},
                                              "dev_wer": 0.05 + i / 100}, "test": {"wer": 0.06 + i / 100, "cer": 0.02}}}
        (d / "result.json").write_text(json.dumps(result))


def with_statistics(path) -> None:
    """Add the optional columns of a summary with intervals, significance, edges and OOV rates."""
    frame = tsv.read_frame(path)
    for split in ("dev", "test"):
        wer = frame[f"{split}_wer"].map(lambda v: float(v) if v else None)
        frame[f"{split}_wer_lo"], frame[f"{split}_wer_hi"] = wer * 0.8, wer * 1.25
    frame["p_vs_baseline"] = ["" if r == "r1" else 0.01 for r in frame["run"]]
    frame["p_improve"] = ["" if r == "r1" else 0.99 for r in frame["run"]]
    frame["edge"] = ["rescore.length_weight=max" if s == "rescored" and r == "r2" else "" for r, s in zip(frame["run"], frame["stage"])]
    frame["edge_hint"] = ["rescore.length_weight: extend above 1 (try 2)" if e else "" for e in frame["edge"]]
    frame["baseline"] = "r1"
    frame["oov_dev"], frame["oov_test"] = 0.01, 0.02
    tsv.write_frame(path, frame)


class Page(HTMLParser):
    """Collects every img src and every href of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "a":
            self.links.append(attrs.get("href", ""))


def build(tmp_path, statistics: bool):
    fabricate(tmp_path)
    summarize.main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "summary.tsv")])
    if statistics:
        with_statistics(tmp_path / "summary.tsv")
    out = tmp_path / "report"
    report.main(["--summary", str(tmp_path / "summary.tsv"), "--runs", str(tmp_path / "runs"), "--outdir", str(out)])
    return out


def test_report_builds_pngs_and_a_self_contained_page(tmp_path) -> None:
    out = build(tmp_path, statistics=False)
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == ["rescore_r1.png", "rescore_r2.png", "sweep_r1.png", "training_curves.png", "wer_intervals.png"]
    for name in names:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "summary.html").read_text()
    parser = Page()
    parser.feed(text)
    assert len(parser.images) == 5
    assert all(base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG" for src in parser.images)
    assert all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert "n-gram beam" in text and "{" not in text.split("<body>")[1]  # no JSON blobs
    assert "11.0" in text and "0.11" not in text  # WER in percent
    # relative links from the report folder to each run's folder, config and commands
    assert {"../runs/r1/", "../runs/r1/config.yaml", "../runs/r1/commands/train.sh"} <= set(parser.links)
    for link in parser.links:
        assert (out / link).exists(), link
    # best run by dev WER of its last stage (rescored): r1; worst utterance first, all words deleted
    worst = text.split("Ten worst test utterances")[1]
    assert "<b>r1</b>" in worst and worst.index(">u3<") < worst.index(">u1<") < worst.index(">u2<")


def test_report_shows_intervals_significance_edges_and_oov(tmp_path) -> None:
    text = (build(tmp_path, statistics=True) / "summary.html").read_text()
    assert "[8.8, 13.8]" in text  # test WER 11.0 % with its interval
    assert "p = 0.01 vs r1" in text and "P(better) 0.99" in text and "r1 <span class='ci'>(baseline)" in text
    assert "grid edge: rescore.length_weight=max" in text
    assert "(rescore.length_weight=max): rescore.length_weight: extend above 1 (try 2)" in text
    assert "oov_test %" in text and "2.00" in text
    assert text.count("class='num best'") == 3  # per stage x split, but not beam test WER (a tie)


def test_alignment_marks_substitutions_insertions_and_deletions() -> None:
    cells = report_html.alignment("a b c d", "a x c e f")
    assert cells.count("class='w S'") == 2 and cells.count("class='w I'") == 1
    assert report_html.alignment("a b", "").count("class='w D'") == 2
    assert report_html.alignment("", "a").count("class='w I'") == 1
    assert "&lt;" in report_html.alignment("<unk>", "<unk>")


def test_surfaces_use_only_rows_scored_on_all_of_dev():
    """After a halving search, sweep.tsv also holds settings scored on a share of dev."""
    import pandas as pd

    from asrsweep.results.report import dev_rows

    table = pd.DataFrame({"split": ["dev", "dev", "test"], "dev_share": [0.25, 1.0, 1.0], "wer": [0.1, 0.2, 0.3]})
    assert dev_rows(table)["wer"].tolist() == [0.2]
    assert dev_rows(table.drop(columns="dev_share"))["wer"].tolist() == [0.1, 0.2]
