"""python -m asrsweep.decoding.decode_sweep --config C --emissions <emissions/k> --lexicon L --arpa A --tokens T --shard i --num-shards n --threads P --out <decode/k>/shards/i-of-n.tsv

Beam-search sweep over decoder settings on the DEV split only (test is never read here).
The setting list comes from config section `decode` (see `sweep_space.DecodeConfig`) and is deterministic;
shard i takes settings i::n, and shard 0 also writes the `greedy` row.  KenLM and the lexicon
trie are loaded once; P worker processes (forked, so they share them) decode (setting, chunk of
utterances) tasks; one emission pass serves every setting (icefall's decode.py habit).
Output: one row per setting (columns `sweep_table.COLUMNS`: the setting's index and knobs, then
its dev scores), merged into sweep.tsv by asrsweep.decoding.merge_sweep. Scores are counted after
section `score`'s normalize (asrsweep.decoding.scoring), on references and hypotheses alike.
Methods halving and tpe (asrsweep.decoding.search) search in this one job (--num-shards 1):
their decodes go through the same workers, and each row says the share of dev it was scored on.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import time
from pathlib import Path

import numpy as np

from asrsweep.core.common import UserError, cli_main, record_command
from asrsweep.core.tsv import write_tsv
from asrsweep.decoding.decoder import Decoder, Setting, greedy
from asrsweep.decoding.scoring import load_score_config, normalize_all, score
from asrsweep.decoding.search import successive_halving, tpe_search
from asrsweep.decoding.sweep_space import (SEARCHES, DecodeConfig, check_ranges, load_decode_config,
                                           sweep_settings)
from asrsweep.decoding.sweep_table import COLUMNS, check_tokens, load_emissions, setting_row

# Worker state: set in the parent before forking, so workers share the LM, trie and emissions.
_STATE: dict = {}


def _decode_task(task: tuple[int, int, int]) -> tuple[int, int, list[str], float]:
    """Decode utterances [lo, hi) with setting #si; returns (si, lo, hyps, seconds)."""
    si, lo, hi = task
    decoder, setting, logprobs = _STATE["decoder"], _STATE["settings"][si], _STATE["logprobs"]
    start = time.perf_counter()
    search = decoder.search(setting)
    hyps = [decoder.decode(search, logprobs[u])[0].text for u in range(lo, hi)]
    return si, lo, hyps, time.perf_counter() - start


def run_settings(decoder: Decoder, settings: list[Setting], logprobs: list[np.ndarray],
                 threads: int, normalize: str = "none") -> list[tuple[list[str], float]]:
    """(hyps as scored: after score.normalize, decode seconds) per setting, using `threads` forked workers."""
    _STATE.update(decoder=decoder, settings=settings, logprobs=logprobs)
    n_utts = len(logprobs)
    chunks = 1 if threads <= 1 else max(1, math.ceil(2 * threads / max(len(settings), 1)))
    size = max(1, math.ceil(n_utts / chunks))
    tasks = [(si, lo, min(lo + size, n_utts)) for si in range(len(settings))
             for lo in range(0, max(n_utts, 1), size)]
    hyps: list[list[str]] = [[""] * n_utts for _ in settings]
    seconds = [0.0] * len(settings)
    if threads <= 1:
        results = map(_decode_task, tasks)
        _collect(results, hyps, seconds)
    else:
        with mp.get_context("fork").Pool(threads) as pool:
            _collect(pool.imap_unordered(_decode_task, tasks), hyps, seconds)
    _STATE.clear()
    return [(normalize_all(h, normalize), secs) for h, secs in zip(hyps, seconds)]


def _collect(results, hyps, seconds) -> None:
    """Place each task's hypotheses into the per-setting lists."""
    for si, lo, chunk, secs in results:
        hyps[si][lo:lo + len(chunk)] = chunk
        seconds[si] += secs


def greedy_row(decoder: Decoder, blob: dict, normalize: str = "none") -> dict:
    """The greedy reference row (shard 0 writes it)."""
    start = time.perf_counter()
    hyps = normalize_all([greedy(lp, decoder.tokens).text for lp in blob["logprobs"]], normalize)
    return setting_row("greedy", None, score(list(blob["texts"]), hyps), time.perf_counter() - start)


