"""python -m asrsweep.decoding.train_ngram --config <stage>/config.json --text <data>/lm.txt --outdir <ngram/k>

Estimate the word n-gram LM for beam search: `<outdir>/lm.arpa`, interpolated modified
Kneser-Ney.  Config section `ngram`:
  order      (int, default 4)            n-gram order.
  estimator  ("builtin" | "lmplz", default "builtin")
             builtin: asrsweep.decoding.kneser_ney, pure Python, matches lmplz (< 1e-6 in log10 terms);
             lmplz: KenLM's `lmplz` (env ASRSWEEP_LMPLZ, else PATH), a UserError if missing.
Both use lmplz's --discount_fallback (0.5, 1, 1.5) for orders whose closed-form discounts fail
(small corpora); nothing is pruned.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from asrsweep.decoding import kneser_ney
from asrsweep.core.common import UserError, atomic_write, cli_main, load_section, record_command


@dataclass(frozen=True)
class NgramConfig:
    """Section `ngram` of the stage config."""

    order: int = 4
    estimator: str = "builtin"


def find_lmplz() -> str | None:
    """Path of the lmplz binary: $ASRSWEEP_LMPLZ, PATH, or tests/tools/build_lmplz.sh's cache."""
    env = os.environ.get("ASRSWEEP_LMPLZ")
    if env:
        return env if os.access(env, os.X_OK) else None
    found = shutil.which("lmplz")
    if found:
        return found
    cached = Path.home() / ".cache/asrsweep/kenlm-bin/bin/lmplz"
    return str(cached) if os.access(cached, os.X_OK) else None


def run_lmplz(lmplz: str, text: Path, order: int, out: Path) -> None:
    """Run `lmplz -o order -S 20% -T tmp --discount_fallback < text > out`."""
    tmpdir = os.environ.get("TMPDIR", "/tmp")
    cmd = [lmplz, "-o", str(order), "-S", "20%", "-T", tmpdir, "--discount_fallback"]
    with open(text, "rb") as src, open(out, "wb") as dst:
        proc = subprocess.run(cmd, stdin=src, stdout=dst, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise UserError(f"{text}: lmplz failed (exit {proc.returncode}): {' | '.join(tail)}")


def validate(cfg: NgramConfig, where: str) -> None:
    """Reject settings that cannot work, naming the key."""
    if not isinstance(cfg.order, int) or not 1 <= cfg.order <= 9:
        raise UserError(f"{where}: ngram.order: {cfg.order!r} is not an integer in 1..9")
    if cfg.estimator not in ("builtin", "lmplz"):
        raise UserError(f"{where}: ngram.estimator: {cfg.estimator!r}; use 'builtin' or 'lmplz'")


def train(cfg: NgramConfig, text: Path, out: Path) -> dict:
    """Write `out` (lm.arpa) from `text` with the configured estimator; returns a summary."""
    start = time.perf_counter()
    with atomic_write(out) as tmp:
        if cfg.estimator == "lmplz":
            lmplz = find_lmplz()
            if lmplz is None:
                raise UserError(
                    "ngram.estimator: 'lmplz' but no lmplz binary found (ASRSWEEP_LMPLZ, PATH, "
                    "~/.cache/asrsweep/kenlm-bin); build it with tests/tools/build_lmplz.sh "
                    "or use estimator 'builtin'")
            run_lmplz(lmplz, text, cfg.order, tmp)
        else:
            with open(text, encoding="utf-8") as handle:
                model = kneser_ney.estimate(handle, cfg.order)
            kneser_ney.write_arpa(model, tmp)
    return {"estimator": cfg.estimator, "order": cfg.order, "seconds": time.perf_counter() - start}


def run(argv: list[str] | None = None) -> None:
    """Parse flags and write <outdir>/lm.arpa."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="stage config.json (section ngram)")
    parser.add_argument("--text", required=True, type=Path, help="LM training text, one sentence a line")
    parser.add_argument("--outdir", required=True, type=Path, help="writes lm.arpa here")
    args = parser.parse_args(argv)
    cfg = load_section(args.config, "ngram", NgramConfig)
    validate(cfg, args.config)
    if not args.text.is_file():
        raise UserError(f"{args.text}: file not found (LM text from the data stage)")
    args.outdir.mkdir(parents=True, exist_ok=True)
    record_command(args.outdir)
    info = train(cfg, args.text, args.outdir / "lm.arpa")
    print(f"train_ngram: {info['estimator']} order {info['order']} in {info['seconds']:.1f}s "
          f"-> {args.outdir / 'lm.arpa'}", flush=True)



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
