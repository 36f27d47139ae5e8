"""Many literal words searched in one walk of a string (Aho-Corasick, in Rust).

The credential detectors find their ~450 keywords with it, and the cross-environment rules the
namespaces of other environments. Any Python string is accepted, as a word or as a text: one
that cannot be encoded as UTF-8 (lone surrogates, from a file name's undecodable bytes or a
JSON ``"\\ud800"`` escape) is used with those code points replaced one for one, so offsets
stay those of the string.
"""

from __future__ import annotations

from collections.abc import Iterable

import ahocorasick_rs

from airlock.compilecache import regex

__all__ = ["DFA_AFTER", "WordSearch"]

_SURROGATE = regex("[\ud800-\udfff]")

DFA_AFTER = 1 << 20
"""Characters a ``dfa=True`` search reads with the default automaton before it builds its DFA:
the DFA's search saves about 2 ns a character and its build costs 1.5 ms more (the detectors'
~570 keywords), so a scan of a few hundred files never builds it and a webhook soon does."""


class WordSearch:
    """Every occurrence (overlapping ones too) of a fixed set of words."""

    __slots__ = ("_automaton", "_left", "_safe", "words")

    def __init__(self, words: Iterable[str], *, dfa: bool = False) -> None:
        """``dfa``: search with a DFA once :data:`DFA_AFTER` characters were searched; a DFA is
        searched about a third faster than the default automaton but built 3-4 times slower
        and 2-5 times larger (15 MB for 5,000 words): for a fixed set of words searched for a
        long time, such as the detectors' keywords (2 ms, under 1 MB). Both find the same."""
        self.words = tuple(words)  # a match's word index is its index here
        # the automaton silently stops taking words at one it cannot encode: none may reach it
        safe = [_SURROGATE.sub("\ufffd", w) for w in self.words]
        self._automaton = _automaton(safe, dfa=False)
        self._safe = safe if dfa else None  # the words of a DFA still to build
        self._left = DFA_AFTER  # characters to search before it is built

    def find(self, text: str) -> list[tuple[int, int, int]]:
        """``(word index, start, end)`` of every occurrence of a word in ``text``, in order of
        their ends."""
        words = self._safe
        if words is not None:  # (two threads at once may each build it: the same DFA)
            self._left -= len(text)
            if self._left < 0:
                self._automaton = _automaton(words, dfa=True)
                self._safe = None
        try:
            return self._automaton.find_matches_as_indexes(text, overlapping=True)
        except UnicodeEncodeError:
            safe = _SURROGATE.sub("\ufffd", text)
            return self._automaton.find_matches_as_indexes(safe, overlapping=True)

    def any_in(self, text: str) -> bool:
        """Whether any word occurs in ``text``."""
        return bool(self.find(text))


def _automaton(words: list[str], *, dfa: bool) -> ahocorasick_rs.AhoCorasick:
    return ahocorasick_rs.AhoCorasick(
        words,
        matchkind=ahocorasick_rs.MatchKind.Standard,
        implementation=ahocorasick_rs.Implementation.DFA if dfa else None,
    )
