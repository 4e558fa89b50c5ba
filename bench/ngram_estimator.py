"""python bench/ngram_estimator.py [--sentences 1000000] [--order 4] [--vocab 20000] [--seed 0]

Time the builtin Kneser-Ney estimator (asrsweep.decoding.kneser_ney: estimate + write_arpa, as
`ngram.estimator: builtin` runs it) against KenLM's `lmplz` (as `ngram.estimator: lmplz` runs it:
`-S 20% --discount_fallback`) side by side on one synthetic corpus, and print both times, the
ratio, peak memory, and whether the two ARPA files agree (largest log10 difference over every
n-gram). lmplz is found through ASRSWEEP_LMPLZ, PATH or tests/tools/build_lmplz.sh's cache
(`bash tests/tools/build_lmplz.sh` builds it, ~3 min); without one only the builtin is timed.

The corpus is "large LM text"-like: Zipf-distributed words over --vocab types with some bigram
structure, 1-20 words a sentence (mean ~10), so distinct n-grams grow with the corpus as they do
in real text (the demo grammar's few hundred words would saturate them).
"""

from __future__ import annotations

import argparse
import itertools
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asrsweep.decoding import kneser_ney
from asrsweep.decoding.train_ngram import find_lmplz


def corpus(n: int, vocab: int, seed: int) -> list[str]:
    """`n` Zipf-ish sentences of 1..20 words; 60 % of the words follow from the previous one."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocab)]
    cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(vocab)))
    out = []
    for _ in range(n):
        length = rng.randint(1, 20)
        draws = rng.choices(range(vocab), cum_weights=cum, k=length)
        sent = [draws[0]]
        for d in draws[1:]:
            sent.append((sent[-1] * 7 + d % 4) % vocab if rng.random() < 0.6 else d)
        out.append(" ".join(words[i] for i in sent))
    return out


def peak_rss_mb(who: int) -> float:
    """Peak resident memory so far of this process (RUSAGE_SELF) or its children, in MB."""
    return resource.getrusage(who).ru_maxrss / 1024


def builtin(sentences: list[str], order: int, out: Path) -> float:
    start = time.perf_counter()
    kneser_ney.write_arpa(kneser_ney.estimate(sentences, order), out)
    return time.perf_counter() - start


def lmplz(binary: str, text: Path, order: int, out: Path) -> float:
    start = time.perf_counter()
    with open(text, "rb") as src, open(out, "wb") as dst:
        subprocess.run([binary, "-o", str(order), "-S", "20%", "-T", tempfile.gettempdir(), "--discount_fallback"],
                       stdin=src, stdout=dst, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def max_difference(a: Path, b: Path) -> tuple[float, int]:
    """(largest |log10 prob or backoff| difference, n-grams in only one file) between two ARPA files."""
    ga, gb = kneser_ney.read_arpa(a), kneser_ney.read_arpa(b)
    worst = max((max(abs(ga[g][0] - gb[g][0]), abs(ga[g][1] - gb[g][1])) for g in ga.keys() & gb.keys()), default=0.0)
    return worst, len(ga.keys() ^ gb.keys())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--order", type=int, default=4, help="n-gram order (ngram.order's default is 4)")
    parser.add_argument("--vocab", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-compare", action="store_true", help="skip reading both ARPA files back")
    args = parser.parse_args()
    start = time.perf_counter()
    sents = corpus(args.sentences, args.vocab, args.seed)
    tokens = sum(len(s.split()) for s in sents)
    print(f"corpus: {len(sents):,} sentences, {tokens:,} words, {args.vocab:,}-word vocabulary "
          f"(generated in {time.perf_counter() - start:.1f}s); order {args.order}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "text.txt").write_text("".join(s + "\n" for s in sents))
        binary = find_lmplz()
        t_lmplz = lmplz(binary, tmp / "text.txt", args.order, tmp / "lmplz.arpa") if binary else None
        if binary:
            print(f"lmplz:   {t_lmplz:8.1f} s  (peak {peak_rss_mb(resource.RUSAGE_CHILDREN):,.0f} MB)", flush=True)
        else:
            print("lmplz:   not found (ASRSWEEP_LMPLZ, PATH, or bash tests/tools/build_lmplz.sh)", flush=True)
        t_builtin = builtin(sents, args.order, tmp / "builtin.arpa")
        print(f"builtin: {t_builtin:8.1f} s  (peak {peak_rss_mb(resource.RUSAGE_SELF):,.0f} MB, corpus included)",
              flush=True)
        if binary:
            print(f"ratio builtin / lmplz: {t_builtin / t_lmplz:.1f}x", flush=True)
            if not args.no_compare:
                worst, only_one = max_difference(tmp / "builtin.arpa", tmp / "lmplz.arpa")
                print(f"same model: largest log10 difference {worst:.2e}, n-grams in only one file: {only_one}")


if __name__ == "__main__":
    sys.exit(main())
