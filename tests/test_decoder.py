"""Beam search with lexicon + KenLM on hand-built emissions whose best paths are known."""

from __future__ import annotations

import numpy as np
import pytest

from asrsweep.decoding.decoder import Decoder, Setting, greedy, make_setting
from asrsweep.decoding.kneser_ney import estimate, write_arpa
from asrsweep.decoding.make_lexicon import arpa_order, arpa_unigrams, build_lexicon, write_token_lm
from asrsweep.decoding.scoring import score
from asrsweep.core.common import UserError

TOKENS = ["<blank>", "<unk>", "\u2581the", "\u2581ca", "t", "p", "\u2581sat", "\u2581dog", "\u2581cat"]
LEXICON = {"the": ["\u2581the"], "cat": ["\u2581ca", "t"], "sat": ["\u2581sat"], "dog": ["\u2581dog"]}
LM_TEXT = ["the cat sat"] * 6 + ["the dog"] * 2 + ["the sat"]


def tok(piece: str) -> int:
    return TOKENS.index(piece)


def frames(spec: list[dict[str, float]]) -> np.ndarray:
    """Log-probs [T, V]: each frame gives probabilities to some pieces, the rest shared evenly."""
    out = []
    for probs in spec:
        row = np.full(len(TOKENS), (1.0 - sum(probs.values())) / (len(TOKENS) - len(probs)))
        for piece, p in probs.items():
            row[tok(piece)] = p
        out.append(np.log(row))
    return np.array(out, dtype=np.float32)


B = {"<blank>": 0.9}


def utterance(middle: list[dict[str, float]]) -> np.ndarray:
    """'the <middle> sat' with blanks between pieces."""
    return frames([{"\u2581the": 0.9}, B, *[f for m in middle for f in (m, B)], {"\u2581sat": 0.9}, B])


# Acoustics prefer the non-word spelling "▁ca p" over "▁ca t" (cat).
CAP = utterance([{"\u2581ca": 0.9}, {"p": 0.55, "t": 0.4}])
# Acoustics slightly prefer "dog" over "cat" (a single piece ▁cat exists only in tokens.txt).
DOG_OR_CAT = utterance([{"\u2581dog": 0.5, "\u2581ca": 0.45}, {"t": 0.45, "<blank>": 0.5}])


class WorldTokens:
    """The world's tokenizer: spells each word of a sentence as LEXICON says."""

    pieces = TOKENS

    def encode(self, text):
        return [tok(p) for word in text.split() for p in LEXICON[word]]


def write_world(tmp_path):
    """tokens.txt, lexicon.txt (with <unk>), a 3-gram lm.arpa and, beside the lexicon, the token
    3-gram tokens.arpa over the pieces of the same text; returns (lexicon, arpa, tokens)."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(t + "\n" for t in TOKENS), encoding="utf-8")
    lexicon = tmp_path / "lexicon.txt"
    lines = [f"{w}\t{' '.join(p)}\n" for w, p in LEXICON.items()] + ["<unk>\t<unk>\n"]
    lexicon.write_text("".join(lines), encoding="utf-8")
    arpa = tmp_path / "lm.arpa"
    write_arpa(estimate(LM_TEXT, 3), arpa)
    write_token_lm(WorldTokens(), LM_TEXT, arpa_order(arpa), tmp_path / "tokens.arpa")
    return lexicon, arpa, tokens


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    return Decoder(*write_world(tmp_path_factory.mktemp("world")))


def best(decoder, setting, em):
    return decoder.decode(decoder.search(setting), em)[0].text


def test_greedy_follows_acoustics():
    assert greedy(CAP, TOKENS).text == "the cap sat"


def test_lexicon_turns_non_word_into_word(decoder):
    assert best(decoder, Setting(lm_weight=0.0, word_score=0.0), CAP) == "the cat sat"


def test_lm_weight_flips_the_word_choice(decoder):
    assert best(decoder, Setting(lm_weight=0.0, word_score=0.0), DOG_OR_CAT) == "the dog sat"
    assert best(decoder, Setting(lm_weight=2.0, word_score=0.0), DOG_OR_CAT) == "the cat sat"


def test_lexicon_free_keeps_the_acoustic_best_without_lm(decoder):
    assert best(decoder, Setting(decoder="lexicon_free", lm_weight=0.0), CAP) == "the cap sat"


def test_lexicon_free_token_lm_changes_the_result(decoder):
    """The token n-gram has seen "▁ca t" but never "p": with weight it spells the LM's word."""
    hyp = decoder.decode(decoder.search(Setting(decoder="lexicon_free", lm_weight=1.0)), CAP)[0]
    assert hyp.text == "the cat sat" and hyp.lm_score < 0
    assert hyp.score == pytest.approx(hyp.am_score + 1.0 * hyp.lm_score, abs=1e-3)


