"""The multi-word search under the credential keywords and the namespace finder."""

from __future__ import annotations

import random

import pytest
from airlock.wordsearch import WordSearch


@pytest.mark.parametrize("dfa", [False, True])
def test_every_occurrence_is_found_overlapping_ones_too(dfa: bool) -> None:
    words = WordSearch(["pass", "password", "word", "sword"], dfa=dfa)
    text = "my password"
    found = sorted((words.words[i], text[s:e], s) for i, s, e in words.find(text))
    assert found == [
        ("pass", "pass", 3),
        ("password", "password", 3),
        ("sword", "sword", 6),
        ("word", "word", 7),
    ]
    assert words.any_in("a sword")
    assert not words.any_in("pas wor")


@pytest.mark.parametrize("dfa", [False, True])
def test_a_lone_surrogate_keeps_every_offset(dfa: bool) -> None:
    words = WordSearch(["key", "\ud800x"], dfa=dfa)
    text = "\udcfe api key \ud800x"
    assert [(words.words[i], s, e) for i, s, e in words.find(text)] == [
        ("key", 6, 9),
        ("\ud800x", 10, 12),
    ]


def test_the_dfa_finds_what_the_default_automaton_finds() -> None:
    rnd = random.Random(7)  # noqa: S311 - synthetic
    alphabet = "abcdeé\n._-"
    vocab = {"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 6))) for _ in range(300)}
    default, dfa = WordSearch(sorted(vocab)), WordSearch(sorted(vocab), dfa=True)
    for _ in range(500):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 200)))
        assert sorted(dfa.find(text)) == sorted(default.find(text))
