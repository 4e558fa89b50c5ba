"""python -m asrsweep.rescoring.rescore --config C --nbest NB --lmscore LS --emissions EM --outdir OUT [--first-pass B]

Rescore n-best lists with the Transformer LM over a grid of weights, pick the best point on
dev, apply it frozen to test.

    score = am_score + ngram_weight * ngram_score + lm_weight * lm_logprob + length_weight * words

Scales: `am_score` and `lm_logprob` are natural logs; `ngram_score` stays KenLM log10 exactly as
flashlight reports it, so `ngram_weight` means the same as the decoder's `lm_weight` and
`length_weight` the same as its `word_score` (with ngram_weight = decode lm_weight,
length_weight = decode word_score and lm_weight = 0, the rescorer sees the first pass's own
score, up to its unk/sil terms). The acoustic weight is fixed to 1. lm_weight 0 is always part
of the grid. With `--first-pass <decode>/best_on_dev.json`, the decoder's chosen lm_weight and
word_score are added to the ngram_weight and length_weight axes.

Inputs: NB/{dev,test}.tsv (utt_id rank hyp am_score ngram_score words tokens), LS/{split}.tsv
(utt_id rank lm_logprob), EM/{split}.pt (references: "utt_ids", "texts"). An utterance with no
hypothesis counts as an empty one. Outputs in OUT: grid.tsv (one row per grid point, dev WER),
best_on_dev.json, test.json, hyps_{dev,test}.tsv (utt_id ref hyp errors ref_words). Errors are
counted after section `score`'s normalize (asrsweep.decoding.scoring), on references and
hypotheses alike; test.json records it as `scoring`.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from asrsweep.core import tsv
from asrsweep.decoding.scoring import load_score_config, normalize_all
from asrsweep.rescoring import fastwer
from asrsweep.core.common import (
    UserError,
    cli_main,
    load_section,
    open_outdir,
    read_json,
    write_json_atomic,
)

AXES = ("ngram_weight", "lm_weight", "length_weight")
TIE_BREAK = (
    "lowest dev WER; ties -> smallest lm_weight, then smallest ngram_weight, then smallest "
    "|length_weight|, then smallest length_weight; per utterance, equal scores -> better first-pass rank"
)
SCORE = "am_score + ngram_weight*ngram_score(log10) + lm_weight*lm_logprob(ln) + length_weight*words"


@dataclasses.dataclass(frozen=True)
class RescoreConfig:
    """Section `rescore`: each value a number or a list of numbers (a grid axis)."""

    ngram_weight: list | float = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
    lm_weight: list | float = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
    length_weight: list | float = (-1.0, 0.0, 1.0, 2.0)


def grid_axes(cfg: RescoreConfig, first_pass: dict | None, where: str) -> list[np.ndarray]:
    """The three weight axes (sorted, unique), lm_weight 0 and the first-pass point included."""
    axes = []
    for name in AXES:
        value = getattr(cfg, name)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise UserError(f"{where}: rescore.{name}: expected a number or a non-empty list of numbers")
        axes.append(values)
    axes[1].append(0.0)  # lm_weight 0 = the first pass, the baseline every grid must contain
    if first_pass is not None:
        setting = first_pass.get("setting", {})
        if "lm_weight" not in setting or "word_score" not in setting:
            raise UserError("--first-pass: 'setting' lacks lm_weight/word_score; pass decode's best_on_dev.json")
        axes[0].append(float(setting["lm_weight"]))
        axes[2].append(float(setting["word_score"]))
    return [np.unique(np.asarray(a, dtype=np.float64)) for a in axes]


def load_references(path: Path) -> tuple[list[str], list[str]]:
    """(utt_ids, texts) from an emissions file (other keys are not needed here)."""
    import torch

    if not path.exists():
        raise UserError(f"{path}: file not found")
    data = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    if "utt_ids" not in data or "texts" not in data:
        raise UserError(f"{path}: needs keys 'utt_ids' and 'texts'")
    return list(data["utt_ids"]), list(data["texts"])


def load_split(nbest_dir: Path, lmscore_dir: Path, emissions_dir: Path, split: str, normalize: str = "none") -> dict:
    """One split as arrays: features [U, H, 4] (am, ngram, lm, words), errors [U, H], texts
    (references and hypotheses as scored: after score.normalize)."""
    utt_ids, refs = load_references(emissions_dir / f"{split}.pt")
    nb = tsv.read_frame(nbest_dir / f"{split}.tsv", ["utt_id", "rank", "hyp", "am_score", "ngram_score", "words"])
    refs, nb["hyp"] = normalize_all(refs, normalize), normalize_all(nb["hyp"], normalize)
    ls = tsv.read_frame(lmscore_dir / f"{split}.tsv", ["utt_id", "rank", "lm_logprob"])
    df = nb.merge(ls[["utt_id", "rank", "lm_logprob"]], on=["utt_id", "rank"], how="left")
    if (df["lm_logprob"] == "").any() or df["lm_logprob"].isna().any():
        raise UserError(f"{lmscore_dir / split}.tsv: no lm_logprob for some n-best rows; rerun score_lm")
    unknown = sorted(set(df["utt_id"]) - set(utt_ids))
    if unknown:
        raise UserError(f"{nbest_dir / split}.tsv: utterance {unknown[0]} is not in the emissions file")
    df["rank"] = df["rank"].astype(int)
    df = df.sort_values(["utt_id", "rank"], kind="stable")
    width = max(1, int(df.groupby("utt_id").size().max()) if len(df) else 1)
    return _to_arrays(df, utt_ids, refs, width)


def _to_arrays(df: pd.DataFrame, utt_ids: list[str], refs: list[str], width: int) -> dict:
    """Pack sorted n-best rows into padded arrays (padding never wins; empty hyp if none)."""
    n_utt = len(utt_ids)
    feats = np.zeros((n_utt, width, 4))
    feats[:, :, 0] = fastwer.PAD_SCORE
    hyps: list[list[str]] = [[""] for _ in range(n_utt)]
    feats[:, 0, 0] = 0.0  # an utterance without n-best rows gets one empty hypothesis
    row_of = {u: i for i, u in enumerate(utt_ids)}
    for utt, group in df.groupby("utt_id", sort=False):
        i = row_of[utt]
        values = group[["am_score", "ngram_score", "lm_logprob", "words"]].astype(float).to_numpy()
        feats[i, : len(values)] = values
        hyps[i] = list(group["hyp"])
    flat_refs = [refs[i] for i in range(n_utt) for _ in hyps[i]]
    flat_errs = fastwer.word_errors(flat_refs, [h for hs in hyps for h in hs])
    errors = np.zeros((n_utt, width), dtype=np.int64)
    pos = 0
    for i, hs in enumerate(hyps):
        errors[i, : len(hs)] = flat_errs[pos : pos + len(hs)]
        pos += len(hs)
    ref_words = np.array([len(r.split()) for r in refs], dtype=np.int64)
    return {"utt_ids": utt_ids, "refs": refs, "hyps": hyps, "features": feats, "errors": errors, "ref_words": ref_words}


def pick_best(grid: pd.DataFrame) -> pd.Series:
    """The best grid row on dev, by the documented TIE_BREAK."""
    order = grid.assign(_abs_len=grid["length_weight"].abs())
    order = order.sort_values(["wer", "lm_weight", "ngram_weight", "_abs_len", "length_weight"], kind="stable")
    return order.iloc[0].drop("_abs_len")


def measures(refs: list[str], hyps: list[str]) -> dict:
    """jiwer's corpus WER/CER and S/D/I counts for chosen hypotheses."""
    import jiwer

    out = jiwer.process_words(refs, hyps)
    words = out.hits + out.substitutions + out.deletions
    return {
        "wer": float(out.wer) if words else 0.0,
        "cer": float(jiwer.cer(refs, hyps)) if any(refs) else 0.0,
        "substitutions": int(out.substitutions),
        "deletions": int(out.deletions),
        "insertions": int(out.insertions),
        "words": int(words),
    }


