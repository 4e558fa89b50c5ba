"""Vectorised WER over a grid of rescoring weights (library for `python -m asrsweep.rescoring.rescore`).

Not a step itself. The idea (icefall's "all LM scales in one pass", taken one step further):
the word-error count of every hypothesis against its reference is computed ONCE; a grid point
then only changes which hypothesis wins per utterance, so its corpus WER is
`sum(errors[u, argmax_h score[g, u, h]]) / total_ref_words` — integer sums, hence exactly the
WER jiwer gives for the same choices (jiwer's WER = minimal word edit distance S+D+I summed
over utterances / reference words).

Shapes: U utterances, H hypotheses per utterance (padded), F score features, G grid points.
"""

from __future__ import annotations

import numpy as np
from rapidfuzz.distance import Levenshtein

# Padding hypotheses get this feature-0 (acoustic) score so they never win: finite, so that
# multiplying by a weight of 0 never produces NaN.
PAD_SCORE = -1e30
# Grid points evaluated at once: bounds the temporary [chunk, U, H] float64 array.
DEFAULT_CHUNK_ELEMENTS = 2_000_000


def word_errors(refs: list[str], hyps: list[str]) -> np.ndarray:
    """Word edit distance (S + D + I) of each `hyps[i]` against `refs[i]` -> int64 [N].

    Same count as jiwer's alignment (minimal Levenshtein distance on whitespace tokens).
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return np.fromiter(
        (Levenshtein.distance(r.split(), h.split()) for r, h in zip(refs, hyps)),
        dtype=np.int64,
        count=len(refs),
    )


def prune_dominated(features: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Keep-mask [U, H]: drop hypotheses that lose to another at EVERY weight vector in a box.

    features: [U, H, F] (feature 0 = acoustic score, weight fixed to 1); lo, hi: [F] box of
    weights. Score is linear in the weights, so "h2 beats h1 everywhere in the box" is decided
    at the box's worst corner per feature. A margin keeps the pruning exact: a hypothesis is
    dropped only if it can never win, not even by a rounding tie, so the first maximum over the
    kept ones is the first maximum over all.
    """
    n_utt, n_hyp, _ = features.shape
    keep = np.ones((n_utt, n_hyp), dtype=bool)
    scale = np.abs(features).clip(max=1e6).sum(axis=2).max(axis=1, keepdims=True)  # [U, 1]
    for h in range(n_hyp):
        diff = features - features[:, h : h + 1, :]  # [U, H, F]: other minus h
        worst = np.minimum(diff * lo, diff * hi).sum(axis=2)  # [U, H] min over the box
        beats = worst > 1e-9 * (1.0 + scale) * (1.0 + np.abs(hi).max())
        beats[:, h] = False
        keep[:, h] = ~beats.any(axis=1)
    return keep


