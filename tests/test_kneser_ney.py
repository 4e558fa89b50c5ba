"""The pure-Python Kneser-Ney estimator: same model as KenLM's lmplz, and normalised."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from asrsweep.decoding.kneser_ney import FALLBACK_DISCOUNTS, discounts_for, estimate, read_arpa, write_arpa
from asrsweep.decoding.train_ngram import main as train_ngram

CACHED_LMPLZ = Path.home() / ".cache/asrsweep/kenlm-bin/bin/lmplz"


def lmplz_path() -> str | None:
    """ASRSWEEP_LMPLZ, PATH, or the cache of tests/tools/build_lmplz.sh."""
    for cand in (os.environ.get("ASRSWEEP_LMPLZ"), shutil.which("lmplz"), str(CACHED_LMPLZ)):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def require_lmplz() -> str:
    """The lmplz path; skip the test without one, or fail where ASRSWEEP_REQUIRE_LMPLZ is set."""
    lmplz = lmplz_path()
    if lmplz is None:
        if os.environ.get("ASRSWEEP_REQUIRE_LMPLZ"):  # CI builds lmplz: never skip there
            pytest.fail("lmplz not found but ASRSWEEP_REQUIRE_LMPLZ is set")
        pytest.skip("lmplz not found (set ASRSWEEP_LMPLZ, put it on PATH, or run tests/tools/build_lmplz.sh)")
    return lmplz


def corpus(n: int, seed: int = 0) -> list[str]:
    """Zipf-ish sentences with some bigram structure, lengths 1..12."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(300)]
    weights = [1.0 / (i + 1) for i in range(300)]
    out = []
    for _ in range(n):
        sent = [rng.choices(words, weights)[0]]
        for _ in range(rng.randint(0, 11)):
            if rng.random() < 0.6:
                sent.append(words[(int(sent[-1][1:]) * 7 + rng.randint(0, 3)) % 300])
            else:
                sent.append(rng.choices(words, weights)[0])
        out.append(" ".join(sent))
    return out


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_matches_lmplz(tmp_path, order):
    lmplz = require_lmplz()
    sents = corpus(3000) + ["w1 w1 w1", "w2"]
    text = tmp_path / "lm.txt"
    text.write_text("\n".join(sents) + "\n")
    ref = tmp_path / "ref.arpa"
    with open(text) as src, open(ref, "w") as dst:
        subprocess.run([lmplz, "-o", str(order), "-S", "5%", "-T", str(tmp_path), "--discount_fallback"],
                       stdin=src, stdout=dst, stderr=subprocess.DEVNULL, check=True)
    ours = tmp_path / "ours.arpa"
    write_arpa(estimate(sents, order), ours)
    a, b = read_arpa(ours), read_arpa(ref)
    assert set(a) == set(b)
    worst = max(max(abs(a[g][0] - b[g][0]), abs(a[g][1] - b[g][1])) for g in a)
    assert worst < 1e-4


def conditional(model: dict, context: tuple, word: str) -> float:
    """log10 p(word | context) by the ARPA back-off rule."""
    if context + (word,) in model:
        return model[context + (word,)][0]
    backoff = model[context][1] if context in model else 0.0
    return backoff + conditional(model, context[1:], word)


@pytest.mark.parametrize("order", [2, 3, 4])
def test_every_context_sums_to_one(tmp_path, order):
    path = tmp_path / "lm.arpa"
    write_arpa(estimate(corpus(300, seed=1), order), path)
    model = read_arpa(path)
    vocab = [g[0] for g in model if len(g) == 1 and g[0] != "<s>"]
    contexts = [g for g in model if len(g) < order and g[-1] not in ("</s>",)]
    contexts = [()] + contexts[:: max(1, len(contexts) // 60)]
    for ctx in contexts:
        total = sum(10 ** conditional(model, ctx, w) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4), ctx


def test_kenlm_reads_the_arpa_and_agrees(tmp_path):
    kenlm = pytest.importorskip("kenlm")
    path = tmp_path / "lm.arpa"
    write_arpa(estimate(corpus(300, seed=2), 3), path)
    model, arpa = kenlm.Model(str(path)), read_arpa(path)
    sentence = "w1 w7 w3 w0 zzz"
    ours, ctx = 0.0, ("<s>",)
    for word in sentence.split() + ["</s>"]:
        word = word if (word,) in arpa else "<unk>"
        ours += conditional(arpa, ctx, word)
        ctx = (ctx + (word,))[-2:]
    assert model.score(sentence) == pytest.approx(ours, abs=1e-4)


def test_discount_fallback_on_tiny_corpus():
    counts = {("a",): 1, ("b",): 1}  # no count-2 or count-3 n-grams: closed form fails
    assert discounts_for(counts) == FALLBACK_DISCOUNTS
    with pytest.raises(ValueError):
        discounts_for(counts, fallback=None)
    model = estimate(["the cat sat", "the dog"], 3)
    assert len(model.orders) == 3 and all(d == FALLBACK_DISCOUNTS for d in model.discounts[::2])


def test_cli_builtin_and_missing_lmplz(tmp_path, monkeypatch, capsys):
    text = tmp_path / "lm.txt"
    text.write_text("the cat sat\nthe dog sat\n")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"ngram": {"order": 2, "estimator": "builtin"}}))
    train_ngram(["--config", str(config), "--text", str(text), "--outdir", str(tmp_path / "ng")])
    assert ("the", "cat") in read_arpa(tmp_path / "ng" / "lm.arpa")
    assert (tmp_path / "ng" / "command.sh").is_file()
    config.write_text(json.dumps({"ngram": {"order": 2, "estimator": "lmplz"}}))
    monkeypatch.setenv("ASRSWEEP_LMPLZ", str(tmp_path / "missing-lmplz"))
    from asrsweep.core.common import cli_main
    with pytest.raises(SystemExit) as err:
        cli_main(train_ngram, ["--config", str(config), "--text", str(text), "--outdir", str(tmp_path / "ng2")])
    assert err.value.code == 2 and "lmplz" in capsys.readouterr().err
    assert not (tmp_path / "ng2" / "lm.arpa").exists()


def test_cli_lmplz_estimator(tmp_path, monkeypatch):
    lmplz = require_lmplz()
    monkeypatch.setenv("ASRSWEEP_LMPLZ", lmplz)
    text = tmp_path / "lm.txt"
    text.write_text("\n".join(corpus(200)) + "\n")
    config = tmp_path / "config.json"
    for est in ("lmplz", "builtin"):
        config.write_text(json.dumps({"ngram": {"order": 3, "estimator": est}}))
        train_ngram(["--config", str(config), "--text", str(text), "--outdir", str(tmp_path / est)])
    a, b = read_arpa(tmp_path / "lmplz" / "lm.arpa"), read_arpa(tmp_path / "builtin" / "lm.arpa")
    assert set(a) == set(b) and all(math.isclose(a[g][0], b[g][0], abs_tol=1e-4) for g in a)
