"""The settings a decoder sweep decodes: section `decode` read strictly, expanded into `Setting`s.

Library module (no CLI), used by `python -m asrsweep.decoding.decode_sweep --config C ...`.
The decoder's knobs are the fields of `decoder.Setting` and nothing else: section `decode` is
those fields (the defaults every setting starts from) plus `sweep`, which says how they vary.
Methods `halving` and `tpe` search (asrsweep.decoding.search): halving starts from the settings
listed here (its `candidates`), tpe draws its own from `ranges` as it goes.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from asrsweep.core.common import UserError, from_mapping, read_json
from asrsweep.decoding.decoder import INT_KNOBS, Setting, make_setting


@dataclass(frozen=True)
class DecodeSweepSpec:
    """Section decode.sweep: method grid (product of the non-empty `grid` lists, in key order) or random
    (`n` draws, uniform in `ranges` [lo, hi], integers for beam sizes, from `seed`); `shards`
    = number of sweep jobs the workflow runs (must equal --num-shards). Method halving: successive
    halving over the `candidates` (grid or random) list, from `first_share` of dev, keeping
    1/`eta` of the settings (and those within `margin` standard errors of the best) while
    multiplying the share by `eta`, every rung but the last (all of dev) at beam `screen_beam`
    (0 = the settings' own beam); method tpe: `n` trials of
    Optuna's TPE over `ranges`, the first `startup_trials` drawn at random. Both use `seed`."""

    method: str = "grid"
    grid: dict = field(default_factory=lambda: {"lm_weight": [0.5, 1.0, 1.5, 2.0, 2.5, 3.0],
                                                "word_score": [-1.0, 0.0, 1.0, 2.0], "beam_size": [],
                                                "beam_threshold": [], "sil_score": [], "unk_score": []})
    n: int = 24
    ranges: dict = field(default_factory=lambda: {"lm_weight": [0.0, 3.0], "word_score": [-2.0, 3.0]})
    seed: int = 0
    shards: int = 1
    candidates: str = "grid"
    eta: int = 3
    first_share: float = 0.25
    margin: float = 1.0
    screen_beam: int = 10
    startup_trials: int = 4


@dataclass(frozen=True)
class DecodeConfig:
    """Section `decode`: the base setting (every swept setting starts from it) and the sweep."""

    base: Setting = field(default_factory=Setting)
    sweep: DecodeSweepSpec = field(default_factory=DecodeSweepSpec)


def load_decode_config(path) -> DecodeConfig:
    """Read section `decode` of the stage config at `path` strictly (unknown keys are errors)."""
    section = read_json(path).get("decode")
    where = f"{path}: decode"
    if not isinstance(section, dict):
        raise UserError(f"{where}: missing section or not a mapping")
    knobs = {k: v for k, v in section.items() if k != "sweep"}
    sweep = from_mapping(DecodeSweepSpec, section.get("sweep", {}), f"{where}.sweep")
    check_spec(sweep, str(path))
    return DecodeConfig(make_setting(knobs, where), sweep)


METHODS = ("grid", "random", "halving", "tpe")
SEARCHES = ("halving", "tpe")  # sequential: each step depends on the scores before it


def check_spec(spec: DecodeSweepSpec, where: str) -> None:
    """Method and search keys the schema also checks, for a config written by hand."""
    if spec.method not in METHODS:
        raise UserError(f"{where}: decode.sweep.method: {spec.method!r}; use one of {', '.join(METHODS)}")
    if spec.method in SEARCHES and spec.shards != 1:
        raise UserError(f"{where}: decode.sweep.shards: {spec.shards} with method {spec.method}; "
                        "a search runs in one job (shards: 1), only grid and random shard")
    if spec.candidates not in ("grid", "random"):
        raise UserError(f"{where}: decode.sweep.candidates: {spec.candidates!r}; use 'grid' or 'random'")
    if not (isinstance(spec.eta, int) and spec.eta >= 2 and 0 < spec.first_share <= 1 and spec.margin >= 0
            and isinstance(spec.screen_beam, int) and spec.screen_beam >= 0):
        raise UserError(f"{where}: decode.sweep: need eta >= 2 (integer), 0 < first_share <= 1, margin >= 0 "
                        "and screen_beam >= 0 (integer)")


def sweep_settings(cfg: DecodeConfig, where: str) -> list[Setting]:
    """The deterministic, duplicate-free list of settings the sweep decodes (grid, random), or
    that successive halving starts from (its candidates); tpe has no list in advance."""
    base = cfg.base.as_dict()
    spec = cfg.sweep
    check_spec(spec, where)
    kind = spec.candidates if spec.method == "halving" else spec.method
    if kind == "tpe":
        raise UserError(f"{where}: decode.sweep.method tpe draws its settings as it searches")
    if kind == "grid":
        for k, values in spec.grid.items():
            if not isinstance(values, list):
                raise UserError(f"{where}: decode.sweep.grid.{k}: expected a list of values")
        axes = {k: v for k, v in spec.grid.items() if v}  # [] = knob not swept (stays at default)
        combos = [dict(zip(axes, combo)) for combo in itertools.product(*axes.values())]
    else:
        combos = _random_combos(spec, where)
    out: list[Setting] = []
    for combo in combos or [{}]:
        setting = make_setting({**base, **combo}, f"{where}: decode.sweep")
        if setting not in out:
            out.append(setting)
    return out


def check_ranges(spec: DecodeSweepSpec, where: str) -> None:
    """Every range must be [lo, hi] with lo <= hi."""
    for k, bounds in spec.ranges.items():
        if not (isinstance(bounds, list) and len(bounds) == 2 and bounds[0] <= bounds[1]):
            raise UserError(f"{where}: decode.sweep.ranges.{k}: expected [lo, hi] with lo <= hi")


def _random_combos(spec: DecodeSweepSpec, where: str) -> list[dict]:
    """`spec.n` draws from `spec.ranges` with random.Random(seed), keys in sorted order."""
    rng = random.Random(spec.seed)
    check_ranges(spec, where)
    combos = []
    for _ in range(int(spec.n)):
        combo = {}
        for k in sorted(spec.ranges):
            lo, hi = spec.ranges[k]
            combo[k] = rng.randint(int(lo), int(hi)) if k in INT_KNOBS else round(rng.uniform(lo, hi), 4)
        combos.append(combo)
    return combos
