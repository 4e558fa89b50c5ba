"""Successive halving and TPE over a planted decoder: the best survives, shares grow by eta, seeds fix it."""

from __future__ import annotations

import json

import pytest

from asrsweep.core.common import UserError
from asrsweep.core.tsv import write_tsv
from asrsweep.decoding.decoder import Setting
from asrsweep.decoding.merge_sweep import main as merge_sweep
from asrsweep.decoding.scoring import score
from asrsweep.decoding.search import (Scored, dev_order, paired_gap, rung_sizes, successive_halving, survivors,
                                      tpe_search)
from asrsweep.decoding.sweep_table import COLUMNS, setting_row
from asrsweep.experiment.validate import load_schema, schema_defaults, validate_resolved

REFS = [f"word{u} other{u}" for u in range(64)]
BEST_LM = 1.75


def error_rate(setting: Setting) -> float:
    """The planted truth: error rate grows with the distance of lm_weight from BEST_LM."""
    return min(0.9, abs(setting.lm_weight - BEST_LM) / 2)


class Planted:
    """A fake `decode`: utterance u is wrong for a setting when its fixed draw is below the error rate."""

    def __init__(self):
        self.decoded = 0  # utterance decodes, over all calls
        self.calls = []  # utterance decodes per call (per rung)

    def __call__(self, settings, utts):
        self.decoded += len(settings) * len(utts)
        self.calls.append(len(settings) * len(utts))
        return [([REFS[u] if ((u * 37) % 64) / 64 >= error_rate(s) else "wrong" for u in utts], 0.01 * len(utts))
                for s in settings]


GRID = [Setting(lm_weight=w / 4) for w in range(16)]  # 0.0 .. 3.75; 1.75 is the planted best


def test_rung_sizes_grow_by_eta_and_end_on_all_of_dev():
    assert rung_sizes(64, 1 / 16, 2) == [4, 8, 16, 32, 64]
    assert rung_sizes(10, 0.3, 3) == [3, 9, 10]
    assert rung_sizes(5, 1.0, 2) == [5]
    assert rung_sizes(3, 0.01, 2) == [1, 2, 3]  # at least one utterance, no empty rung
    empty = successive_halving(GRID[:2], [], Planted(), eta=2, first_share=0.5, seed=0, margin=0.0, screen_beam=0)
    assert [f.share for f in empty] == [1.0, 1.0]  # an empty dev is all of dev


def test_halving_keeps_the_planted_best_and_decodes_less():
    decode = Planted()
    found = successive_halving(GRID, REFS, decode, eta=2, first_share=1 / 16, seed=0, margin=0.0, screen_beam=0)
    assert [f.setting for f in found] == GRID  # every candidate is listed, in candidate order
    by_share = {}
    for f in found:
        by_share.setdefault(f.share, []).append(f)
    assert sorted(by_share) == [0.0625, 0.125, 0.25, 0.5, 1.0]  # shares double
    assert [len(by_share[s]) for s in sorted(by_share)] == [8, 4, 2, 1, 1]  # half dropped per rung
    (winner,) = by_share[1.0]
    assert winner.setting.lm_weight == 1.75 and winner.score.wer == 0.0
    assert winner.score.words == 2 * 64 and by_share[0.0625][0].score.words == 2 * 4
    # nested shares: a survivor decodes only utterances it has not seen (16 x 4 + 8 x 4 + 4 x 8 ...)
    assert decode.decoded == 16 * 4 + 8 * 4 + 4 * 8 + 2 * 16 + 1 * 32
    assert winner.seconds == pytest.approx(0.01 * 64)


