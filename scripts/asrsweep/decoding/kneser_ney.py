"""Interpolated modified Kneser-Ney n-gram estimation that reproduces KenLM's `lmplz`.

Library module (no CLI): `python -m asrsweep.decoding.train_ngram --config C --text lm.txt --outdir D`
calls `estimate(sentences, order)` and `write_arpa(model, path)`.

What lmplz does, and so what this module does (lm/builder/{corpus_count,adjust_counts,
initial_probabilities,interpolate}.cc of kenlm 0.3.0):
- Each sentence is `<s> w1 .. wm </s>`; `<s>`, `</s>`, `<unk>` inside the text are whitespace.
- Highest order N: raw counts of every N-gram window.  Lower orders k < N: an n-gram that
  starts with `<s>` keeps its raw count (nothing can precede `<s>`); any other gets its
  continuation count, the number of distinct words seen to its left among the (k+1)-grams.
  Unigrams `<unk>` and `<s>` get count 0.
- Discounts D1, D2, D3+ per order from the counts-of-counts n1..n4 of those adjusted counts
  (Chen & Goodman eq. 26).  When an n_j is 0 or a D_j falls outside [0, j], that order uses the
  fallback discounts (lmplz --discount_fallback: 0.5, 1, 1.5).
- Per context c: p'(w|c) = (a(cw) - D(a(cw))) / sum_w a(cw); gamma(c) = sum_j D_j n_j(c) / sum.
  Interpolation: p(w|c) = p'(w|c) + gamma(c) p(w|c'), bottoming out at the uniform 1/(|V|-1)
  (|V| counts `<unk>`, not `<s>`).  `<unk>` has p' = 0 (only the interpolated mass); `<s>` has
  p = 1 (log10 0), as lmplz writes it.
- Backoff of an n-gram = log10 gamma of it as a context; 0 for the highest order, for n-grams
  ending in `</s>` or `<unk>`, and for n-grams that are no context.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # lmplz's --discount_fallback default


@dataclass
class NgramModel:
    """An estimated back-off model.

    `orders[k-1]` maps a k-gram (tuple of word ids) to (log10 prob, log10 backoff); `vocab[id]`
    is the word; `discounts[k-1]` = (D1, D2, D3+) used for order k.
    """

    vocab: list[str]
    orders: list[dict[tuple[int, ...], tuple[float, float]]]
    discounts: list[tuple[float, float, float]] = field(default_factory=list)


def raw_counts(sentences: Iterable[str], order: int, index: dict[str, int], vocab: list[str]) -> list[Counter]:
    """Raw counts per order, `[order][k-gram] -> count`, streaming over the sentences.

    Each sentence becomes ids `<s> w.. </s>` (`vocab` grows in order of first appearance, `<s>`,
    `</s>`, `<unk>` in the text are whitespace); the highest order counts every window, a lower
    order k only the sentence's `<s>`-initial k-gram: lmplz pads with N-1 `<s>` and collapses a
    window holding two or more to its suffix from the last `<s>`, which keeps its raw count.
    Nothing per sentence is kept, so memory grows with the distinct n-grams, not the corpus;
    `Counter.update` over `zip` windows counts in C.
    """
    raw: list[Counter] = [Counter() for _ in range(order)]
    top, prefixes = raw[order - 1], raw[:order - 1]
    for line in sentences:
        ids = [1]
        for word in line.split():
            wid = index.get(word)
            if wid is None:
                wid = index[word] = len(vocab)
                vocab.append(word)
            elif wid < 3:  # <unk> <s> </s> (ids 0-2) in the text
                continue
            ids.append(wid)
        ids.append(2)
        n = len(ids)
        top.update(zip(*(ids[j:] for j in range(order))) if order > 1 else ((i,) for i in ids))
        for k in range(2, min(order, n + 1)):
            prefixes[k - 1][tuple(ids[:k])] += 1
    return raw


def adjusted_counts(raw: list[Counter], order: int) -> list[dict[tuple[int, ...], int]]:
    """Adjusted counts per order from `raw_counts`, as lmplz's AdjustCounts: `[order][k-gram] -> count`."""
    counts: list[dict] = [dict() for _ in range(order)]
    counts[order - 1] = dict(raw[order - 1])
    for k in range(order - 1, 0, -1):
        cont: Counter = Counter(gram[1:] for gram in counts[k] if len(gram) > 1)
        cont.update(raw[k - 1])  # <s>-initial grams are never suffixes: no overlap with cont
        counts[k - 1] = dict(cont)
    counts[0][(0,)] = 0
    counts[0][(1,)] = 0
    return counts