def test_lexicon_free_is_open_vocabulary(decoder):
    """A word outside the lexicon ("cap") comes out, which the lexicon decoder cannot produce."""
    out = best(decoder, Setting(decoder="lexicon_free", lm_weight=0.1), CAP)
    assert out == "the cap sat" and "cap" not in decoder.words
    assert best(decoder, Setting(lm_weight=0.1, word_score=0.0), CAP) == "the cat sat"


def test_lexicon_free_without_token_lm_is_one_line(tmp_path):
    lexicon, arpa, tokens = write_world(tmp_path)
    (tmp_path / "tokens.arpa").unlink()
    decoder = Decoder(lexicon, arpa, tokens)
    assert best(decoder, Setting(), CAP) == "the cat sat"  # the lexicon decoder never reads it
    with pytest.raises(UserError, match="tokens.arpa: file not found"):
        decoder.search(Setting(decoder="lexicon_free"))


def test_scores_are_consistent(decoder):
    s = Setting(lm_weight=1.5, word_score=0.5)
    hyp = decoder.decode(decoder.search(s), CAP, nbest=3)[0]
    assert hyp.score == pytest.approx(hyp.am_score + 1.5 * hyp.lm_score + 0.5 * 3, abs=1e-3)
    assert hyp.lm_score < 0 and hyp.tokens == [tok("\u2581the"), tok("\u2581ca"), tok("t"), tok("\u2581sat")]


def test_make_setting_checks_values():
    assert make_setting({"unk_score": "-inf", "beam_size": "10"}, "x").beam_size == 10
    with pytest.raises(UserError, match="decoder"):
        make_setting({"decoder": "viterbi"}, "x")
    with pytest.raises(UserError, match="unknown"):
        make_setting({"lm_wieght": 1}, "x")


class FakeTokens:
    """Spells each word as ▁ + its letters (or <unk> for digits)."""

    pieces = ["<blank>", "<unk>", "\u2581"] + list("abcdefghijklmnopqrstuvwxyz")

    def encode(self, word):
        if any(c.isdigit() for c in word):
            return [1]
        return [2] + [self.pieces.index(c) for c in word]


def test_lexicon_spells_lm_vocabulary(tmp_path):
    arpa = tmp_path / "lm.arpa"
    write_arpa(estimate(["the cat", "a 4x4 car"], 2), arpa)
    words = arpa_unigrams(arpa)
    assert words[:3] == ["<unk>", "<s>", "</s>"]
    entries, skipped = build_lexicon(FakeTokens(), words)
    lex = dict(entries)
    assert lex["cat"] == ["\u2581", "c", "a", "t"] and lex["<unk>"] == ["<unk>"]
    assert "<s>" not in lex and "</s>" not in lex and skipped == ["4x4"]


def test_scoring_counts_errors():
    s = score(["a b c", "d e", ""], ["a x c", "d e f", "g"])
    assert (s.substitutions, s.deletions, s.insertions, s.words) == (1, 0, 2, 5)
    assert s.utt_errors == (1, 1, 1) and s.wer == pytest.approx(3 / 5)
