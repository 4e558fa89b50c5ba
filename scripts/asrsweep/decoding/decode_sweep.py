"""python -m asrsweep.decoding.decode_sweep --config C --emissions <emissions/k> --lexicon L --arpa A --tokens T --shard i --num-shards n --threads P --out <decode/k>/shards/i-of-n.tsv

Beam-search sweep over decoder settings on the DEV split only (test is never read here).
The setting list comes from config section `decode` (see `DecodeConfig`) and is deterministic;
shard i takes settings i::n, and shard 0 also writes the `greedy` row.  KenLM and the lexicon
trie are loaded once; P worker processes (forked, so they share them) decode (setting, chunk of
utterances) tasks; one emission pass serves every setting (icefall's decode.py habit).
Output: one sweep.tsv row per setting (see SPEC.md), merged by asrsweep.decoding.merge_sweep.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import multiprocessing as mp
import random
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from asrsweep.core.common import UserError, atomic_write, cli_main, load_section, record_command
from asrsweep.decoding.decoder import KNOBS, Decoder, Setting, greedy, make_setting
from asrsweep.decoding.scoring import score

COLUMNS = ["setting", "decoder", *KNOBS, "split", "wer", "cer", "words", "substitutions",
           "deletions", "insertions", "seconds"]
INT_KNOBS = ("beam_size", "beam_size_token")


@dataclass(frozen=True)
class DecodeSweepSpec:
    """Section decode.sweep: method grid (product of the non-empty `grid` lists, in key order) or random
    (`n` draws, uniform in `ranges` [lo, hi], integers for beam sizes, from `seed`); `shards`
    = number of sweep jobs the workflow runs (must equal --num-shards)."""

    method: str = "grid"
    grid: dict = field(default_factory=lambda: {"lm_weight": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                                                "word_score": [-1.0, 0.0, 1.0, 2.0]})
    n: int = 24
    ranges: dict = field(default_factory=lambda: {"lm_weight": [0.0, 3.0], "word_score": [-2.0, 3.0]})
    seed: int = 0
    shards: int = 1


@dataclass(frozen=True)
class DecodeConfig:
    """Section `decode`: the decoder, the default knobs (every setting starts from them), sweep."""

    decoder: str = "lexicon"
    lm_weight: float = 1.5
    word_score: float = 1.0
    unk_score: float | str = "-inf"
    sil_score: float = 0.0
    beam_size: int = 50
    beam_size_token: int = 32
    beam_threshold: float = 25.0
    log_add: bool = False
    sweep: DecodeSweepSpec = field(default_factory=DecodeSweepSpec)

    def base(self, where: str) -> Setting:
        """The default setting (no sweep overrides)."""
        return make_setting({f.name: getattr(self, f.name) for f in fields(Setting)}, where)


def load_decode_config(path) -> DecodeConfig:
    """Read section `decode` (nested `sweep` too) strictly."""
    cfg = load_section(path, "decode", DecodeConfig)
    if isinstance(cfg.sweep, dict):  # from_mapping resolves nested dataclasses by name
        from asrsweep.core.common import from_mapping
        cfg = DecodeConfig(**{**cfg.__dict__, "sweep": from_mapping(DecodeSweepSpec, cfg.sweep, f"{path}: decode.sweep")})
    return cfg


def sweep_settings(cfg: DecodeConfig, where: str) -> list[Setting]:
    """The deterministic, duplicate-free list of settings the sweep decodes."""
    base = cfg.base(f"{where}: decode").as_dict()
    spec = cfg.sweep
    if spec.method == "grid":
        for k, values in spec.grid.items():
            if not isinstance(values, list):
                raise UserError(f"{where}: decode.sweep.grid.{k}: expected a list of values")
        axes = {k: v for k, v in spec.grid.items() if v}  # [] = knob not swept (stays at default)
        combos = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    elif spec.method == "random":
        combos = _random_combos(spec, where)
    else:
        raise UserError(f"{where}: decode.sweep.method: {spec.method!r}; use 'grid' or 'random'")
    out: list[Setting] = []
    for combo in combos or [{}]:
        setting = make_setting({**base, **combo}, f"{where}: decode.sweep")
        if setting not in out:
            out.append(setting)
    return out


def _random_combos(spec: DecodeSweepSpec, where: str) -> list[dict]:
    """`spec.n` draws from `spec.ranges` with random.Random(seed), keys in sorted order."""
    rng = random.Random(spec.seed)
    for k, bounds in spec.ranges.items():
        if not (isinstance(bounds, list) and len(bounds) == 2 and bounds[0] <= bounds[1]):
            raise UserError(f"{where}: decode.sweep.ranges.{k}: expected [lo, hi] with lo <= hi")
    combos = []
    for _ in range(int(spec.n)):
        combo = {}
        for k in sorted(spec.ranges):
            lo, hi = spec.ranges[k]
            combo[k] = rng.randint(int(lo), int(hi)) if k in INT_KNOBS else round(rng.uniform(lo, hi), 4)
        combos.append(combo)
    return combos


def load_emissions(emissions_dir: Path, split: str) -> dict:
    """{"utt_ids", "texts", "logprobs": list of float32 arrays [T, V], "tokens"} of one split."""
    import torch

    path = Path(emissions_dir) / f"{split}.pt"
    if not path.is_file():
        raise UserError(f"{path}: file not found; run asrsweep.acoustic.emissions first")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    blob["logprobs"] = [np.ascontiguousarray(x.float().numpy()) for x in blob["logprobs"]]
    return blob


def check_tokens(blob: dict, tokens: list[str], where: str) -> None:
    """Emissions and tokens.txt must describe the same output columns."""
    if "tokens" in blob and list(blob["tokens"]) != tokens:
        raise UserError(f"{where}: emissions tokens differ from tokens.txt; mixed runs?")


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
                 threads: int) -> list[tuple[list[str], float]]:
    """(hyps, decode seconds) per setting, using `threads` forked workers."""
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
    return list(zip(hyps, seconds))


def _collect(results, hyps, seconds) -> None:
    """Place each task's hypotheses into the per-setting lists."""
    for si, lo, chunk, secs in results:
        hyps[si][lo:lo + len(chunk)] = chunk
        seconds[si] += secs


