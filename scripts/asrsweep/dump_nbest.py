"""python -m asrsweep.dump_nbest --config C --emissions <emissions/k> --lexicon L --arpa A --tokens T --best <decode/k>/best_on_dev.json --outdir <nbest/k> [--threads P]

N-best lists for LM rescoring, decoded with the setting frozen on dev (best_on_dev.json).
Config section `nbest`: size (int, default 10) hypotheses per utterance at most (distinct word
strings, best first; the beam must be at least this wide to return them).
Writes <outdir>/{dev,test}.tsv: utt_id rank hyp am_score ngram_score words tokens
  rank: 1 = the decoder's best; am_score: acoustic log-prob (natural log, flashlight's
  emittingModelScore); ngram_score: KenLM log10 incl. </s> (flashlight's lmScore);
  words: number of words in hyp; tokens: number of CTC tokens (collapsed, no blanks).
"""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass

from asrsweep.common import UserError, cli_main, load_section, open_outdir
from asrsweep.decode_sweep import check_tokens, load_emissions, write_tsv
from asrsweep.decode_test import frozen_parser, frozen_setting
from asrsweep.decoder import Decoder, Setting

COLUMNS = ["utt_id", "rank", "hyp", "am_score", "ngram_score", "words", "tokens"]


@dataclass(frozen=True)
class NbestConfig:
    """Section `nbest`."""

    size: int = 10


_STATE: dict = {}


def _nbest_task(u: int) -> tuple[int, list]:
    """N-best hypotheses of utterance #u (in a forked worker sharing the decoder)."""
    decoder, search = _STATE["decoder"], _STATE["search"]
    return u, decoder.decode(search, _STATE["logprobs"][u], nbest=_STATE["size"])


def nbest_lists(decoder: Decoder, setting: Setting, logprobs: list, size: int, threads: int) -> list[list]:
    """Per utterance, up to `size` Hypothesis objects, best first."""
    _STATE.update(decoder=decoder, search=decoder.search(setting), logprobs=logprobs, size=size)
    out: list[list] = [[] for _ in logprobs]
    try:
        if threads <= 1:
            results = map(_nbest_task, range(len(logprobs)))
            for u, hyps in results:
                out[u] = hyps
        else:
            with mp.get_context("fork").Pool(threads) as pool:
                for u, hyps in pool.imap_unordered(_nbest_task, range(len(logprobs)), chunksize=4):
                    out[u] = hyps
    finally:
        _STATE.clear()
    return out


def nbest_rows(utt_ids: list[str], lists: list[list]) -> list[dict]:
    """The n-best table rows."""
    return [{"utt_id": u, "rank": r, "hyp": h.text, "am_score": f"{h.am_score:.6f}",
             "ngram_score": f"{h.lm_score:.6f}", "words": len(h.words), "tokens": len(h.tokens)}
            for u, hyps in zip(utt_ids, lists) for r, h in enumerate(hyps, start=1)]


def main(argv: list[str] | None = None) -> None:
    """Parse flags; write <outdir>/dev.tsv and test.tsv."""
    args = frozen_parser(__doc__, "stage config.json (section nbest)", "writes dev.tsv and test.tsv").parse_args(argv)
    cfg = load_section(args.config, "nbest", NbestConfig)
    if not isinstance(cfg.size, int) or cfg.size < 1:
        raise UserError(f"{args.config}: nbest.size: {cfg.size!r}; need an integer >= 1")
    setting = frozen_setting(args.best)
    if setting.beam_size < cfg.size:
        print(f"dump_nbest: warning: beam_size {setting.beam_size} < nbest.size {cfg.size}", flush=True)
    open_outdir(args.outdir, None)
    decoder = Decoder(args.lexicon, args.arpa, args.tokens)
    for split in ("dev", "test"):
        start = time.perf_counter()
        blob = load_emissions(args.emissions, split)
        check_tokens(blob, decoder.tokens, str(args.emissions))
        lists = nbest_lists(decoder, setting, blob["logprobs"], cfg.size, max(1, args.threads))
        write_tsv(args.outdir / f"{split}.tsv", nbest_rows(list(blob["utt_ids"]), lists), COLUMNS)
        print(f"dump_nbest: {split}: {len(lists)} utts, {sum(map(len, lists))} hyps in "
              f"{time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    cli_main(main)
