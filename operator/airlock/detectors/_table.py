"""The shape of a provider rule and the three ways of writing one.

A rule is data: an id, the provider, what it matches, the literal keywords without which it
cannot match (fed to the keyword prefilter, compared lower-cased), and a regex whose group ``s``
(or whole match) is the secret. Rules are written in three forms:

- :func:`token`: a literal prefix and a body (``ghp_`` + 36 base62). The pattern refuses a prefix
  glued to a preceding word (``task-sk-...``) and a body longer than the format allows;
- :func:`near`: a value with no prefix of its own, recognised only after one of the provider's
  names on the same line (``softlayer_api_key = <64 hex>``, ``MISTRAL_API_KEY=<32 alnum>``);
- :func:`raw`: anything else (connection strings, URLs, structured formats).

``token`` and ``near`` rules keep their shape (prefix, alphabet, length), so tests synthesise
positive and near-miss examples for every one of them from the table itself.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Characters that make a prefix "glued" to a preceding word.
WORD = "A-Za-z0-9_-"


class ProviderRule(NamedTuple):
    id: str
    provider: str
    matches: str  # human description: what the rule matches
    keywords: tuple[str, ...]  # lower-case literals; one is in every match (case-insensitively)
    pattern: str
    verify: str = ""  # name of a check applied to the secret (a checksum), "" for none
    # Shape, for rules written with token() / near(): tests build examples from it.
    prefix: str = ""
    alphabet: str = ""
    length: tuple[int, int] = (0, 0)  # body length (min, max); max 0 = unbounded
    names: tuple[str, ...] = ()
    kind: str = ""  # the credential's human name in messages; defaults to "<provider> <matches>"
    tail: str = ""  # regex after a token's body (a fixed suffix), for examples

    @property
    def label(self) -> str:
        return self.kind or f"{self.provider} {self.matches}"


def _quant(length: int | tuple[int, int]) -> tuple[tuple[int, int], str]:
    lo, hi = (length, length) if isinstance(length, int) else length
    return (lo, hi), f"{{{lo},{hi if hi else ''}}}"


def token(  # noqa: PLR0917 - a table row reads best positionally
    id: str,
    provider: str,
    matches: str,
    prefix: str,
    alphabet: str,
    length: int | tuple[int, int],
    *,
    verify: str = "",
    kind: str = "",
    tail: str = "",
) -> ProviderRule:
    """A prefixed token. ``tail`` is an extra regex after the body (a fixed suffix)."""
    rng, q = _quant(length)
    esc = re.escape(prefix)
    # A fixed-length body after a distinctive prefix is the token even when more characters
    # follow (tokens pasted together, a suffix glued on); a variable-length body ends at the
    # first character outside its alphabet.
    distinctive = len(prefix) >= 4 or any(c in prefix for c in "-_.")
    end = "" if rng[0] == rng[1] and distinctive and not tail else f"(?![{alphabet}])"
    pattern = f"{esc}(?<![{WORD}]{esc})[{alphabet}]{q}{tail}{end}"
    return ProviderRule(
        id,
        provider,
        matches,
        (prefix.lower(),),
        pattern,
        verify,
        prefix,
        alphabet,
        rng,
        (),
        kind,
        tail,
    )


# Between a provider's name and its value: the rest of a variable or flag name, an optional
# closing quote, an assignment (``=``, ``:``, ``:=``, ``=>``, a space) and an optional opening
# quote. A few words of prose ("bot token is") are allowed too; runs of blanks are bounded, so a
# name is not taken as the context of a value a page further on.
_GAP = (
    r"[\w.\-]{0,40}?[\"']?"
    r"(?:[ \t]{0,40}(?::=|=>|[:=])[ \t]{0,40}|[ \t]{1,40}(?:[A-Za-z]+[ \t]{1,40}){0,3})[\"']?"
)
# Before a provider's name: not a letter (``add_api`` does not name Datadog's ``dd_api``), except
# at a camelCase hump (``myMistralKey``) and after a JVM property flag (``-Dsonar.login=``).
NAME_START = r"(?:(?<![A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=-D))"


# After it: not a camelCase hump at its last letter (``sumOfExposures`` does not name Sumo
# Logic's ``sumo``: its "O" starts the word "Of").
NAME_END = r"(?!(?<=[a-z][A-Z])[a-z])"


def near(  # noqa: PLR0917 - a table row reads best positionally
    id: str,
    provider: str,
    matches: str,
    names: tuple[str, ...],
    alphabet: str,
    length: int | tuple[int, int],
    *,
    kind: str = "",
    verify: str = "",
) -> ProviderRule:
    """A prefix-less value right after one of the provider's names (case-insensitive);
    ``verify`` names a check of the value's shape that the alphabet alone does not say."""
    rng, q = _quant(length)
    alt = "|".join(re.escape(n) for n in names)
    body = f"(?<![{alphabet}])(?P<s>[{alphabet}]{q})(?![{alphabet}])"
    pattern = f"{NAME_START}(?i:{alt}){NAME_END}{_GAP}{body}"
    return ProviderRule(
        id,
        provider,
        matches,
        tuple(n.lower() for n in names),
        pattern,
        verify,
        "",
        alphabet,
        rng,
        names,
        kind,
    )


def raw(
    id: str,
    provider: str,
    matches: str,
    keywords: tuple[str, ...],
    pattern: str,
    *,
    verify: str = "",
    kind: str = "",
) -> ProviderRule:
    return ProviderRule(id, provider, matches, keywords, pattern, verify, kind=kind)
