"""python -m asrsweep.decoding.decode_frozen --config C --emissions <emissions/k> --lexicon L --arpa A --tokens T --best <decode/k>/best_on_dev.json --outdir <nbest/k> [--threads P]

Decode dev and test once with the ONE setting frozen on dev (best_on_dev.json of
`asrsweep.decoding.merge_sweep`); nothing is chosen here. The same search gives both outputs:
- the first-pass result: test.json (test WER/CER, S/D/I, the setting, greedy test WER/CER for
  reference, dev WER/CER as a reproduction check, `scoring` (score.normalize), and `oov`: the share
  of dev and test reference words not in the lexicon) and hyps_{dev,test}.tsv
  (utt_id ref hyp errors ref_words), from the best hypothesis of each utterance;
- the greedy (best-path) hypotheses: hyps_greedy_{dev,test}.tsv, the same columns, so every
  stage's per-utterance errors come from the same kind of file. ref and hyp are written as
  scored (after score.normalize), so errors and ref_words can be recounted from them;
- the n-best lists for LM rescoring: {dev,test}.tsv (utt_id rank hyp am_score ngram_score words
  tokens). rank 1 = the decoder's best; am_score: acoustic log-prob (natural log, flashlight's
  emittingModelScore); ngram_score: KenLM log10 incl. </s> (flashlight's lmScore); words: number
  of words in hyp; tokens: number of CTC tokens (collapsed, no blanks).
Config sections `nbest`: size (int) hypotheses per utterance at most (distinct word strings, best
first; the beam must be at least this wide to return them); `score`: normalize (see
asrsweep.decoding.scoring).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path

from asrsweep.core.common import UserError, cli_main, load_section, open_outdir, read_json, write_json_atomic
from asrsweep.core.tsv import write_tsv
from asrsweep.decoding.sweep_table import check_tokens, load_emissions
from asrsweep.decoding.decoder import Decoder, Hypothesis, Setting, greedy, make_setting
from asrsweep.decoding.scoring import Score, load_score_config, normalize_all, oov_rate, score

NBEST_COLUMNS = ["utt_id", "rank", "hyp", "am_score", "ngram_score", "words", "tokens"]
HYP_COLUMNS = ["utt_id", "ref", "hyp", "errors", "ref_words"]


@dataclass(frozen=True)
class NbestConfig:
    """Section `nbest`."""

    size: int = 16


def frozen_setting(best_path: Path) -> Setting:
    """The setting recorded in best_on_dev.json."""
    best = read_json(best_path)
    if "setting" not in best:
        raise UserError(f"{best_path}: no 'setting'; written by asrsweep.decoding.merge_sweep?")
    return make_setting(best["setting"], f"{best_path}: setting")


_STATE: dict = {}


def _nbest_task(u: int) -> tuple[int, list[Hypothesis]]:
    """N-best hypotheses of utterance #u (in a forked worker sharing the decoder)."""
    decoder, search = _STATE["decoder"], _STATE["search"]
    return u, decoder.decode(search, _STATE["logprobs"][u], nbest=_STATE["size"])


def nbest_lists(decoder: Decoder, setting: Setting, logprobs: list, size: int, threads: int) -> list[list[Hypothesis]]:
    """Per utterance, 1 to `size` hypotheses, best first (forked workers when threads > 1)."""
    _STATE.update(decoder=decoder, search=decoder.search(setting), logprobs=logprobs, size=size)
    out: list[list[Hypothesis]] = [[] for _ in logprobs]
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


def nbest_rows(utt_ids: list[str], lists: list[list[Hypothesis]]) -> list[dict]:
    """The n-best table rows."""
    return [{"utt_id": u, "rank": r, "hyp": h.text, "am_score": f"{h.am_score:.6f}",
             "ngram_score": f"{h.lm_score:.6f}", "words": len(h.words), "tokens": len(h.tokens)}
            for u, hyps in zip(utt_ids, lists) for r, h in enumerate(hyps, start=1)]


def hyp_rows(utt_ids, refs: list[str], hyps: list[str], result: Score) -> list[dict]:
    """hyps_*.tsv rows (refs and hyps as scored)."""
    return [{"utt_id": u, "ref": r, "hyp": h, "errors": e, "ref_words": n}
            for u, r, h, e, n in zip(utt_ids, refs, hyps, result.utt_errors, result.utt_words)]