def discounts_for(counts: dict[tuple[int, ...], int], fallback=FALLBACK_DISCOUNTS) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the counts-of-counts n1..n4 (Chen & Goodman eq. 26), else `fallback`.

    `fallback=None` raises ValueError instead, like lmplz without --discount_fallback.
    """
    n = Counter(c for c in counts.values() if 1 <= c <= 4)
    try:
        if any(n[j] == 0 for j in (1, 2, 3)):
            raise ValueError(f"no n-grams with adjusted count {[j for j in (1, 2, 3) if n[j] == 0]}")
        y = n[1] / (n[1] + 2.0 * n[2])
        out = tuple(j - (j + 1) * y * n[j + 1] / n[j] for j in (1, 2, 3))
        if any(not 0.0 <= d <= j for j, d in zip((1, 2, 3), out)):
            raise ValueError(f"discounts out of range: {out}")
        return out  # type: ignore[return-value]
    except ValueError:
        if fallback is None:
            raise
        return tuple(fallback)  # type: ignore[return-value]


def _context_stats(counts: dict, disc: tuple[float, float, float]) -> dict[tuple, tuple[float, float]]:
    """Per context (all but the last word): (denominator = sum of counts, gamma)."""
    denom: dict[tuple, int] = defaultdict(int)
    mass: dict[tuple, float] = defaultdict(float)
    for gram, c in counts.items():
        ctx = gram[:-1]
        denom[ctx] += c
        if c > 0:
            mass[ctx] += disc[min(c, 3) - 1]
    return {ctx: (d, mass[ctx] / d) for ctx, d in denom.items() if d > 0}


def estimate(sentences: Iterable[str], order: int, fallback=FALLBACK_DISCOUNTS) -> NgramModel:
    """Estimate an interpolated modified Kneser-Ney model of `order` from normalised sentences."""
    if order < 1:
        raise ValueError(f"order must be >= 1, got {order}")
    vocab = [UNK, BOS, EOS]
    index = {w: i for i, w in enumerate(vocab)}
    counts = adjusted_counts(raw_counts(sentences, order, index, vocab), order)
    discounts = [discounts_for(c, fallback) for c in counts]
    stats = [_context_stats(c, d) for c, d in zip(counts, discounts)]
    uniform = 1.0 / (len(vocab) - 1)  # <unk> included, <s> excluded (lmplz)
    probs: list[dict[tuple, float]] = []
    for k, (cnt, disc, st) in enumerate(zip(counts, discounts, stats), start=1):
        level: dict[tuple, float] = {}
        for gram, c in cnt.items():
            denom, gamma = st[gram[:-1]]
            lower = probs[k - 2][gram[1:]] if k > 1 else uniform
            level[gram] = max(c - disc[min(c, 3) - 1], 0.0) / denom + gamma * lower if c else gamma * lower
        probs.append(level)
    probs[0][(1,)] = 1.0  # <s>: scored as certain, like lmplz, so it never costs anything
    orders = []
    log10 = math.log10
    for k, level in enumerate(probs, start=1):
        bo = _backoffs(stats[k] if k < order else {})
        orders.append({g: (min(0.0, log10(p)), bo.get(g, 0.0)) for g, p in level.items()})
    return NgramModel(vocab=vocab, orders=orders, discounts=discounts)


def _backoffs(next_stats: dict[tuple, tuple[float, float]]) -> dict[tuple, float]:
    """log10 gamma of every context of the next order; one ending in <unk>/</s> keeps 0 (absent)."""
    return {ctx: math.log10(gamma) for ctx, (_, gamma) in next_stats.items() if ctx and ctx[-1] not in (0, 2)}


def write_arpa(model: NgramModel, path: str | Path) -> None:
    """Write `model` as an ARPA file at `path` (not atomic: the caller passes a temp path)."""
    vocab = model.vocab
    top = len(model.orders)
    with open(path, "w", encoding="utf-8") as out:
        out.write("\\data\\\n")
        for k, level in enumerate(model.orders, start=1):
            out.write(f"ngram {k}={len(level)}\n")
        for k, level in enumerate(model.orders, start=1):
            out.write(f"\n\\{k}-grams:\n")
            word = vocab.__getitem__
            grams = sorted(level)
            for start in range(0, len(grams), 65536):  # one write per chunk of lines
                chunk = grams[start:start + 65536]
                if k < top:
                    lines = [f"{level[g][0]:.8g}\t{' '.join(map(word, g))}\t{level[g][1]:.8g}\n" for g in chunk]
                else:
                    lines = [f"{level[g][0]:.8g}\t{' '.join(map(word, g))}\n" for g in chunk]
                out.write("".join(lines))
        out.write("\n\\end\\\n")


def read_arpa(path: str | Path) -> dict[tuple[str, ...], tuple[float, float]]:
    """Read an ARPA file into {words tuple: (log10 prob, log10 backoff)} (for tests/comparisons)."""
    out: dict[tuple[str, ...], tuple[float, float]] = {}
    in_grams = False
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            in_grams = True
            continue
        if not line.strip() or line.startswith("\\"):
            continue
        if in_grams:
            parts = line.split("\t")
            bo = float(parts[2]) if len(parts) > 2 else 0.0
            out[tuple(parts[1].split(" "))] = (float(parts[0]), bo)
    return out