def test_halving_scores_match_a_direct_score_and_are_seeded():
    a = successive_halving(GRID, REFS, Planted(), eta=2, first_share=1 / 16, seed=0, margin=0.0, screen_beam=0)
    b = successive_halving(GRID, REFS, Planted(), eta=2, first_share=1 / 16, seed=0, margin=0.0, screen_beam=0)
    assert [(f.setting, f.score, f.share) for f in a] == [(f.setting, f.score, f.share) for f in b]
    assert dev_order(64, 0) != dev_order(64, 1) and sorted(dev_order(64, 1)) == list(range(64))
    first = dev_order(64, 0)[:4]  # rung 0 scores the seed's first 4 utterances
    direct = score([REFS[u] for u in first], Planted()([GRID[0]], first)[0][0])
    assert a[0].score == direct and a[0].share == 0.0625


def test_halving_with_eta_3():
    found = successive_halving(GRID, REFS, Planted(), eta=3, first_share=1 / 9, seed=2, margin=0.0, screen_beam=0)
    shares = sorted({f.share for f in found})
    assert shares == [round(8 / 64, 6), round(22 / 64, 6), 1.0]  # ceil(64/9)=8, ceil(64/3)=22, 64
    assert [f.share for f in found].count(1.0) == 2  # 16 -> 6 -> 2
    assert min((f for f in found if f.share == 1.0), key=lambda f: f.score.wer).setting.lm_weight == 1.75


def test_paired_gap_is_the_sum_of_differences_and_its_standard_error():
    assert paired_gap((1, 0, 0, 0), (0, 0, 0, 0)) == (1, pytest.approx(1.0))  # sd 0.5, sqrt(4) * 0.5
    assert paired_gap((2, 1, 3), (1, 0, 2)) == (3, 0.0)  # one more error on each: a sure difference
    assert paired_gap((), ()) == (0, 0.0)


def _ranked(errors: list[tuple[int, ...]]) -> list[tuple[int, Scored]]:
    """Candidates i whose per-utterance errors are `errors[i]` (0-3 of "a b c"), in rank order."""
    refs = ["a b c"] * len(errors[0])
    return [(i, Scored(Setting(lm_weight=i), score(refs, [" ".join(["x"] * n + ["a", "b", "c"][n:]) for n in e]),
                       0.0, 0.5)) for i, e in enumerate(errors)]


def test_survivors_keep_the_near_ties_of_the_best_up_to_the_limit():
    best, near, far = (0, 1, 0, 0), (1, 0, 1, 0), (3, 3, 3, 3)  # gap 1 (se 1.5); gap 12 (se 2)
    ranked = _ranked([best, best, near, near, far, far])
    assert survivors(ranked, 3, 0.0, 6) == [0, 1]  # margin 0: the plain top third
    assert survivors(ranked, 3, 1.0, 6) == [0, 1, 2, 3]  # the near ties too, never the clearly worse
    assert survivors(ranked, 3, 1.0, 3) == [0, 1, 2]  # capped at the limit, best first
    assert survivors(ranked, 3, 1.0, 1) == [0, 1]  # the top 1/eta always goes on
    assert survivors(ranked, 3, 100.0, 6) == [0, 1, 2, 3, 4, 5]


class Unlucky:
    """Setting 0 is the best on all of dev but makes its one error on seed 0's first utterance;
    the others are clean there and wrong on every second utterance after the first four."""

    def __init__(self):
        self.order = dev_order(64, 0)
        self.rungs = []  # utterance decodes per call

    def __call__(self, settings, utts):
        self.rungs.append(len(settings) * len(utts))
        pos = {u: k for k, u in enumerate(self.order)}
        wrong = [(lambda k: k == 0) if s.lm_weight == 0 else (lambda k: k >= 4 and k % 2 == 0) for s in settings]
        return [(["wrong" if w(pos[u]) else REFS[u] for u in utts], 0.01 * len(utts)) for w in wrong]


