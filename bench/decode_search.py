"""python bench/decode_search.py [--demo /tmp/demo-results/demo] [--order 3] [--threads 2] [--tpe-n 8] [--seeds 5]

Successive halving and TPE against the full grid, side by side in one run, on the demo's dev
emissions: `--demo` is a finished `make demo` results folder (emissions/*/dev.pt, the tokenizer,
and the lexicon + n-gram of order `--order`); without one, a synthetic demo-sized world from
bench/decode_sweep.py (grammar sentences, 4-gram, peaky emissions with 15 % confusions).
Each method decodes through decode_sweep's machinery (asrsweep.decoding.decode_sweep.run_settings,
`--threads` forked workers) with the schema's default decode section and grid (6 x 4). Prints
per method: the decode wall time and its ratio to the grid's (and the ratio of frames decoded, which
other load on the machine does not change, and of frames x beam_size, which charges a screening
beam its share), and the full-dev WER of the setting it picks minus the grid's best (goal for
halving: <= 0.2 points at <= 1/3 of the time); halving (the schema's decode.sweep: early rungs at
`screen_beam`) and `full-beam` halving (screen_beam 0, first share 1/16: the former default) are
each run under `--seeds` seeds of their dev shares, TPE under as many sampler seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from asrsweep.decoding.decode_sweep import run_settings  # noqa: E402
from asrsweep.decoding.decoder import Decoder, make_setting  # noqa: E402
from asrsweep.decoding.scoring import score  # noqa: E402
from asrsweep.decoding.search import rank_key, successive_halving, tpe_search  # noqa: E402
from asrsweep.decoding.sweep_space import DecodeConfig, sweep_settings  # noqa: E402
from asrsweep.decoding.sweep_table import load_emissions  # noqa: E402
from asrsweep.experiment.validate import load_schema, schema_defaults  # noqa: E402
from asrsweep.core.common import from_mapping  # noqa: E402
from asrsweep.decoding.sweep_space import DecodeSweepSpec  # noqa: E402


def demo_world(demo: Path, order: int) -> tuple[dict, list]:
    """Paths of a finished demo run with an n-gram of `order`, and its dev blob."""
    arpa = next(p / "lm.arpa" for p in sorted((demo / "ngram").iterdir())
                if json.loads((p / "config.json").read_text())["ngram"]["order"] == order)
    lexicon = next(p / "lexicon.txt" for p in sorted((demo / "lexicon").iterdir())
                   if f"/ngram/{arpa.parent.name}/" in (p / "command.sh").read_text())
    tokens = next((demo / "tokenizer").glob("*/tokens.txt"))
    emissions = next((demo / "emissions").glob("*/dev.pt")).parent
    paths = {"lexicon": lexicon, "arpa": arpa, "tokens": tokens, "emissions": emissions}
    return paths, load_emissions(emissions, "dev")


def synthetic_world(workdir: Path, n_utts: int) -> tuple[dict, dict]:
    """bench/decode_sweep.py's world: 4-gram, lexicon, tokens and peaky dev emissions."""
    from decode_sweep import build_world, fake_emissions

    tokens, dev = build_world(workdir, 20000, n_utts, 4)
    paths = {k: workdir / f for k, f in (("lexicon", "lexicon.txt"), ("arpa", "lm.arpa"), ("tokens", "tokens.txt"))}
    return paths, {"texts": dev, "logprobs": fake_emissions(tokens, dev)}


