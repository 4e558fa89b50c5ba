"""python bench/rescore_grid.py [--utts 1000] [--hyps 100] [--jiwer-points 20] [--seed 0]

Time the vectorised rescoring grid (asrsweep.rescoring.fastwer) against recomputing WER with jiwer at
every grid point, side by side on one synthetic n-best set: 22 x 22 x 21 = 10,164 weight points
over U utterances x H hypotheses. The jiwer baseline (choose hypotheses, then jiwer.wer) is
timed on --jiwer-points random points and EXTRAPOLATED linearly to the full grid; the error
counts of those points are checked against the vectorised ones. Prints times and ratios.
"""

from __future__ import annotations

import argparse
import time

import jiwer
import numpy as np

from asrsweep.rescoring import fastwer

VOCAB = [f"w{i}" for i in range(200)]


def synthetic(rng: np.random.Generator, n_utt: int, n_hyp: int) -> tuple:
    """refs [U], hyps [U][H], features [U, H, 4]: n-best-like (sorted first-pass scores, variants
    of the reference differing in a few words, realistic score ranges)."""
    refs, hyps = [], []
    feats = np.zeros((n_utt, n_hyp, 4))
    for u in range(n_utt):
        ref = list(rng.choice(VOCAB, size=rng.integers(4, 16)))
        refs.append(" ".join(ref))
        variants = []
        for _ in range(n_hyp):
            words = [w if rng.random() > 0.15 else str(rng.choice(VOCAB)) for w in ref]
            if rng.random() < 0.3:
                words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(VOCAB)))
            if rng.random() < 0.3 and len(words) > 1:
                words.pop(int(rng.integers(0, len(words))))
            variants.append(" ".join(words))
        hyps.append(variants)
        feats[u, :, 0] = -np.sort(rng.gamma(2.0, 4.0, n_hyp)) - 20
        feats[u, :, 1] = rng.normal(-3 * len(ref), 2.0, n_hyp)
        feats[u, :, 2] = rng.normal(-7 * len(ref), 4.0, n_hyp)
        feats[u, :, 3] = [len(v.split()) for v in variants]
    return refs, hyps, feats


def main() -> None:
    """Build the data, time both methods, print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utts", type=int, default=1000)
    parser.add_argument("--hyps", type=int, default=100)
    parser.add_argument("--jiwer-points", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    refs, hyps, feats = synthetic(rng, args.utts, args.hyps)
    axes = [np.linspace(0, 2.1, 22), np.linspace(0, 1.05, 22), np.linspace(-2, 3, 21)]
    points = fastwer.product_grid(axes)
    words = sum(len(r.split()) for r in refs)
    print(f"grid {len(points)} points x {args.utts} utterances x {args.hyps} hypotheses", flush=True)

    start = time.perf_counter()
    flat = fastwer.word_errors([r for r, hs in zip(refs, hyps) for _ in hs], [h for hs in hyps for h in hs])
    errors = flat.reshape(args.utts, args.hyps)
    t_errors = time.perf_counter() - start
    timings = {}
    for prune in (False, True):
        start = time.perf_counter()
        totals = fastwer.grid_errors(feats, errors, axes, prune=prune)
        timings[prune] = time.perf_counter() - start
    t_grid = min(timings.values())

    sample = rng.choice(len(points), size=args.jiwer_points, replace=False)
    start = time.perf_counter()
    jiwer_wer = []
    for g in sample:
        pick = fastwer.choose(feats, points[g : g + 1])[0]
        jiwer_wer.append(jiwer.wer(refs, [hyps[u][h] for u, h in enumerate(pick)]))
    t_sample = time.perf_counter() - start
    t_jiwer = t_sample / len(sample) * len(points)
    assert np.allclose(np.array(jiwer_wer), totals[sample] / words, atol=1e-12), "vectorised WER != jiwer"

    print(f"per-hypothesis word errors (once, {errors.size} pairs): {t_errors:.2f}s")
    print(f"vectorised grid, no pruning:   {timings[False]:.2f}s")
    print(f"vectorised grid, with pruning: {timings[True]:.2f}s")
    print(f"vectorised total (errors + best grid): {t_errors + t_grid:.2f}s")
    print(f"jiwer per point: {t_sample / len(sample) * 1000:.1f} ms x {len(points)} points = "
          f"{t_jiwer:.0f}s (EXTRAPOLATED from {len(sample)} timed points; WER identical on all of them)")
    print(f"speed-up grid only: {t_jiwer / t_grid:.0f}x; including the one-off error counts: "
          f"{t_jiwer / (t_errors + t_grid):.0f}x")


if __name__ == "__main__":
    main()