def test_a_noise_aware_cut_keeps_a_best_that_starts_unlucky_within_the_first_rungs_budget():
    grid = [Setting(lm_weight=w) for w in range(8)]
    picks = {}
    for margin in (0.0, 1.0):
        decode = Unlucky()
        found = successive_halving(grid, REFS, decode, eta=2, first_share=1 / 16, seed=0, margin=margin, screen_beam=0)
        full = [f for f in found if f.share == 1.0]
        picks[margin] = min(full, key=lambda f: f.score.wer).setting.lm_weight
        assert max(decode.rungs) <= decode.rungs[0] == 8 * 4  # no rung decodes more than the first
    assert picks == {0.0: 1, 1.0: 0}  # plain halving drops it on 4 utterances, margin 1 keeps it


def test_a_huge_margin_stays_within_the_first_rungs_budget_per_rung():
    decode = Planted()
    found = successive_halving(GRID, REFS, decode, eta=2, first_share=1 / 16, seed=0, margin=1e9, screen_beam=0)
    # rung 1: all but the one surely worse (wrong on all 4 utterances: gap 8, standard error 0);
    # then each rung capped at the first one's 64 utterance decodes: 8 x 8 new, 4 x 16, 2 x 32
    assert decode.calls == [16 * 4, 15 * 4, 8 * 8, 4 * 16, 2 * 32]
    assert min((f for f in found if f.share == 1.0), key=lambda f: f.score.wer).setting.lm_weight == 1.75


class Screened(Planted):
    """Planted, 0.2 more errors at a beam below 50 (same ranking), recording each call's beam and utterances."""

    def __init__(self):
        super().__init__()
        self.beams, self.utts, self.costs = [], [], []

    def __call__(self, settings, utts):
        self.beams.append({s.beam_size for s in settings})
        self.utts.append(list(utts))
        self.costs.append(len(utts) * sum(s.beam_size for s in settings))
        out = []
        for s in settings:
            rate = error_rate(s) + (0.2 if s.beam_size < 50 else 0.0)
            out.append(([REFS[u] if ((u * 37) % 64) / 64 >= rate else "wrong" for u in utts], 0.01 * len(utts)))
        return out


def test_screening_rungs_decode_at_the_screen_beam_and_only_full_beam_full_dev_scores_compete():
    decode = Screened()
    found = successive_halving(GRID, REFS, decode, eta=2, first_share=1 / 4, seed=0, margin=1.0, screen_beam=10)
    assert decode.beams == [{10}, {10}, {50}]  # rungs of 16, 32 utterances at beam 10, then all of dev at 50
    assert [len(u) for u in decode.utts] == [16, 16, 64]  # the last rung re-decodes all of dev
    assert sorted(decode.utts[-1]) == list(range(64))
    full = [f for f in found if f.share == 1.0]
    assert full and all(f.setting in GRID and f.setting.beam_size == 50 for f in full)
    assert all(f.setting.beam_size == 10 and f.setting.beam_size_token == 6 for f in found if f.share < 1.0)
    order = dev_order(64, 0)
    for f in full:  # its own full-beam hypotheses on all of dev (in the seeded order), none of the screening beam's
        hyps = [REFS[u] if ((u * 37) % 64) / 64 >= error_rate(f.setting) else "wrong" for u in order]
        assert f.score == score([REFS[u] for u in order], hyps)
    assert min(full, key=lambda f: f.score.wer).setting.lm_weight == BEST_LM
    # utterances x beam: the screening rungs within the first's; on the last, the best 1/eta (4) and
    # no extras, since one more full-beam setting on all of dev would cost more than the first rung
    assert decode.costs == [16 * 16 * 10, 8 * 16 * 10, 4 * 64 * 50]


def test_tpe_is_seeded_and_stays_in_range():
    ranges = {"lm_weight": [0.0, 3.0], "beam_size": [10, 20]}
    a = tpe_search(Setting(), ranges, REFS, Planted(), n=12, startup_trials=4, seed=5)
    b = tpe_search(Setting(), ranges, REFS, Planted(), n=12, startup_trials=4, seed=5)
    c = tpe_search(Setting(), ranges, REFS, Planted(), n=12, startup_trials=4, seed=6)
    assert [(f.setting, f.score) for f in a] == [(f.setting, f.score) for f in b]
    assert [f.setting for f in a] != [f.setting for f in c]
    assert 1 <= len(a) <= 12 and all(f.share == 1.0 for f in a)
    assert all(0.0 <= f.setting.lm_weight <= 3.0 and 10 <= f.setting.beam_size <= 20 for f in a)
    assert all(f.setting.word_score == Setting().word_score for f in a)  # knobs outside ranges stay
    best = min(a, key=lambda f: f.score.wer)
    assert abs(best.setting.lm_weight - BEST_LM) < 0.5  # it finds the planted basin in 12 trials