def timed(fn):
    """(result, wall seconds)."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", type=Path, default=Path("/tmp/demo-results/demo"))
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tpe-n", type=int, default=8, help="TPE budget in trials (grid: 24 settings)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--utts", type=int, default=300, help="synthetic dev size (without --demo)")
    args = p.parse_args()
    decode_defaults = schema_defaults(load_schema("recipe"))["decode"]
    spec = from_mapping(DecodeSweepSpec, decode_defaults.pop("sweep"), "schema decode.sweep")
    cfg = DecodeConfig(make_setting(decode_defaults, "schema decode"), spec)
    with tempfile.TemporaryDirectory() as tmp:
        if (args.demo / "emissions").is_dir():
            paths, blob = demo_world(args.demo, args.order)
            print(f"demo emissions: {paths['emissions']}, {args.order}-gram {paths['arpa']}")
        else:
            paths, blob = synthetic_world(Path(tmp), args.utts)
            print(f"no demo results in {args.demo}: synthetic world ({args.utts} utts, 4-gram)")
        decoder = Decoder(paths["lexicon"], paths["arpa"], paths["tokens"])
    refs, logprobs = list(blob["texts"]), blob["logprobs"]

    frames = [0, 0]  # frames decoded and frames x beam_size: the work, whatever else the machine runs

    def decode(settings, utts):
        n_frames = sum(len(logprobs[u]) for u in utts)
        frames[0] += len(settings) * n_frames
        frames[1] += sum(s.beam_size for s in settings) * n_frames
        return run_settings(decoder, settings, [logprobs[u] for u in utts], args.threads)

    grid = sweep_settings(cfg, "bench")
    print(f"{len(refs)} dev utts, {sum(len(r.split()) for r in refs)} words; grid {len(grid)} settings; "
          f"halving eta {spec.eta}, first share {spec.first_share}, margin {spec.margin}, screen beam "
          f"{spec.screen_beam} (full-beam: 0, first share 1/16); tpe {args.tpe_n} trials "
          f"({spec.startup_trials} random first); {args.threads} workers")
    # scored inside the timing, as the searches score their rungs
    wers, t_grid = timed(lambda: {s: score(refs, hyps).wer
                                  for s, (hyps, _) in zip(grid, decode(grid, list(range(len(refs)))))})
    grid_frames, grid_fxb = list(frames)
    grid_best = min(wers.values())
    print(f"grid    : {t_grid:6.2f}s  best dev WER {100 * grid_best:.2f} %")
    runs = [(name, seed, lambda seed=seed, share=share, beam=beam: successive_halving(
                grid, refs, decode, eta=spec.eta, first_share=share, seed=seed, margin=spec.margin, screen_beam=beam))
            for name, share, beam in (("halving", spec.first_share, spec.screen_beam), ("full-beam", 1 / 16, 0))
            for seed in range(args.seeds)]
    runs += [("tpe", seed, lambda seed=seed: tpe_search(
                cfg.base, spec.ranges, refs, decode, n=args.tpe_n, startup_trials=spec.startup_trials, seed=seed))
             for seed in range(args.seeds)]
    hits: dict[str, int] = {}  # seeds within the goal, per method
    for method, seed, search in runs:
        frames[:] = [0, 0]
        found, secs = timed(search)
        full = [(i, f) for i, f in enumerate(found) if f.share == 1.0]
        _, pick = min(full, key=rank_key)
        gap = 100 * (pick.score.wer - grid_best)
        ok = "ok" if gap <= 0.2 and secs <= t_grid / 3 else "MISSES GOAL"
        hits[method] = hits.get(method, 0) + (ok == "ok")
        print(f"{method:9s} seed {seed}: {secs:6.2f}s = {secs / t_grid:.2f} x grid (frames decoded "
              f"{frames[0] / grid_frames:.2f} x, frames x beam {frames[1] / grid_fxb:.2f} x); picks lm_weight "
              f"{pick.setting.lm_weight:g} word_score {pick.setting.word_score:g}: dev WER "
              f"{100 * pick.score.wer:.2f} % ({gap:+.2f} points vs grid best; {len(found)} settings, "
              f"{len(full)} on all of dev) {ok if method != 'tpe' else ''}")
    print("within 0.2 points at <= 1/3 of the grid's time: "
          + ", ".join(f"{method} {n}/{args.seeds} seeds" for method, n in hits.items()))


if __name__ == "__main__":
    main()
