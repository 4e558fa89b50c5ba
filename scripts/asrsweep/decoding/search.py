"""Searches over decoder settings that spend less than a full grid: successive halving and TPE.

Library module (no CLI), used by `python -m asrsweep.decoding.decode_sweep --config C ...` when
`decode.sweep.method` is `halving` or `tpe`. Neither decodes anything itself: both call
`decode(settings, utts)`, which returns (hypotheses for dev utterances `utts`, seconds) per
setting, so the search is testable without a decoder and the sweep keeps its forked workers.

- Successive halving (Jamieson & Talwalkar 2016; Li et al. 2017, Hyperband's inner loop): every
  candidate on a seeded `first_share` of dev, the best 1/eta (rounded up) on eta times the share,
  ..., the last rung on all of dev. The shares are nested prefixes of one seeded order of dev, so a
  survivor only decodes the utterances it has not seen yet. A first rung of a few utterances ranks
  mostly by noise, so beyond the best 1/eta every candidate not significantly worse than the rung's
  best goes on too (its extra errors on the same utterances within `margin` standard errors of
  that paired difference, a racing test as in Maron & Moore 1994), best first, capped so that no
  rung costs more (utterances x beam_size) than the first or than its best 1/eta alone.
  Multi-fidelity (`screen_beam`, as in Hyperband's cheaper budgets): every rung but the
  last decodes at a small beam, several times cheaper per utterance (beam 10: about 1/13 of beam 50
  on the demo), so the early rungs rank on several times more of dev; lm_weight and word_score rank
  nearly alike at both beams. The last rung decodes all of dev afresh at the settings' own beam,
  and only those scores have share 1.0.
- TPE (Bergstra et al. 2011) with Optuna's seeded TPESampler, in process, `n` trials over
  `ranges`, each trial scored on all of dev; a trial that repeats a setting reuses its score.

Each returns one `Scored` per distinct setting, in the order first decoded, with the share of dev
its score is on; only full-dev ones (`share == 1.0`) may be chosen (asrsweep.decoding.merge_sweep).
"""

from __future__ import annotations

import dataclasses
import math
import random
import warnings
from dataclasses import dataclass
from typing import Callable

from asrsweep.decoding.decoder import INT_KNOBS, Setting, make_setting
from asrsweep.decoding.scoring import Score, score

Decode = Callable[[list[Setting], list[int]], list[tuple[list[str], float]]]


@dataclass
class Scored:
    """One setting's result: its score on `share` of dev and the decode seconds it took."""

    setting: Setting
    score: Score
    seconds: float
    share: float


def rank_key(item: tuple[int, Scored]) -> tuple:
    """The selection order of merge_sweep: WER, then CER, then smaller lm_weight, then index."""
    index, s = item
    return (s.score.wer, s.score.cer, s.setting.lm_weight, index)


def rung_sizes(n_utts: int, first_share: float, eta: int) -> list[int]:
    """Utterances per rung: ceil(first_share * eta**k * n_utts), growing by eta, last = n_utts."""
    sizes, share = [], first_share
    while True:
        size = min(n_utts, max(1, math.ceil(share * n_utts)))
        if not sizes or size > sizes[-1]:
            sizes.append(size)
        if size >= n_utts:
            return sizes
        share *= eta


def dev_order(n_utts: int, seed: int) -> list[int]:
    """A seeded permutation of the dev utterances; rung k scores its first rung_sizes[k]."""
    order = list(range(n_utts))
    random.Random(seed).shuffle(order)
    return order


def paired_gap(errors: tuple[int, ...], best: tuple[int, ...]) -> tuple[int, float]:
    """(errors more than `best` on the same utterances, the standard error of that sum): the sum of
    the per-utterance differences d and sqrt(n) times their sample deviation."""
    d = [e - b for e, b in zip(errors, best)]
    mean = sum(d) / max(len(d), 1)
    var = sum((x - mean) ** 2 for x in d) / max(len(d) - 1, 1)
    return sum(d), math.sqrt(len(d) * var)


