"""The scoring normalisation (section `score`): each normaliser, applied to refs and hyps alike
by every scorer; the default leaves every number as it was."""

from __future__ import annotations

import json

import pytest
import torch

from asrsweep.core.common import UserError
from asrsweep.decoding.decode_frozen import main as decode_frozen
from asrsweep.decoding.decode_sweep import main as decode_sweep
from asrsweep.decoding.merge_sweep import main as merge_sweep
from asrsweep.decoding.scoring import NORMALIZERS, ScoreConfig, load_score_config, normalize_all, normalizer, score
from test_decode_sweep import common_flags, config, world  # noqa: F401  (fixture)


def test_default_is_none_and_changes_nothing():
    assert ScoreConfig().normalize == "none"
    refs, hyps = ["well-known Cats", "a b"], ["well known cats", "a c"]
    assert score(refs, hyps) == score(refs, hyps, "none")
    assert score(refs, hyps).wer == pytest.approx(4 / 4)


def test_hyphens_split_words_on_both_sides():
    assert normalize_all(["well-known  x-ray", "a -b"], "hyphens") == ["well known x ray", "a b"]
    s = score(["a well-known cat"], ["a well known cat"], "hyphens")
    assert s.wer == 0.0 and s.words == 4 and s.utt_words == (4,)


def test_whisper_en():
    fn = normalizer("whisper_en")
    assert fn("Uh, I WON'T go [noise] (laughs) -- they're here!") == "i will not go they are here"
    assert fn("Don't stop; it's 42 o\u2019clock") == "do not stop it's 42 o'clock"
    assert fn("Hmm   ") == ""
    assert score(["I can't."], ["i can not"], "whisper_en").wer == 0.0


def test_unknown_name_is_an_error():
    with pytest.raises(ValueError, match="use one of"):
        normalizer("shouting")
    assert set(NORMALIZERS) == {"none", "hyphens", "whisper_en"}



def test_load_score_config(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"score": {"normalize": "hyphens"}}))
    assert load_score_config(path).normalize == "hyphens"
    path.write_text(json.dumps({}))  # a config from before the section: today's scoring
    assert load_score_config(path).normalize == "none"
    path.write_text(json.dumps({"score": {"normalize": "loud"}}))
    with pytest.raises(UserError, match="score.normalize"):
        load_score_config(path)


def test_sweep_and_frozen_decode_score_normalised(world):  # noqa: F811
    """References written "cat-sat": wrong for every hypothesis unless hyphens are split, in
    the dev sweep (decode_sweep) and in the frozen decode alike."""
    for split in ("dev", "test"):
        blob = torch.load(world["emissions"] / f"{split}.pt", weights_only=False)
        blob["texts"] = [t.replace("cat sat", "cat-sat") for t in blob["texts"]]
        torch.save(blob, world["emissions"] / f"{split}.pt")
    wers = {}
    for norm in ("none", "hyphens"):
        cfg = config(world["tmp"], 1, name=f"c-{norm}.json")
        data = json.loads(open(cfg).read())
        open(cfg, "w").write(json.dumps({**data, "score": {"normalize": norm}}))
        out = world["tmp"] / norm
        decode_sweep(common_flags(world, cfg) + ["--out", str(out / "shards/0-of-1.tsv")])
        merge_sweep(["--config", cfg, "--shards", str(out / "shards/0-of-1.tsv"), "--out-dir", str(out)])
        decode_frozen(common_flags(world, cfg) + ["--best", str(out / "best_on_dev.json"), "--outdir", str(out / "nb")])
        best = json.loads((out / "best_on_dev.json").read_text())
        test = json.loads((out / "nb" / "test.json").read_text())
        wers[norm] = (best["dev_wer"], test["dev"]["wer"], test["wer"])
        assert test["scoring"] == {"normalize": norm}
    assert wers["hyphens"][0] == 0.0 and wers["hyphens"][1] == 0.0
    assert all(a > b for a, b in zip(wers["none"], wers["hyphens"]))


def test_rescore_scores_normalised(tmp_path):
    """Upper-case references: whisper_en scores them as the lower-case ones; none cannot."""
    import numpy as np

    from asrsweep.rescoring import rescore
    from test_rescore import write_tree

    dirs = write_tree(tmp_path, np.random.default_rng(4), first_pass=(0.5, 0.0))
    section = {"ngram_weight": [0, 1], "lm_weight": [0.5], "length_weight": [0, 1]}

    def run(normalize):
        config = tmp_path / "config.json"
        config.write_text(json.dumps({"seed": 1, "rescore": section, "score": {"normalize": normalize}}))
        return rescore.main(["--config", str(config), "--nbest", str(dirs["nbest"]), "--lmscore", str(dirs["lmscore"]),
                             "--emissions", str(dirs["emissions"]), "--outdir", str(dirs["out"])])

    plain = run("none")
    for split in ("dev", "test"):
        blob = torch.load(dirs["emissions"] / f"{split}.pt", weights_only=False)
        torch.save({**blob, "texts": [t.upper() for t in blob["texts"]]}, dirs["emissions"] / f"{split}.pt")
    upper = run("whisper_en")
    assert (upper["wer"], upper["scoring"]) == (plain["wer"], {"normalize": "whisper_en"})
    assert run("none")["wer"] > plain["wer"]