def compact(features: np.ndarray, errors: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Move kept hypotheses to the front (order preserved) and cut the padding.

    features [U, H, F], errors [U, H], keep [U, H] -> features [U, H', F], errors [U, H'] with
    H' = max kept per utterance; removed slots become padding that never wins.
    """
    order = np.argsort(~keep, axis=1, kind="stable")  # kept first, original order kept
    width = int(keep.sum(axis=1).max())
    order = order[:, :width]
    feats = np.take_along_axis(features, order[:, :, None], axis=1).copy()
    errs = np.take_along_axis(errors, order, axis=1)
    kept = np.take_along_axis(keep, order, axis=1)
    feats[~kept] = 0.0
    feats[..., 0][~kept] = PAD_SCORE
    return feats, errs


def linear_scores(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Scores [G, ...] = features[..., 0] + sum_f weights[:, f] * features[..., f], f = 1.. F-1.

    features [..., F], weights [G, F-1] (the acoustic weight is 1). Summed left to right with
    elementwise ops so that every code path rounds identically (BLAS may reorder sums).
    """
    extra = (1,) * (features.ndim - 1)
    out = np.broadcast_to(features[..., 0], (len(weights),) + features.shape[:-1]).copy()
    for f in range(1, features.shape[-1]):
        out += weights[:, f - 1].reshape((-1,) + extra) * features[..., f]
    return out


def choose(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Reference selection: winning hypothesis per grid point and utterance -> int64 [G, U].

    features [U, H, F], weights [G, F-1] (acoustic weight 1). Ties go to the lowest index
    (np.argmax takes the first maximum), i.e. to the better first-pass rank. Brute force:
    used by the tests and the benchmark to check `product_choices`.
    """
    return np.stack([linear_scores(features, w[None])[0].argmax(axis=1) for w in weights])


def product_grid(axes: list[np.ndarray]) -> np.ndarray:
    """All combinations of the weight axes -> [G, len(axes)], the last axis varying fastest."""
    mesh = np.meshgrid(*[np.asarray(a, dtype=np.float64) for a in axes], indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _word_groups(words: np.ndarray) -> dict:
    """Group each utterance's hypotheses by word count (the last feature).

    words [U, H] -> sort order [U, H], flat segment starts [S], segment utterance/slot [S],
    dense group word counts [K, U]. For fixed other weights, the best hypothesis of a group
    does not depend on the length weight, so the length axis only chooses among K groups.
    """
    n_utt, n_hyp = words.shape
    order = np.argsort(words, axis=1, kind="stable")
    flat = np.take_along_axis(words, order, axis=1).ravel()
    new = np.ones(flat.shape, dtype=bool)
    new[1:] = flat[1:] != flat[:-1]
    new[::n_hyp] = True
    starts = np.flatnonzero(new)
    seg_u = starts // n_hyp
    first_of_utt = np.searchsorted(starts, seg_u * n_hyp)
    seg_k = np.arange(len(starts)) - first_of_utt
    dense_words = np.zeros((int(seg_k.max()) + 1, n_utt))  # [K, U]: reductions run over K
    dense_words[seg_k, seg_u] = flat[starts]
    return {"order": order, "starts": starts, "seg_u": seg_u, "seg_k": seg_k, "words": dense_words}


def product_choices(features: np.ndarray, axes: list[np.ndarray], budget: int = 4_000_000):
    """Yield (first grid index, picks [n, U]) over the product grid of `axes`, in order.

    features [U, H, F] with F = 1 + len(axes); feature 0 is acoustic (weight 1), the last is
    the word count, weighted by the last axis. picks are hypothesis indices, exactly those of
    `choose(features, product_grid(axes))` (same arithmetic, first maximum on ties).
    """
    n_utt, n_hyp, _ = features.shape
    grp = _word_groups(features[..., -1])
    sorted_feats = np.take_along_axis(features[..., :-1], grp["order"][:, :, None], axis=1)
    flat = sorted_feats.reshape(n_utt * n_hyp, -1)  # [U*H, F-1]
    h_flat = grp["order"].ravel()
    seg_len = np.diff(np.append(grp["starts"], n_utt * n_hyp))
    outer, last = product_grid(axes[:-1]), np.asarray(axes[-1], dtype=np.float64)
    n_groups = grp["words"].shape[0]
    step = max(1, budget // max(n_utt * n_hyp, len(last) * n_utt * n_groups))
    for start in range(0, len(outer), step):
        base = linear_scores(flat, outer[start : start + step])  # [g, U*H]
        seg_max = np.maximum.reduceat(base, grp["starts"], axis=1)  # [g, S]
        is_max = base == np.repeat(seg_max, seg_len, axis=1)
        seg_h = np.minimum.reduceat(np.where(is_max, h_flat, n_hyp), grp["starts"], axis=1)
        g_score = np.full((len(base), n_groups, n_utt), PAD_SCORE)
        g_score[:, grp["seg_k"], grp["seg_u"]] = seg_max
        g_hyp = np.full((len(base), n_groups, n_utt), n_hyp)
        g_hyp[:, grp["seg_k"], grp["seg_u"]] = seg_h
        scores = g_score[:, None] + last[None, :, None, None] * grp["words"]  # [g, C, K, U]
        best = scores.max(axis=2, keepdims=True)
        picks = np.where(scores == best, g_hyp[:, None], n_hyp).min(axis=2)  # [g, C, U]
        yield start * len(last), picks.reshape(-1, n_utt)


def grid_errors(features: np.ndarray, errors: np.ndarray, axes: list[np.ndarray], prune: bool = True) -> np.ndarray:
    """Total word errors of the corpus at each point of the product grid -> int64 [G].

    features [U, H, F] (padding rows: feature 0 = PAD_SCORE, others 0), errors [U, H] per
    hypothesis, axes: F-1 weight lists (product order as `product_grid`). With `prune`,
    hypotheses that cannot win anywhere in the grid's bounding box are dropped first (exact).
    """
    if prune:
        lo = np.array([1.0] + [float(np.min(a)) for a in axes])
        hi = np.array([1.0] + [float(np.max(a)) for a in axes])
        features, errors = compact(features, errors, prune_dominated(features, lo, hi))
    total = np.empty(int(np.prod([len(a) for a in axes])), dtype=np.int64)
    rows = np.arange(features.shape[0])
    for start, picks in product_choices(features, axes):
        total[start : start + len(picks)] = errors[rows, picks].sum(axis=1)
    return total