def sweep_shard(decoder: Decoder, blob: dict, settings: list[Setting], shard: int, num_shards: int,
                threads: int, normalize: str = "none") -> list[dict]:
    """Rows for settings shard::num_shards (plus greedy on shard 0) over the dev emissions
    (blob["texts"] already normalised for scoring)."""
    refs = list(blob["texts"])
    indices = list(range(shard, len(settings), num_shards))
    rows = [greedy_row(decoder, blob, normalize)] if shard == 0 else []
    results = run_settings(decoder, [settings[i] for i in indices], blob["logprobs"], threads, normalize)
    for i, (hyps, secs) in zip(indices, results):
        rows.append(setting_row(i, settings[i], score(refs, hyps), secs))
    return rows


def search_rows(decoder: Decoder, blob: dict, cfg: DecodeConfig, threads: int, where: str,
                normalize: str = "none") -> list[dict]:
    """Greedy row, then one row per setting the halving or tpe search decoded (its dev share)."""
    refs, logprobs, spec = list(blob["texts"]), blob["logprobs"], cfg.sweep

    def decode(settings: list[Setting], utts: list[int]) -> list[tuple[list[str], float]]:
        return run_settings(decoder, settings, [logprobs[u] for u in utts], threads, normalize)

    if spec.method == "halving":
        found = successive_halving(sweep_settings(cfg, where), refs, decode, eta=spec.eta,
                                   first_share=spec.first_share, seed=spec.seed, margin=spec.margin,
                                   screen_beam=spec.screen_beam)
    else:
        check_ranges(spec, where)
        found = tpe_search(cfg.base, spec.ranges, refs, decode, n=spec.n,
                           startup_trials=spec.startup_trials, seed=spec.seed)
    return [greedy_row(decoder, blob, normalize)] + [setting_row(i, f.setting, f.score, f.seconds, share=f.share)
                                          for i, f in enumerate(found)]


def parse_args(argv):
    """The CLI flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="stage config.json (sections decode, score)")
    p.add_argument("--emissions", required=True, type=Path, help="dir with dev.pt (test.pt is not read)")
    p.add_argument("--lexicon", required=True, type=Path, help="lexicon.txt")
    p.add_argument("--arpa", required=True, type=Path, help="lm.arpa")
    p.add_argument("--tokens", required=True, type=Path, help="tokens.txt of the tokenizer")
    p.add_argument("--shard", type=int, default=0, help="this job's shard index i (0-based)")
    p.add_argument("--num-shards", type=int, default=1, help="n; must equal decode.sweep.shards")
    p.add_argument("--threads", type=int, default=1, help="worker processes (the job's cores)")
    p.add_argument("--out", required=True, type=Path, help="shard table, e.g. shards/0-of-1.tsv")
    return p.parse_args(argv)


def run(argv: list[str] | None = None) -> None:
    """Decode the dev split with this shard's settings and write the shard table."""
    args = parse_args(argv)
    cfg = load_decode_config(args.config)
    if args.num_shards != cfg.sweep.shards:
        raise UserError(f"{args.config}: decode.sweep.shards is {cfg.sweep.shards} but "
                        f"--num-shards is {args.num_shards}; the workflow must pass the same n")
    if not 0 <= args.shard < args.num_shards or args.threads < 1:
        raise UserError(f"--shard {args.shard} --num-shards {args.num_shards} --threads {args.threads}: "
                        "need 0 <= shard < num-shards and threads >= 1")
    searching = cfg.sweep.method in SEARCHES
    settings = [] if searching else sweep_settings(cfg, str(args.config))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record_command(args.out.with_suffix(""))  # shards/i-of-n/command.sh: one per shard job
    start = time.perf_counter()
    decoder = Decoder(args.lexicon, args.arpa, args.tokens)
    blob = load_emissions(args.emissions, "dev")
    check_tokens(blob, decoder.tokens, str(args.emissions))
    norm = load_score_config(args.config).normalize  # section score: refs and hyps alike
    blob["texts"] = normalize_all(blob["texts"], norm)
    loaded = time.perf_counter()
    if searching:
        rows = search_rows(decoder, blob, cfg, args.threads, str(args.config), norm)
    else:
        rows = sweep_shard(decoder, blob, settings, args.shard, args.num_shards, args.threads, norm)
    write_tsv(args.out, COLUMNS, rows)
    n = len(rows) - (args.shard == 0)
    print(f"decode_sweep: shard {args.shard}/{args.num_shards}: {n} settings x {len(blob['utt_ids'])} "
          f"dev utts in {time.perf_counter() - loaded:.1f}s (+{loaded - start:.1f}s loading) -> {args.out}",
          flush=True)



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