def setting_row(index, setting: Setting | None, result, seconds: float, split: str = "dev") -> dict:
    """One sweep.tsv row; `setting=None` is the greedy row (knobs left empty)."""
    knobs = setting.as_dict() if setting else {"decoder": "greedy", **{k: "" for k in KNOBS}}
    return {"setting": index, **knobs, "split": split, **result.row(), "seconds": round(seconds, 3)}


def write_tsv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Tab-separated `rows` with a header, written atomically."""
    with atomic_write(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, columns, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)


def sweep_shard(decoder: Decoder, blob: dict, settings: list[Setting], shard: int, num_shards: int,
                threads: int) -> list[dict]:
    """Rows for settings shard::num_shards (plus greedy on shard 0) over the dev emissions."""
    refs = list(blob["texts"])
    indices = list(range(shard, len(settings), num_shards))
    rows = []
    if shard == 0:
        start = time.perf_counter()
        hyps = [greedy(lp, decoder.tokens).text for lp in blob["logprobs"]]
        rows.append(setting_row("greedy", None, score(refs, hyps), time.perf_counter() - start))
    results = run_settings(decoder, [settings[i] for i in indices], blob["logprobs"], threads)
    for i, (hyps, secs) in zip(indices, results):
        rows.append(setting_row(i, settings[i], score(refs, hyps), secs))
    return rows


def parse_args(argv):
    """The CLI flags."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="stage config.json (section decode)")
    p.add_argument("--emissions", required=True, type=Path, help="dir with dev.pt (test.pt is not read)")
    p.add_argument("--lexicon", required=True, type=Path, help="lexicon.txt")
    p.add_argument("--arpa", required=True, type=Path, help="lm.arpa")
    p.add_argument("--tokens", required=True, type=Path, help="tokens.txt of the tokenizer")
    p.add_argument("--shard", type=int, default=0, help="this job's shard index i (0-based)")
    p.add_argument("--num-shards", type=int, default=1, help="n; must equal decode.sweep.shards")
    p.add_argument("--threads", type=int, default=1, help="worker processes (the job's cores)")
    p.add_argument("--out", required=True, type=Path, help="shard table, e.g. shards/0-of-1.tsv")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Decode the dev split with this shard's settings and write the shard table."""
    args = parse_args(argv)
    cfg = load_decode_config(args.config)
    if args.num_shards != cfg.sweep.shards:
        raise UserError(f"{args.config}: decode.sweep.shards is {cfg.sweep.shards} but "
                        f"--num-shards is {args.num_shards}; the workflow must pass the same n")
    if not 0 <= args.shard < args.num_shards or args.threads < 1:
        raise UserError(f"--shard {args.shard} --num-shards {args.num_shards} --threads {args.threads}: "
                        "need 0 <= shard < num-shards and threads >= 1")
    settings = sweep_settings(cfg, str(args.config))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record_command(args.out.with_suffix(""))  # shards/i-of-n/command.sh: one per shard job
    start = time.perf_counter()
    decoder = Decoder(args.lexicon, args.arpa, args.tokens)
    blob = load_emissions(args.emissions, "dev")
    check_tokens(blob, decoder.tokens, str(args.emissions))
    loaded = time.perf_counter()
    rows = sweep_shard(decoder, blob, settings, args.shard, args.num_shards, args.threads)
    write_tsv(args.out, rows, COLUMNS)
    n = len(rows) - (args.shard == 0)
    print(f"decode_sweep: shard {args.shard}/{args.num_shards}: {n} settings x {len(blob['utt_ids'])} "
          f"dev utts in {time.perf_counter() - loaded:.1f}s (+{loaded - start:.1f}s loading) -> {args.out}",
          flush=True)


if __name__ == "__main__":
    cli_main(main)