def chosen(data: dict, point: list[float]) -> list[str]:
    """Hypothesis chosen per utterance at one weight point (same arithmetic as the grid)."""
    axes = [np.array([w]) for w in point]
    (_, picks), = fastwer.product_choices(data["features"], axes)
    return [data["hyps"][u][h] for u, h in enumerate(picks[0])]


def summary_of(data: dict, point: list[float]) -> tuple[dict, list[str]]:
    """Measures at `point`, plus first-pass (rank 0) and oracle WER of the split."""
    hyps = chosen(data, point)
    result = measures(data["refs"], hyps)
    words = max(1, int(data["ref_words"].sum()))
    first = [h[0] for h in data["hyps"]]
    result["first_pass"] = {k: v for k, v in measures(data["refs"], first).items() if k in ("wer", "cer")}
    valid = data["features"][:, :, 0] > fastwer.PAD_SCORE / 2
    result["oracle_wer"] = float(np.where(valid, data["errors"], np.iinfo(np.int64).max).min(axis=1).sum() / words)
    return result, hyps


def write_hyps(path: Path, data: dict, hyps: list[str]) -> None:
    """hyps_{split}.tsv: utt_id ref hyp errors ref_words."""
    errs = fastwer.word_errors(data["refs"], hyps)
    df = pd.DataFrame({"utt_id": data["utt_ids"], "ref": data["refs"], "hyp": hyps, "errors": errs, "ref_words": data["ref_words"]})
    tsv.write_frame(path, df)


