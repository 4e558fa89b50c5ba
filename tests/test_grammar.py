"""Tests for asrsweep.data.grammar: determinism, vocabulary size, sentence shape."""

from __future__ import annotations

import re

import pytest

from asrsweep.data import grammar


def test_same_seed_same_sentences_other_seed_differs():
    assert grammar.sentences(3, 300) == grammar.sentences(3, 300)
    assert grammar.sentences(3, 300) != grammar.sentences(4, 300)


def test_vocabulary_is_a_few_hundred_words_and_covers_every_sentence():
    vocab = grammar.vocabulary()
    assert 300 <= len(vocab) <= 450
    used = {w for s in grammar.sentences(0, 5000) for w in s.split()}
    assert used <= vocab
    assert len(used) > 0.9 * len(vocab)  # the grammar really uses its vocabulary


def test_sentences_are_normalised():
    for text in grammar.sentences(1, 500):
        assert text == text.lower() and text == " ".join(text.split())
        assert re.fullmatch(r"[a-z' ]+", text)


def test_unique_sentences_are_distinct_and_respect_exclusions():
    first = grammar.unique_sentences(5, 200)
    assert len(set(first)) == 200
    again = grammar.unique_sentences(5, 200, exclude=set(first[:50]))
    assert not set(again) & set(first[:50])
    assert grammar.unique_sentences(5, 200) == first


def test_unique_sentences_fails_when_the_grammar_is_exhausted(monkeypatch):
    monkeypatch.setattr(grammar, "sentence", lambda rng: "the same sentence")
    with pytest.raises(ValueError, match="distinct"):
        grammar.unique_sentences(0, 2)


def test_number_words():
    assert grammar.number_words(342) == "three hundred and forty two"
    assert grammar.number_words(17) == "seventeen"
    assert grammar.number_words(90) == "ninety"
    assert grammar.number_words(100) == "one hundred"
    with pytest.raises(ValueError):
        grammar.number_words(0)