def scored_hyps(path: Path, utt_ids, refs: list[str], hyps: list[str], normalize: str) -> Score:
    """Score `hyps` (normalised like `refs` already are) and write their hyps_*.tsv at `path`."""
    hyps = normalize_all(hyps, normalize)
    result = score(refs, hyps)
    write_tsv(path, HYP_COLUMNS, hyp_rows(utt_ids, refs, hyps, result))
    return result


def decode_split(decoder: Decoder, setting: Setting, blob: dict, size: int, threads: int, outdir: Path,
                 split: str, normalize: str = "none") -> tuple[Score, Score]:
    """Write the split's n-best list, 1-best and greedy hypotheses; (beam score, greedy score)."""
    lists = nbest_lists(decoder, setting, blob["logprobs"], size, threads)
    utt_ids = list(blob["utt_ids"])
    write_tsv(outdir / f"{split}.tsv", NBEST_COLUMNS, nbest_rows(utt_ids, lists))
    refs = normalize_all(blob["texts"], normalize)
    result = scored_hyps(outdir / f"hyps_{split}.tsv", utt_ids, refs, [h[0].text for h in lists], normalize)
    greedy_hyps = [greedy(lp, decoder.tokens).text for lp in blob["logprobs"]]
    return result, scored_hyps(outdir / f"hyps_greedy_{split}.tsv", utt_ids, refs, greedy_hyps, normalize)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m asrsweep.decoding.decode_frozen", description="Decode dev and test once with the setting frozen on dev: first-pass result and n-best lists.")
    p.add_argument("--config", required=True, help="stage config.json (sections nbest, score)")
    p.add_argument("--emissions", required=True, type=Path, help="dir with dev.pt and test.pt")
    p.add_argument("--lexicon", required=True, type=Path)
    p.add_argument("--arpa", required=True, type=Path)
    p.add_argument("--tokens", required=True, type=Path)
    p.add_argument("--best", required=True, type=Path, help="best_on_dev.json of merge_sweep")
    p.add_argument("--outdir", required=True, type=Path,
                   help="writes test.json, hyps_{dev,test}.tsv, hyps_greedy_{dev,test}.tsv, {dev,test}.tsv")
    p.add_argument("--threads", type=int, default=1, help="worker processes")
    return p.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    """Parse flags; decode dev and test with the frozen setting; write the results."""
    args = parse_args(argv)
    cfg = load_section(args.config, "nbest", NbestConfig)
    if not isinstance(cfg.size, int) or cfg.size < 1:
        raise UserError(f"{args.config}: nbest.size: {cfg.size!r}; need an integer >= 1")
    norm = load_score_config(args.config).normalize
    setting = frozen_setting(args.best)
    if setting.beam_size < cfg.size:
        print(f"decode_frozen: warning: beam_size {setting.beam_size} < nbest.size {cfg.size}", flush=True)
    open_outdir(args.outdir, None)
    decoder = Decoder(args.lexicon, args.arpa, args.tokens)
    out = {"setting": setting.as_dict(), "split": "test", "scoring": {"normalize": norm},
           "oov": {"against": "lexicon", "lexicon_words": len(decoder.words)}}
    for split in ("dev", "test"):
        start = time.perf_counter()
        blob = load_emissions(args.emissions, split)
        check_tokens(blob, decoder.tokens, str(args.emissions))
        result, greedy_result = decode_split(decoder, setting, blob, cfg.size, max(1, args.threads),
                                             args.outdir, split, norm)
        out["oov"][split] = oov_rate(list(blob["texts"]), decoder.words)
        if split == "dev":
            out["dev"] = {"wer": result.wer, "cer": result.cer}
        else:
            out.update(result.row())
            out["greedy"] = {"wer": greedy_result.wer, "cer": greedy_result.cer}
        print(f"decode_frozen: {split}: WER {result.wer:.4f} CER {result.cer:.4f} "
              f"(greedy WER {greedy_result.wer:.4f}) OOV {out['oov'][split]['rate']:.2%} "
              f"{len(blob['utt_ids'])} utts in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    write_json_atomic(args.outdir / "test.json", out)



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