def survivors(ranked: list[tuple[int, Scored]], eta: int, margin: float, limit: int) -> list[int]:
    """Indices going on from a rung (`ranked` best first): the best 1/eta (rounded up), then every
    other not significantly worse than the best (paired gap <= `margin` standard errors; none with
    margin 0, plain halving), best first, at most max(`limit`, the 1/eta) in all."""
    quota = max(1, math.ceil(len(ranked) / eta))
    best = ranked[0][1].score.utt_errors
    keep = [i for i, _ in ranked[:quota]]
    for i, s in ranked[quota:]:
        gap, se = paired_gap(s.score.utt_errors, best)
        if margin > 0 and len(keep) < limit and gap <= margin * se:
            keep.append(i)
    return sorted(keep)


def screened(setting: Setting, screen_beam: int) -> Setting:
    """`setting` at the screening beam: beam_size `screen_beam` (never above its own) and
    beam_size_token scaled by the same ratio; 0 = the setting itself."""
    if not screen_beam or screen_beam >= setting.beam_size:
        return setting
    ratio = screen_beam / setting.beam_size
    return dataclasses.replace(setting, beam_size=screen_beam,
                               beam_size_token=max(1, round(setting.beam_size_token * ratio)))


def successive_halving(settings: list[Setting], refs: list[str], decode: Decode, *, eta: int,
                       first_share: float, seed: int, margin: float, screen_beam: int) -> list[Scored]:
    """Scored candidates (index = position in `settings`); survivors end on all of dev.
    With `screen_beam`, every rung but the last decodes at that beam (`screened`, several times
    cheaper), and the last decodes all of dev afresh at the setting's own beam: only those scores
    have share 1.0. The extra survivors of `margin` are capped so that a rung costs (utterances x
    beam_size) no more than the first one, or than its best 1/eta alone."""
    order = dev_order(len(refs), seed)
    sizes = rung_sizes(len(refs), first_share, eta)
    hyps: list[dict[int, str]] = [{} for _ in settings]
    results: list[Scored | None] = [None] * len(settings)
    alive = list(range(len(settings)))
    last = len(sizes) - 1

    def at(i: int, k: int) -> Setting:  # what candidate i decodes with on rung k
        return settings[i] if k == last else screened(settings[i], screen_beam)

    budget = sum(sizes[0] * at(i, 0).beam_size for i in alive)  # the first rung's utterances x beam
    for k, size in enumerate(sizes):
        # the last rung re-decodes all of dev if the rung before screened: a screening beam's
        # hypotheses never enter a full-beam score
        fresh = 0 < k == last and any(at(i, k - 1) != settings[i] for i in alive)
        new = order[0 if fresh else (sizes[k - 1] if k else 0):size]
        for i, (chunk, secs) in zip(alive, decode([at(i, k) for i in alive], new)):
            if fresh:
                hyps[i] = {}
            hyps[i].update(zip(new, chunk))
            utts = order[:size]
            seconds = (results[i].seconds if results[i] else 0.0) + secs  # screening included
            results[i] = Scored(at(i, k), score([refs[u] for u in utts], [hyps[i][u] for u in utts]),
                                seconds, round(size / len(refs), 6) if refs else 1.0)
        if k + 1 < len(sizes):
            ranked = sorted(((i, results[i]) for i in alive), key=rank_key)
            ahead = sizes[k + 1] if k + 1 == last and screen_beam else sizes[k + 1] - size
            per = max(ahead * max(at(i, k + 1).beam_size for i in alive), 1)
            alive = survivors(ranked, eta, margin, budget // per)
    return [r for r in results if r is not None]


def tpe_search(base: Setting, ranges: dict, refs: list[str], decode: Decode, *, n: int,
               startup_trials: int, seed: int) -> list[Scored]:
    """`n` seeded TPE trials over `ranges` (knob -> [lo, hi]); floats rounded to 4 decimals."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    everything = list(range(len(refs)))
    found: dict[Setting, Scored] = {}
    with warnings.catch_warnings():  # multivariate TPE is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials, multivariate=True)
        study = optuna.create_study(direction="minimize", sampler=sampler)
        for _ in range(n):
            trial = study.ask()
            combo = {k: (trial.suggest_int(k, int(lo), int(hi)) if k in INT_KNOBS
                         else round(trial.suggest_float(k, float(lo), float(hi)), 4))
                     for k, (lo, hi) in sorted(ranges.items())}
            setting = make_setting({**base.as_dict(), **combo}, "decode.sweep (tpe)")
            if setting not in found:
                (hyps, secs), = decode([setting], everything)
                found[setting] = Scored(setting, score(refs, hyps), secs, 1.0)
            study.tell(trial, found[setting].score.wer)
    return list(found.values())
