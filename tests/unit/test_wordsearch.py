"""The multi-word search under the credential keywords and the namespace finder."""

from __future__ import annotations

import random

import pytest
from airlock import wordsearch
from airlock.wordsearch import WordSearch


@pytest.fixture(autouse=True)
def dfa_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``dfa=True`` search builds its DFA at the first text (in use: after a megabyte)."""
    monkeypatch.setattr(wordsearch, "DFA_AFTER", 0)


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


def test_the_dfa_is_built_once_enough_text_was_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordsearch, "DFA_AFTER", 100)
    words = WordSearch(["token", "secret"], dfa=True)
    plain = WordSearch(["token", "secret"])
    never = plain._automaton
    text = "a secret token " * 4  # 60 characters a search
    first = words._automaton
    assert words.find(text) == plain.find(text)
    assert words._automaton is first  # 60 searched: not yet
    assert words.find(text) == plain.find(text)  # 120: built, and used for this search
    built = words._automaton
    assert built is not first
    assert words.find(text) == plain.find(text)
    assert words._automaton is built  # once
    for _ in range(3):
        plain.find(text)
    assert plain._automaton is never  # dfa=False: never one