def run_grid(dev: dict, axes: list[np.ndarray]) -> pd.DataFrame:
    """grid.tsv rows: every weight point with its dev WER (errors / reference words)."""
    errors = fastwer.grid_errors(dev["features"], dev["errors"], axes)
    points = fastwer.product_grid(axes)
    words = int(dev["ref_words"].sum())
    grid = pd.DataFrame(points, columns=list(AXES))
    grid["split"] = "dev"
    grid["errors"] = errors
    grid["words"] = words
    grid["wer"] = errors / max(1, words)
    return grid


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line flags (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m asrsweep.rescoring.rescore", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="stage config.json (section rescore)")
    parser.add_argument("--nbest", required=True, type=Path, help="decode_frozen folder with n-best dev.tsv test.tsv")
    parser.add_argument("--lmscore", required=True, type=Path, help="score_lm folder with dev.tsv test.tsv")
    parser.add_argument("--emissions", required=True, type=Path, help="emissions folder with dev.pt test.pt")
    parser.add_argument("--outdir", required=True, type=Path)
    parser.add_argument("--first-pass", type=Path, help="decode best_on_dev.json: add its weights to the grid")
    return parser.parse_args(argv)


def run(argv: list[str] | None = None) -> dict:
    """Load, evaluate the grid on dev, freeze the best point, apply it to test, write outputs."""
    args = parse_args(argv)
    open_outdir(args.outdir, argv, "rescore")
    cfg = load_section(args.config, "rescore", RescoreConfig)
    axes = grid_axes(cfg, read_json(args.first_pass) if args.first_pass else None, str(args.config))
    norm = load_score_config(args.config).normalize
    dev, test = (load_split(args.nbest, args.lmscore, args.emissions, s, norm) for s in ("dev", "test"))
    start = time.perf_counter()
    grid = run_grid(dev, axes)
    seconds = time.perf_counter() - start
    print(f"{len(grid)} grid points x {len(dev['utt_ids'])} dev utterances in {seconds:.2f}s", flush=True)
    best = pick_best(grid)
    point = [float(best[a]) for a in AXES]
    setting = dict(zip(AXES, point))
    dev_res, dev_hyps = summary_of(dev, point)
    test_res, test_hyps = summary_of(test, point)
    tsv.write_frame(args.outdir / "grid.tsv", grid)
    best_json = {"setting": setting, "objective": "wer", "dev_wer": float(best["wer"]), "dev_cer": dev_res["cer"],
                 "tie_break": TIE_BREAK, "score": SCORE, "oracle_wer": dev_res["oracle_wer"],
                 "first_pass": dev_res["first_pass"], "grid_points": len(grid), "grid_seconds": seconds}
    test_json = {"setting": setting, "split": "test", **test_res, "dev_wer": float(best["wer"]),
                 "dev_oracle_wer": dev_res["oracle_wer"], "score": SCORE, "scoring": {"normalize": norm}}
    write_json_atomic(args.outdir / "best_on_dev.json", best_json)
    write_json_atomic(args.outdir / "test.json", test_json)
    write_hyps(args.outdir / "hyps_dev.tsv", dev, dev_hyps)
    write_hyps(args.outdir / "hyps_test.tsv", test, test_hyps)
    print(f"best on dev {setting}: dev WER {best['wer']:.4f}, test WER {test_res['wer']:.4f}", flush=True)
    return test_json


def main(argv: list[str] | None = None) -> dict:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
