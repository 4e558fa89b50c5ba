"""python -m asrsweep.decoding.merge_sweep --config <decode/k>/config.json --shards <decode/k>/shards/0-of-n.tsv ... --out-dir <decode/k>

Merge the decode_sweep shard tables into `sweep.tsv` (rows: greedy first, then settings in sweep
order) and pick the setting for test: `best_on_dev.json`.  Objective: lowest dev WER among the
beam-search settings scored on all of dev (`dev_share` 1.0: a halving search leaves the settings
it dropped on a share; the greedy row is reference only).  Ties: lower dev CER, then smaller
lm_weight, then earlier setting in the sweep order.  Checks that the shards are exactly
0..n-1 of one n and that each setting appears once.  best_on_dev.json names the method (and its
search settings) that chose it, from section decode.sweep of --config.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from asrsweep.core.common import UserError, cli_main, record_command, write_json_atomic
from asrsweep.core.tsv import read_tsv, write_tsv
from asrsweep.decoding.sweep_table import COLUMNS
from asrsweep.decoding.decoder import KNOBS, make_setting
from asrsweep.decoding.sweep_space import DecodeSweepSpec, load_decode_config

# The decode.sweep keys that describe how each method chose (recorded in best_on_dev.json).
METHOD_KEYS = {"grid": ("grid",), "random": ("n", "ranges", "seed"),
               "halving": ("candidates", "eta", "first_share", "margin", "screen_beam", "seed"),
               "tpe": ("n", "ranges", "startup_trials", "seed")}

TIE_BREAK = "lowest dev WER among full-dev rows; ties: lower dev CER, then smaller lm_weight, then earlier setting"
SHARD_NAME = re.compile(r"^(\d+)-of-(\d+)\.tsv$")


def read_shard(path: Path) -> list[dict]:
    """Rows of one shard table."""
    if not path.is_file():
        raise UserError(f"{path}: file not found (a decode_sweep shard)")
    rows = read_tsv(path)
    if rows and list(rows[0]) != COLUMNS:
        raise UserError(f"{path}: columns {list(rows[0])} differ from {COLUMNS}")
    return rows


def check_shard_set(paths: list[Path]) -> None:
    """File names must be i-of-n.tsv for every i in 0..n-1 of a single n."""
    seen = set()
    for p in paths:
        m = SHARD_NAME.match(p.name)
        if not m:
            raise UserError(f"{p}: shard file name must be <i>-of-<n>.tsv")
        seen.add((int(m.group(1)), int(m.group(2))))
    ns = {n for _, n in seen}
    if len(ns) != 1 or {i for i, _ in seen} != set(range(next(iter(ns)))):
        raise UserError(f"shards {sorted(seen)}: need exactly 0..n-1 of one n")


def merge(rows: list[dict]) -> list[dict]:
    """Greedy row first, then settings by index; duplicates and missing greedy are errors."""
    greedy = [r for r in rows if r["setting"] == "greedy"]
    rest = [r for r in rows if r["setting"] != "greedy"]
    if len(greedy) != 1:
        raise UserError(f"shards hold {len(greedy)} greedy rows; expected 1 (from shard 0)")
    indices = [int(r["setting"]) for r in rest]
    if len(set(indices)) != len(indices):
        raise UserError("a setting appears in more than one shard; shards from different sweeps?")
    if sorted(indices) != list(range(len(indices))):
        raise UserError(f"settings {sorted(indices)} are not 0..{len(indices) - 1}; a shard is missing")
    return greedy + sorted(rest, key=lambda r: int(r["setting"]))


def best_on_dev(rows: list[dict], spec: DecodeSweepSpec) -> dict:
    """The selected setting as best_on_dev.json (see TIE_BREAK)."""
    decoded = [r for r in rows if r["setting"] != "greedy"]
    candidates = [r for r in decoded if float(r["dev_share"]) == 1.0]
    if not candidates:
        raise UserError(f"none of the {len(decoded)} beam-search settings in the shards is scored on all of dev")
    best = min(candidates, key=lambda r: (float(r["wer"]), float(r["cer"]), float(r["lm_weight"]),
                                          int(r["setting"])))
    setting = make_setting({k: best[k] for k in ("decoder", *KNOBS)}, "sweep.tsv").as_dict()
    greedy = next(r for r in rows if r["setting"] == "greedy")
    return {"setting": setting, "index": int(best["setting"]), "objective": "wer",
            "dev_wer": float(best["wer"]), "dev_cer": float(best["cer"]), "tie_break": TIE_BREAK,
            "n_settings": len(decoded), "n_full_dev": len(candidates), "method": spec.method,
            "search": {k: getattr(spec, k) for k in METHOD_KEYS[spec.method]},
            "greedy": {"dev_wer": float(greedy["wer"]), "dev_cer": float(greedy["cer"])}}


def run(argv: list[str] | None = None) -> None:
    """Parse flags, write sweep.tsv and best_on_dev.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="stage config.json (section decode.sweep: the method); "
                        "default: config.json in --out-dir, where decode_sweep's rule writes it")
    parser.add_argument("--shards", required=True, nargs="+", type=Path, help="all i-of-n.tsv tables")
    parser.add_argument("--out-dir", required=True, type=Path, help="writes sweep.tsv, best_on_dev.json")
    args = parser.parse_args(argv)
    check_shard_set(args.shards)
    rows = merge([r for p in sorted(args.shards) for r in read_shard(p)])
    best = best_on_dev(rows, load_decode_config(args.config or args.out_dir / "config.json").sweep)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    record_command(args.out_dir)
    write_tsv(args.out_dir / "sweep.tsv", COLUMNS, rows)
    write_json_atomic(args.out_dir / "best_on_dev.json", best)
    print(f"merge_sweep: {len(rows) - 1} settings ({best['n_full_dev']} on all of dev, {best['method']}); "
          f"best #{best['index']} dev WER {best['dev_wer']:.4f} "
          f"(greedy {best['greedy']['dev_wer']:.4f})", flush=True)



def main(argv: list[str] | None = None) -> None:
    """Entry point: `run` with UserError -> one line on stderr, exit 2."""
    return cli_main(run, argv)


if __name__ == "__main__":
    main()
