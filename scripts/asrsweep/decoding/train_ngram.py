"""python -m asrsweep.decoding.train_ngram --config <stage>/config.json --text <data>/lm.txt --eval <data>/dev.tsv <data>/test.tsv --outdir <ngram/k>

Estimate the word n-gram LM for beam search: `<outdir>/lm.arpa`, interpolated modified
Kneser-Ney, `<outdir>/sentences.txt` (the sentences it was estimated from, which make_lexicon's
token n-gram reads) and `<outdir>/ngram.json` (settings, estimator seconds, where the text came from and
how much of it occurs in dev/test). Config section `ngram` (descriptions and defaults:
workflow/schemas/recipe.schema.yaml):
  order      n-gram order.
  estimator  builtin: asrsweep.decoding.kneser_ney, pure Python, matches lmplz (< 1e-6 in log10 terms);
             lmplz: KenLM's `lmplz` (env ASRSWEEP_LMPLZ, else PATH), a UserError if missing.
  text, text_mode, drop_eval_sentences
             the user's own text files (plain or .gz), normalised like the transcripts
             (`data.normalize`) and appended to or replacing lm.txt; sentences found in the --eval
             transcripts are counted and, by default, removed (asrsweep.data.lm_text).
Both estimators use lmplz's --discount_fallback (0.5, 1, 1.5) for orders whose closed-form
discounts fail (small corpora); nothing is pruned.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

from asrsweep.core.common import (UserError, atomic_write, cli_main, load_section, read_json, record_command,
                                   write_json_atomic, write_text_atomic)
from asrsweep.data import lm_text
from asrsweep.decoding import kneser_ney


@dataclasses.dataclass(frozen=True)
class NgramConfig:
    """Section `ngram` of the stage config."""

    order: int = 4
    estimator: str = "builtin"
    text: tuple[str, ...] = ()
    text_mode: str = "append"
    drop_eval_sentences: bool = True


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


def run_lmplz(lmplz: str, sentences: list[str], order: int, out: Path) -> None:
    """Run `lmplz -o order -S 20% -T tmp --discount_fallback`, the sentences on its stdin, into `out`."""
    tmpdir = os.environ.get("TMPDIR", "/tmp")
    cmd = [lmplz, "-o", str(order), "-S", "20%", "-T", tmpdir, "--discount_fallback"]
    with open(out, "wb") as dst:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=dst, stderr=subprocess.PIPE)
        _, err = proc.communicate("".join(s + "\n" for s in sentences).encode())
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        raise UserError(f"lmplz failed (exit {proc.returncode}): {' | '.join(tail)}")


def validate(cfg: NgramConfig, where: str) -> None:
    """Reject settings that cannot work, naming the key."""
    if not isinstance(cfg.order, int) or not 1 <= cfg.order <= 9:
        raise UserError(f"{where}: ngram.order: {cfg.order!r} is not an integer in 1..9")
    if cfg.estimator not in ("builtin", "lmplz"):
        raise UserError(f"{where}: ngram.estimator: {cfg.estimator!r}; use 'builtin' or 'lmplz'")
    lm_text.check_mode(cfg.text_mode, "ngram")


def train(cfg: NgramConfig, sentences: list[str], out: Path) -> dict:
    """Write `out` (lm.arpa) from `sentences` with the configured estimator; returns a summary."""
    start = time.perf_counter()
    with atomic_write(out) as tmp:
        if cfg.estimator == "lmplz":
            lmplz = find_lmplz()
            if lmplz is None:
                raise UserError(
                    "ngram.estimator: 'lmplz' but no lmplz binary found (ASRSWEEP_LMPLZ, PATH, "
                    "~/.cache/asrsweep/kenlm-bin); build it with tests/tools/build_lmplz.sh "
                    "or use estimator 'builtin'")
            run_lmplz(lmplz, sentences, cfg.order, tmp)
        else:
            kneser_ney.write_arpa(kneser_ney.estimate(sentences, cfg.order), tmp)
    return {"estimator": cfg.estimator, "order": cfg.order, "seconds": time.perf_counter() - start}


def run(argv: list[str] | None = None) -> None:
    """Parse flags and write <outdir>/lm.arpa."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="stage config.json (section ngram)")
    parser.add_argument("--text", required=True, type=Path, help="LM training text, one sentence a line")
    parser.add_argument("--eval", nargs="*", type=Path, default=[],
                        help="dev/test manifests (column text): their sentences are counted in, and dropped from, ngram.text")
    parser.add_argument("--outdir", required=True, type=Path, help="writes lm.arpa, sentences.txt and ngram.json here")
    args = parser.parse_args(argv)
    cfg = load_section(args.config, "ngram", NgramConfig)
    validate(cfg, args.config)
    norm = lm_text.normalize_config(read_json(args.config).get("data"))
    text = lm_text.gather(args.text, cfg.text, cfg.text_mode, cfg.drop_eval_sentences,
                          lm_text.eval_sentences(args.eval), norm, "ngram")
    print(lm_text.summary_line(text.report, "ngram"), flush=True)
    args.outdir.mkdir(parents=True, exist_ok=True)
    record_command(args.outdir)
    info = train(cfg, text.sentences, args.outdir / "lm.arpa")
    # The exact sentences lm.arpa was estimated from: make_lexicon's token n-gram reads them.
    write_text_atomic(args.outdir / "sentences.txt", "".join(f"{s}\n" for s in text.sentences))
    write_json_atomic(args.outdir / "ngram.json", {**info, "text": text.report, "config": dataclasses.asdict(cfg)})
    print(f"train_ngram: {info['estimator']} order {info['order']} in {info['seconds']:.1f}s "
          f"-> {args.outdir / 'lm.arpa'}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