def _shard(path, rows):
    write_tsv(path, COLUMNS, rows)


def test_merge_picks_only_among_full_dev_rows(tmp_path, capsys):
    """A partial-share row with a lower WER (fewer, easier utterances) is never chosen."""
    partial = score(["a b"], ["a b"])  # WER 0 on 1/16 of dev
    full = score(["a b", "c d"], ["a b", "c x"])  # WER 0.25 on all of dev
    rows = [setting_row("greedy", None, full, 0.1), setting_row(0, Setting(lm_weight=0.5), partial, 0.1, share=0.0625),
            setting_row(1, Setting(lm_weight=2.0), full, 0.2, share=1.0)]
    (tmp_path / "shards").mkdir()
    _shard(tmp_path / "shards/0-of-1.tsv", rows)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"decode": {"sweep": {"method": "halving", "eta": 3, "first_share": 0.0625}}}))
    merge_sweep(["--config", str(cfg), "--shards", str(tmp_path / "shards/0-of-1.tsv"), "--out-dir", str(tmp_path)])
    best = json.loads((tmp_path / "best_on_dev.json").read_text())
    assert best["index"] == 1 and best["dev_wer"] == 0.25 and best["n_settings"] == 2 and best["n_full_dev"] == 1
    assert best["method"] == "halving" and best["search"]["eta"] == 3
    _shard(tmp_path / "shards/0-of-1.tsv", rows[:2])
    with pytest.raises(SystemExit):  # nothing on all of dev: refused, not a silent partial pick
        merge_sweep(["--shards", str(tmp_path / "shards/0-of-1.tsv"), "--out-dir", str(tmp_path)])  # config in out-dir
    assert "scored on all of dev" in capsys.readouterr().err


@pytest.mark.parametrize("sweep, message", [
    ({"method": "halving", "shards": 2}, "decode.sweep.shards"),
    ({"method": "tpe", "shards": 3}, "decode.sweep.shards"),
    ({"method": "bayes"}, "decode.sweep.method"),
    ({"method": "halving", "eta": 1}, "decode.sweep.eta"),
    ({"method": "halving", "first_share": 0}, "decode.sweep.first_share"),
    ({"method": "halving", "first_share": 1.5}, "decode.sweep.first_share"),
    ({"method": "halving", "candidates": "tpe"}, "decode.sweep.candidates"),
    ({"method": "halving", "margin": -1}, "decode.sweep.margin"),
    ({"method": "halving", "screen_beam": -1}, "decode.sweep.screen_beam"),
    ({"method": "halving", "screen_beam": 2.5}, "decode.sweep.screen_beam"),
    ({"method": "tpe", "startup_trials": 0}, "decode.sweep.startup_trials"),
])
def test_schema_refuses_bad_search_keys(sweep, message):
    config = schema_defaults(load_schema("recipe"))
    config["decode"]["sweep"].update(sweep)
    with pytest.raises(UserError, match=message):
        validate_resolved(config, "recipe")


def test_schema_accepts_grid_and_random_shards_and_the_search_defaults():
    config = schema_defaults(load_schema("recipe"))
    for sweep in ({"method": "grid", "shards": 4}, {"method": "random", "shards": 2}, {"method": "halving"},
                  {"method": "tpe", "n": 8}):
        config["decode"]["sweep"].update({"shards": 1, **sweep})
        validate_resolved(config, "recipe")
