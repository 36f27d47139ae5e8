"""The YAML fast path of ``airlock scan``: Rust-built values, lines found in the text on demand.

PyYAML's libyaml loader builds a Python node (and two position marks) for every scalar before a
value exists; on large inputs that is most of a scan. ``ryaml`` builds the values directly, but
knows nothing of lines. Reports need a line only for each finding, so :class:`TextLines` finds
it in the source text when asked, by the indentation of block YAML.

The fast path is taken only where both parsers agree. ``ryaml`` follows YAML 1.2 and PyYAML (like
the Kubernetes tools) YAML 1.1, which differ on a few plain scalars (``yes``/``on``, ``0755``,
``1e3``, ``1_000``, sexagesimal ``1:20``), and the fast path has no answer for tags, anchors,
merge keys, directives, ``...`` markers or duplicate keys. A file with any of these (or that
``ryaml`` refuses, or whose documents the text split does not count the same) goes through the
exact PyYAML path, which also reports syntax errors with their line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from ryaml._ryaml import InvalidYamlError, loads_all

from airlock.compilecache import regex

__all__ = ["TextLines", "load_documents"]

# Plain scalars that YAML 1.1 and 1.2 read differently (booleans, 0-prefixed and underscored
# numbers, exponents without a dot, sexagesimals, "=" and "<<"): the first characters such a
# token can start with, after what can precede a plain scalar (": ", "- ", "? ", "[", "{", ",",
# or an indentation on a line of its own). Candidates are confirmed by _DIVERGENT at the spot.
# (Possessive quantifiers: nothing to give back to what follows, so no backtracking through
# indentation or digits; the lookahead turns most lines away with one character test. One
# pattern per opening character: a pattern that starts with a literal is searched for as one,
# one that starts with a class tries every position of the text, at twice the cost in all.)
_PLAIN_START = (
    r"(?=[yYnNoO0-9+\-.=<])(?:[yY]es|YES|[nN]o|NO|[oO]n|ON|[oO]ff|OFF|[-+]?0[0-9_oObBxX]"
    r"|[-+]?\.?[0-9]++(?:\.[0-9]*+)?+[eE:_]|[-+]\.[0-9]|=|<<)"
)
# (each with the character it opens with: a text without it is not searched, a test with `in`
# costing a tenth of a search that finds nothing)
_CANDIDATES = (
    (":", regex(r":[ \t]++" + _PLAIN_START)),
    ("-", regex(r"- ++" + _PLAIN_START)),
    ("?", regex(r"\? ++" + _PLAIN_START)),
    ("[", regex(r"\[[ \t]*+" + _PLAIN_START)),
    ("{", regex(r"\{[ \t]*+" + _PLAIN_START)),
    (",", regex(r",[ \t]*+" + _PLAIN_START)),
    ("\n", regex(r"\n[ \t]*+" + _PLAIN_START)),  # a key at any column, 0 too
)
_DIVERGENT = regex(
    r"""(?P<pre>[\n:?\-\[{,])(?P<gap>[ \t]*)
        (?P<token>yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF
          |[-+]?0[0-7_]+
          |[-+]?0[oO][0-7_]+|[-+]?0[bB][01_]+
          |[-+]?0[xX][0-9a-fA-F]*_[0-9a-fA-F_]*
          |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
          |[-+]?(?:[0-9][0-9_]*\.?[0-9_]*|\.[0-9]+)[eE][-+]?[0-9]+
          |[-+]?[0-9]+_[0-9_]*(?:\.[0-9_]*)?
          |[-+]?[0-9]*\.[0-9]*_[0-9_]*
          |[-+]\.[0-9]+
          |=|<<)
        (?P<after>[ \t]*)(?P<end>\r?$|\#|[,\]}:])""",
    re.MULTILINE | re.VERBOSE,
)
# "<<" as a key (a merge), quoted or not; a shell here-document ("cat <<EOF") is no key
_MERGE_KEY = regex(r"""<<["']?[ \t]*:(?![^ \t\r\n])""")
# Anchors, aliases and tags ("&a", "*a", "!tag"; "!" alone is a tag too) where a node starts:
# at the text's start, or after what can precede a node, blanks aside.
_PROPERTY_MARKS = "&*!"
_NOT_A_NAME = frozenset(" \t\r\n,]}")  # what cannot follow "&" or "*" in an anchor or alias
_BEFORE_NODE = frozenset("\n[{,:?-")


def _node_property(text: str) -> bool:
    """Whether ``text`` holds an anchor, alias or tag where a node starts. The marks are found
    with ``str.find`` and the text before each is read backwards: most manifests have none, or a
    few "*" in strings, and a regular expression trying every position costs 6 ns a character."""
    n = len(text)
    for mark in _PROPERTY_MARKS:
        at = text.find(mark)
        while at >= 0:
            if mark == "!" or (at + 1 < n and text[at + 1] not in _NOT_A_NAME):
                before = at - 1
                while before >= 0 and text[before] in " \t":
                    before -= 1
                if before < 0 or text[before] in _BEFORE_NODE:
                    return True
            at = text.find(mark, at + 1)
    return False


# A divergent value is read with a stand-in: the scalar is replaced in the text by a string that
# cannot occur otherwise (a private-use character and its number), the text is parsed, and the
# stand-in is replaced in the values by what YAML 1.1 makes of the scalar. A stand-in that does
# not come back as a whole value (it was in a comment, a block or quoted scalar, a key, or a plain
# scalar over several lines) sends the file to the exact path.
_STAND_IN = "\ue000"
_Spot = tuple[int, int, Any]  # (start, end) of a plain scalar in the text, its YAML 1.1 value


def _divergent(text: str) -> list[_Spot] | None:
    """The values the two parsers read differently, with YAML 1.1's reading of each; ``None``
    when the fast path cannot read ``text`` (merge keys, anchors, aliases, tags, divergent keys,
    or a divergent scalar it does not settle)."""
    if "<<" in text and _MERGE_KEY.search(text):
        return None
    if _node_property(text):
        return None
    if _DIVERGENT.match("\n" + text[:64]):  # a first line that is itself a bare scalar
        return None
    spots: dict[int, _Spot] = {}
    for opening, candidates in _CANDIDATES:
        if opening not in text:
            continue
        for m in candidates.finditer(text):
            d = _DIVERGENT.match(text, m.start())
            if d is None or _in_comment_line(text, d.start("token")) or _longer_string(text, d):
                continue
            spot = _settled(d)
            if spot is None:
                return None
            spots[spot[0]] = spot
    if spots and _STAND_IN in text:
        return None
    return [spots[at] for at in sorted(spots)]


def _longer_string(text: str, m: re.Match[str]) -> bool:
    """The token ``_DIVERGENT`` matched only begins a block sequence entry's plain scalar that
    goes on past a ``:`` (a PCI address ``- 0000:5c:00.0``), and the whole scalar is a string
    in YAML 1.1 too (one with a ``:`` is never a YAML 1.2 number or boolean)."""
    end = m.end("end")
    if m.group("end") != ":" or m.group("pre") != "-" or not m.group("gap"):
        return False
    if end >= len(text) or text[end] in " \t\r\n":
        return False  # "- 0755: x": a key, its value a mapping's
    line_end = text.find("\n", end)
    scalar = text[m.start("token") : len(text) if line_end < 0 else line_end]
    scalar = scalar.partition(" #")[0].rstrip(" \t\r")
    if ": " in scalar or "\t" in scalar or scalar.endswith(":"):
        return False  # a key after all ("- 0000:5c: x")
    return isinstance(yaml11(scalar), str) and yaml11(scalar) == scalar


def _in_comment_line(text: str, at: int) -> bool:
    """``text[at]`` is on a line that starts with a comment (or, in a block scalar, with "#":
    text either way, never a value)."""
    start = text.rfind("\n", 0, at) + 1
    return text[start:at].lstrip(" \t").startswith("#")


def _settled(m: re.Match[str]) -> _Spot | None:
    """The spot of a value ``_DIVERGENT`` matched, if it is one the stand-in can settle: after
    ``: ``, ``- ``, ``? `` or a flow indicator (not a line of its own, which may be the text of a
    block scalar), and ending its line, a flow item or before a comment (not a key)."""
    pre, end = m.group("pre"), m.group("end")
    if pre == "\n" or end == ":" or (pre in ":-?" and not m.group("gap")):
        return None
    if end == "#" and not m.group("after"):
        return None  # "0755#x" is one plain scalar
    value = yaml11(m.group("token"))
    if value is _UNSETTLED:
        return None
    return m.start("token"), m.end("token"), value


_UNSETTLED: Any = object()
_WORDS: dict[str, Any] = {
    **dict.fromkeys(("yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"), True),
    **dict.fromkeys(("no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"), False),
    **dict.fromkeys(("", "~", "null", "Null", "NULL")),
}


@functools.cache
def _numbers_11() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """YAML 1.1's int and float (https://yaml.org/type/int.html, /type/float.html) as PyYAML
    reads them; compiled on first use (few files hold a divergent value)."""
    int_11 = regex(
        r"[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+"
        r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+"
    )
    float_11 = regex(
        r"[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
    )
    return int_11, float_11


def yaml11(token: str) -> Any:
    """What YAML 1.1 (PyYAML's safe loader) makes of the plain scalar ``token``: a boolean, null,
    int, float or string; ``_UNSETTLED`` for ``=``, ``<<`` and numbers its constructor refuses
    (left to the exact path to report). Timestamps stay strings, as in the exact path."""
    if token in _WORDS:
        return _WORDS[token]
    if token in ("=", "<<"):
        return _UNSETTLED
    int_11, float_11 = _numbers_11()
    try:
        if int_11.fullmatch(token):
            return _int11(token)
        if float_11.fullmatch(token):
            return _float11(token)
    except ValueError:
        return _UNSETTLED
    return token


def _sign(text: str) -> tuple[int, str]:
    if text[:1] in "+-":
        return (-1 if text[0] == "-" else 1), text[1:]
    return 1, text


_N = TypeVar("_N", int, float)


def _base60(text: str, digit: Callable[[str], _N]) -> _N:
    """A sexagesimal number, summed from its last part as PyYAML does (a float's rounding
    depends on the order: 1:5:0.03 is 3900.0299999999997 there)."""
    value, base = digit("0"), 1
    for part in reversed(text.split(":")):
        value += digit(part) * base
        base *= 60
    return value


def _int11(token: str) -> int:
    sign, digits = _sign(token.replace("_", ""))
    if digits == "0":
        return 0
    if digits.startswith("0b"):
        return sign * int(digits[2:], 2)
    if digits.startswith("0x"):
        return sign * int(digits[2:], 16)
    if digits[0] == "0":
        return sign * int(digits, 8)
    if ":" in digits:
        return sign * _base60(digits, int)
    return sign * int(digits)


def _float11(token: str) -> float:
    sign, digits = _sign(token.replace("_", "").lower())
    if digits == ".inf":
        return sign * float("inf")
    if digits == ".nan":
        return float("nan")
    if ":" in digits:
        return sign * _base60(digits, float)
    return sign * float(digits)


def _stand_ins(text: str, spots: list[_Spot]) -> tuple[str, dict[str, Any]]:
    """``text`` with each spot's scalar replaced by a numbered stand-in, and stand-in -> value."""
    parts: list[str] = []
    values: dict[str, Any] = {}
    at = 0
    for n, (start, end, value) in enumerate(spots):
        mark = f"{_STAND_IN}{n}{_STAND_IN}"
        parts += (text[at:start], mark)
        values[mark] = value
        at = end
    parts.append(text[at:])
    return "".join(parts), values


def _restore(node: Any, values: dict[str, Any]) -> int:
    """Put each stand-in's value in its place in ``node`` (parsed containers, changed in place);
    how many were put. ``KeyError`` when a stand-in is part of a longer string or is a key."""
    done = 0
    items = node.items() if type(node) is dict else enumerate(node)
    for k, v in items:
        if type(k) is str and _STAND_IN in k:
            raise KeyError(k)
        if type(v) is str:
            if _STAND_IN in v:
                node[k] = values[v]
                done += 1
        elif type(v) is dict or type(v) is list:
            done += _restore(v, values)
    return done


_MARKER = regex(r"^(?:---|\.\.\.)(?:[ \t]|$)")
_END_MARKER = regex(r"\n\.\.\.(?:[ \t\r\n]|$)")  # "..." ends a document
_CONTENT = regex(r"[ \t]*(?:#|$)")  # a line with no content: blank or comment
# A "---" line as _MARKER reads the lines of str.splitlines, in the whole text ("\r" of a
# "\r\n": a lone "\r" never gets this far), and the line breaks other than "\n" (and "\r\n")
# that str.splitlines knows; NEL, LS and PS never get this far either (_odd_breaks)
_DOCUMENT_START = regex(r"\n---(?:[ \t\r]|$)", re.MULTILINE)  # the newline before it
_KEY = regex(
    r"""(?:"(?P<d>(?:[^"\\]|\\.)*)"|'(?P<s>(?:[^']|'')*)'
          |(?P<p>[^\s#'"{}\[\],&*!|>%@`](?:[^#]|(?<![ \t])\#)*?))  # "#" after a blank: a comment
        [ \t]*:(?:[ \t]|$)""",
    re.VERBOSE,
)


_FLOW = -2  # node column of a flow collection (see TextLines.line_of); its offset: the bracket's
# A flow collection over several lines ("args: [" ... "]") is left to the exact path, unless it
# is a sequence of scalars laid out as people write a command (_readable_flow). Its first line
# opens a "[" or "{" where a node may start and does not close it; _multiline_flow looks for
# such a line outside comments and the text of block scalars (JSON payloads, scripts).
_FLOW_START_AFTER = frozenset(":-?,[{")  # what a flow collection may follow (blanks aside)
_COMMENT = regex(r"(?:^|[ \t])#.*")
# a block scalar's header ends its line: "key: |", "- >-", "key: |2 # comment"
_BLOCK_HEADER = regex(r"(?:^|[ \t])[|>][1-9+-]{0,2}[ \t]*(?:#.*)?$")


def _multiline_flow(lines: Sequence[str], text: str) -> bool:
    """``lines`` (``text`` split) may hold a flow collection over several lines (a line break
    between its items, or inside one of its scalars). Doubt counts as yes: the exact path is
    always right."""
    # the common case: no line with a bracket opens a flow it leaves open (comments and block
    # scalars included here; only a yes is worth the walk that tells them apart)
    if all(_flow_opening(line) < 0 for line in _bracket_lines(lines, text)):
        return False
    parent = -1  # inside a block scalar: its text is indented deeper than this column
    after = -1  # the closing line of a flow sequence the fast path reads
    for i, line in enumerate(lines):
        if i <= after:
            continue
        body = line.lstrip(" ")
        ind = len(line) - len(body)
        if parent >= 0:
            if ind > parent or not body.strip():
                continue  # the scalar's text (or a blank line in it)
            parent = -1
        if not body or body[0] == "#":
            continue
        if "[" in body or "{" in body:
            at = _flow_opening(body)
            if at >= 0:
                end = _readable_flow(lines, i, ind + at)
                if end is None:
                    return True
                after = end
                continue
        header = _BLOCK_HEADER.search(body) if "|" in body or ">" in body else None
        # not when the "|" or ">" is in a comment ("name: x  # a | b |")
        if header is not None and _COMMENT.search(body, 0, header.start() + 1) is None:
            parent = _block_parent(line, ind, ind + header.start())
    return False


def _bracket_lines(lines: Sequence[str], text: str) -> Iterator[str]:
    """The lines with a ``[`` or ``{``: found by searching ``text`` for brackets (not a test of
    every line) unless it breaks lines where ``str.splitlines`` does and a search for newlines
    does not."""
    if _other_breaks(text):
        yield from (line for line in lines if "[" in line or "{" in line)
        return
    find = text.find
    square, curly = find("["), find("{")
    while square >= 0 or curly >= 0:
        at = curly if square < 0 or 0 <= curly < square else square
        start = text.rfind("\n", 0, at) + 1
        end = find("\n", at)
        if end < 0:
            end = len(text)
        yield text[start : end - 1 if text.startswith("\r", end - 1) else end]
        if square >= 0 and square < end:
            square = find("[", end)
        if curly >= 0 and curly < end:
            curly = find("{", end)


def _other_breaks(text: str) -> bool:
    """``text`` has line breaks ``str.splitlines`` knows besides "\\n", "\\r\\n" and those
    :func:`_odd_breaks` refuses (a search for newlines would not split lines there)."""
    return "\x0b" in text or "\x0c" in text or "\x1c" in text or "\x1d" in text or "\x1e" in text


def _flow_opening(line: str) -> int:
    """Where ``line`` opens a flow collection it leaves open, or -1: a ``[`` or ``{`` where a
    node may start (its first content, or after ``: ``, ``- ``, ``? ``, ``,`` or another
    bracket) that does not close on the line (or a quoted scalar inside it does not)."""
    find = line.find
    square, curly = find("["), find("{")
    while square >= 0 or curly >= 0:
        at = curly if square < 0 or 0 <= curly < square else square
        j = at - 1
        while j >= 0 and line[j] in " \t":
            j -= 1
        if j < 0 or line[j] in _FLOW_START_AFTER:
            return at if _unclosed(line, at) else -1
        if at == square:
            square = find("[", at + 1)
        else:
            curly = find("{", at + 1)
    return -1


# what cannot start a scalar item of a flow sequence the fast path reads (a nested collection,
# a comment, an alias, anchor or tag, a block scalar, reserved characters, an explicit key)
_NOT_AN_ITEM = frozenset("[]{}#&*!|>%@`?")
_FLOW_PLAIN_STOPS = frozenset(":?#{}[\t")  # in a plain item: left to the exact path


def _flow_sequence(lines: Sequence[str], li: int, col: int) -> tuple[list[int], int] | None:
    """The lines where the items of the flow sequence opened by the ``[`` at ``lines[li][col]``
    start, and the line where it closes; ``None`` unless it holds scalars only: each quoted one
    on one line, each plain one without ``: `` or `` #`` and followed by ``,`` or ``]`` on its
    line (no plain scalar over lines, which would join them), and no nested collection, comment,
    alias, anchor, tag or empty item."""
    items: list[int] = []
    expect = True  # an item may start here: after "[" or ","
    i, pos = li, col + 1
    while i < len(lines):
        line = lines[i]
        n = len(line)
        while pos < n:
            ch = line[pos]
            if ch in " \t\r":
                pos += 1
            elif ch == "]":
                return (items, i) if not line[pos + 1 :].strip() else None
            elif ch == ",":
                if expect:
                    return None  # "[, a]", "[a,, b]"
                expect = True
                pos += 1
            elif (
                not expect
                or ch in _NOT_AN_ITEM
                or (ch == "-" and line[pos + 1 : pos + 2] in ("", " ", "\t"))
            ):
                return None
            else:
                if ch in "'\"":
                    end = _quote_end(line, pos)
                    if end < 0:
                        return None  # a quoted scalar over lines
                    pos = end + 1
                else:
                    end = pos
                    while end < n and line[end] not in ",]":
                        end += 1
                    # (":" and "?" end a plain scalar in a flow for PyYAML, before a blank, a
                    # bracket or a comma, and some versions refuse one elsewhere: none at all)
                    if end == n or _FLOW_PLAIN_STOPS.intersection(line[pos:end]):
                        return None
                    pos = end
                items.append(i)
                expect = False
        i, pos = i + 1, 0
    return None


def _readable_flow(lines: Sequence[str], li: int, col: int) -> int | None:
    """The line where the flow collection opened at ``lines[li][col]`` closes, when the fast path
    can read it and find its items' lines: a sequence of scalars (:func:`_flow_sequence`) whose
    lines are all indented deeper than its owner (the key or dash whose value it is, or the
    column before its ``[`` on a line of its own), so that no line inside it reads as the end
    of a block; a last line holding only the ``]`` may stand at its key's column."""
    line = lines[li]
    found = _flow_sequence(lines, li, col) if line[col] == "[" else None
    if found is None:
        return None
    end = found[1]
    before = line[:col].rstrip(" \t")
    keyed = before.endswith(":") and before.lstrip(" -") != ":"  # not "? key" then ": ["
    if not before:
        if not col:
            return None  # a document's root: a line inside could read as "---"
        owner = col - 1  # "[" on a line of its own, below its key or dash
    elif keyed or (before.endswith("-") and _is_item(line, len(before) - 1)):
        owner = _block_parent(line, _indent(line), col)  # the key's column, or the dash's
    else:
        return None
    for k in range(li + 1, end + 1):
        text = lines[k]
        if not text.strip():
            continue
        ind = _indent(text)
        if ind <= owner and not (keyed and k == end and ind == owner and text.strip() == "]"):
            return None
    return end


def _unclosed(line: str, at: int) -> bool:
    """The flow collection opened at ``line[at]`` is still open at the line's end, or a quoted
    scalar in it is. A quote starts a scalar only where a node starts (``[``, ``{``, ``,``,
    ``:`` or ``?`` before it, blanks aside): an apostrophe in ``it's`` is text."""
    rest = line[at:]
    if '"' not in rest and "'" not in rest and "#" not in rest:  # the common case
        return rest.count("[") + rest.count("{") > rest.count("]") + rest.count("}")
    depth = 0
    prev = ""  # the last non-blank character outside quotes
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if ch in "'\"" and prev in "[{,:?":
            i = _quote_end(rest, i)
            if i < 0:
                return True  # a quoted scalar going on below the line
            prev = ch
        elif ch == "#" and i and rest[i - 1] in " \t":
            break  # a comment
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth <= 0:
                return False  # the collection closed on its line
        if ch not in " \t":
            prev = ch
        i += 1
    return depth > 0


def _quote_end(text: str, start: int) -> int:
    """Index of the quote closing the scalar that opens at ``text[start]``, or -1."""
    quote = text[start]
    i = start + 1
    while True:
        i = text.find(quote, i)
        if i < 0:
            return -1
        if quote == "'":
            if text.startswith("''", i):  # an escaped quote
                i += 2
                continue
            return i
        backslashes = 0
        while text[i - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return i
        i += 1


def _block_parent(line: str, ind: int, at: int) -> int:
    """The column a block scalar's text must be indented beyond: that of the key it is the value
    of, or of the dash whose item it is (its header ends ``line``, before offset ``at``)."""
    before = line[:at].rstrip(" \t")
    if before.endswith("-"):
        return len(before) - 1
    col = ind
    while _is_item(line, col):  # "- - key: |": the key is past the dashes
        col += 1
        while col < len(line) and line[col] in " \t":
            col += 1
    return col


def _is_item(line: str, col: int) -> bool:
    """``line`` has a block-sequence dash at ``col``."""
    return line.startswith("-", col) and (len(line) == col + 1 or line[col + 1] in " \t")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


@functools.lru_cache(maxsize=256)
def _block_end(col: int) -> re.Pattern[str]:
    """The first line less indented than ``col`` (blank and comment lines do not count)."""
    return regex(r"\n {0,%d}[^ \t\r\n#]" % (col - 1))  # noqa: UP031 - a regex


@functools.lru_cache(maxsize=256)
def _sequence_end(col: int) -> re.Pattern[str]:
    """The first line that ends a block sequence whose dashes are at ``col``."""
    shallower = r" {0,%d}[^ \t\r\n#]|" % (col - 1) if col else ""  # noqa: UP031 - a regex
    return regex(r"\n(?:%s {%d}(?:[^ \t\r\n#-]|-[^ \t\r\n]))" % (shallower, col))  # noqa: UP031


@functools.lru_cache(maxsize=256)
def _items(col: int) -> re.Pattern[str]:
    return regex(r"\n {%d}-(?=[ \t\r\n]|$)" % col)  # noqa: UP031 - a regex


@functools.lru_cache(maxsize=4096)
def _key_spellings(col: int, name: str) -> tuple[str, ...]:
    """``name`` as a key at exactly ``col`` (plain, double- or single-quoted), newline first."""
    double = name.replace("\\", "\\\\").replace('"', '\\"')
    single = name.replace("'", "''")
    pad = "\n" + " " * col
    return (pad + name, f'{pad}"{double}"', f"{pad}'{single}'")


def _find_key(doc: str, col: int, name: str, start: int, stop: int) -> tuple[int, int] | None:
    """(offset of the newline before, offset after the colon) of the first line in
    ``doc[start:stop]`` whose key at exactly ``col`` is ``name``. Plain string searches: a regular
    expression per key would be compiled for every new field name a report asks about."""
    best: tuple[int, int] | None = None
    for spelled in _key_spellings(col, name):
        at = doc.find(spelled, start, stop if best is None else best[0])
        while at >= 0 and (best is None or at < best[0]):
            i = at + len(spelled)
            while i < stop and doc[i] in " \t":
                i += 1
            if i < stop and doc[i] == ":" and (i + 1 >= stop or doc[i + 1] in " \t\r\n"):
                best = (at, i + 1)
                break
            at = doc.find(spelled, at + 1, stop)
    return best


# characters a quoted key spells otherwise (escaped or doubled): such a name may be absent from
# the text although its key is there
_ESCAPED = frozenset("\"'\\")
_CONTENT_LINE = regex(r"^[ \t]*[^ \t\r\n#]", re.MULTILINE)

# A node: (offset of its line's start in the document text, 0-based line, column).
_Node = tuple[int, int, int]
# A step down a path: (the line to report, the node of the value or None)
_Step = tuple[int, _Node | None]


class TextLines:
    """Where the fields of one document are, found in its text when a report asks.

    ``first`` is the 0-based line of the document's first content and ``end`` the line after its
    last; ``prefix`` are path tokens leading to this object inside the document (a List item).
    Lookups are regular-expression searches over the document's text (built on the first one):
    the sibling with a given key at a given indentation, the n-th dash of a sequence.
    """

    __slots__ = ("_doc", "_steps", "_walks", "end", "first", "lines", "prefix")

    def __init__(
        self, lines: Sequence[str], first: int, end: int, prefix: tuple[str | int, ...] = ()
    ) -> None:
        self.lines = lines
        self.first = first
        self.end = end
        self.prefix = prefix
        self._doc: str | None = None
        self._steps: dict[tuple[int, int, str | int], _Step | Literal[False] | None] = {}
        # where earlier walks stood after each prefix of their path: findings of one object
        # share long prefixes (spec.template.spec.containers[0]…), so a walk resumes there
        self._walks: dict[tuple[str | int, ...], tuple[int, _Node | None]] = {}

    def item(self, index: int) -> TextLines:
        return TextLines(self.lines, self.first, self.end, (*self.prefix, "items", index))

    @property
    def doc(self) -> str:
        if self._doc is None:
            self._doc = "\n".join(self.lines[self.first : self.end])
        return self._doc

    def line_of(self, tokens: Sequence[str | int]) -> int:
        """0-based line of the field at ``tokens``, or of the deepest one found on the way.

        A key may contain dots (``labels.app.kubernetes.io/name`` written without brackets):
        when a name is not a key, it is joined with the names after it until one is.
        """
        path = (*self.prefix, *tokens)
        n = len(path)
        walks = self._walks
        i = n - 1
        hit = None
        while i > 0 and (hit := walks.get(path[:i])) is None:
            i -= 1
        node: _Node | None
        if hit is not None:
            found, node = hit
            if node is not None and node[2] == _FLOW:  # inside a flow collection
                inside = self._in_flow(node, path[i])
                return found if inside is None else inside
        else:
            i = 0
            node = (0, self.first, _indent(self.lines[self.first]))
            found = self.first
        while i < n and node is not None:
            token = path[i]
            step = self._step(node, token)
            j = i + 1
            # (a name nowhere below begins no longer key either: most lookups that miss)
            while step is None and isinstance(token, str) and j < n and isinstance(path[j], str):
                j += 1
                step = self._step(node, ".".join(str(t) for t in path[i:j]))
            if not step:
                break
            i = j
            found, node = step
            walks[path[:i]] = step
            if node is not None and node[2] == _FLOW:
                inside = self._in_flow(node, path[i]) if i < n else None
                found = found if inside is None else inside
                break
        return found

    def _in_flow(self, node: _Node, token: str | int) -> int | None:
        """The line of ``token`` inside the flow collection at ``node``: an item's own line in
        a sequence of scalars, ``None`` for an item it does not have (the line of what holds
        the collection, as the exact path gives), else the collection's first line (all of a
        one-line collection is on it)."""
        if not isinstance(token, int):
            return node[1]
        bracket = node[0] - (self.doc.rfind("\n", 0, node[0]) + 1)
        found = _flow_sequence(self.lines, node[1], bracket)
        if found is None:
            return node[1]
        items = found[0]
        return items[token] if token < len(items) else None

    def _step(self, node: _Node, token: str | int) -> _Step | Literal[False] | None:
        """(report line, the value's node: None when nothing below has a line of its own);
        ``None`` when ``token`` is not there, ``False`` when a key's name is nowhere below in
        the text."""
        at = (node[0], node[2], token)
        if at not in self._steps:
            if isinstance(token, str):
                self._steps[at] = self._key(node, token)
            else:
                self._steps[at] = self._item(node, token)
        return self._steps[at]

    def _value(self, off: int, line: int, pos: int, col: int, *, compact: bool) -> _Node | None:
        """The node of the value after a key or dash ending at ``pos`` of ``line`` (whose text
        starts at ``off``): a block node, a flow collection on a line of its own, or None when
        the value is inline or absent. ``compact``: a key's block sequence may start at the key's
        own column."""
        text = self.lines[line]
        rest = text[pos:].lstrip(" \t")
        if rest and not rest.startswith("#"):
            if rest[0] == "[" and _unclosed(rest, 0):  # a flow sequence going on below
                return off + len(text) - len(rest), line, _FLOW
            if rest[0] in "|>" or not (_is_item(rest, 0) or _KEY.match(rest)):
                return None
            return off, line, len(text) - len(rest)
        doc = self.doc
        m = _CONTENT_LINE.search(doc, off + len(text) + 1)
        if m is None:
            return None
        nxt_off = m.start()
        nxt = line + 1 + doc.count("\n", off + len(text) + 1, nxt_off)
        ind = _indent(self.lines[nxt])
        if ind > col and self.lines[nxt][ind] in "[{":
            return nxt_off + ind, nxt, _FLOW
        if ind > col or (compact and ind == col and _is_item(self.lines[nxt], ind)):
            return nxt_off, nxt, ind
        return None

    def _key(self, node: _Node, name: str) -> _Step | Literal[False] | None:
        off, line, col = node
        text = self.lines[line]
        # the node's own line: a key there is the name itself or quoted (the regular
        # expression only when it may be)
        if text.startswith(name, col) or text.startswith(("'", '"'), col):
            m = _KEY.match(text, col)
            if m is not None and _key_text(m) == name:
                return line, self._value(off, line, m.end(), col, compact=True)
        doc = self.doc
        start = off + len(text)  # the newline ending the node's first line
        if not _ESCAPED.intersection(name):  # then every spelling of the key holds the name
            first = doc.find(name, start)
            if first < 0:
                # nowhere below (most lookups that miss: a field the object lacks); False when
                # not on the node's own line either (no longer key begins with it: no need to
                # join)
                return None if name in text else False
            start = max(start, first - col - 2)  # a newline, the indent, a quote, the name
        found = _find_key(doc, col, name, start, len(doc))
        # the first such key below, if it is inside the node's block (no less indented line
        # before it): the search for the block's end stops at the key
        if found is None or (col and _block_end(col).search(doc, off + len(text), found[0] + 1)):
            return None
        k_off = found[0] + 1
        k_line = line + doc.count("\n", off, k_off)
        return k_line, self._value(k_off, k_line, found[1] - k_off, col, compact=True)

    def _item(self, node: _Node, index: int) -> tuple[int, _Node | None] | None:
        off, line, col = node
        text = self.lines[line]
        if not _is_item(text, col):
            return None
        i_off, i_line = off, line
        if index:
            doc = self.doc
            start = off + len(text)
            end = _sequence_end(col).search(doc, start)
            stop = end.start() if end is not None else len(doc)
            for n, m in enumerate(_items(col).finditer(doc, start, stop), 1):
                if n == index:
                    i_off = m.start() + 1
                    i_line = line + doc.count("\n", off, i_off)
                    break
            else:
                return None
        value = self._value(i_off, i_line, col + 1, col, compact=False)
        return (i_line if value is None else value[1]), value


def _key_text(m: re.Match[str]) -> str:
    d, s, p = m.group("d", "s", "p")
    if d is not None:
        return d.replace('\\"', '"').replace("\\\\", "\\")
    if s is not None:
        return s.replace("''", "'")
    return p.rstrip()


def _marker_lines(lines: Sequence[str], text: str) -> list[int]:
    """Indices of the lines of ``lines`` (``text`` split) that start with a ``---`` marker:
    found by searching ``text`` (not a test of every line) unless it breaks lines where
    ``str.splitlines`` does and a search for newlines does not."""
    if _other_breaks(text):
        return [i for i, line in enumerate(lines) if line.startswith("---") and _MARKER.match(line)]
    found = [0] if _DOCUMENT_START.match("\n" + text[:4]) else []
    line = at = 0
    for m in _DOCUMENT_START.finditer(text):
        line += text.count("\n", at, m.start())
        at = m.start()
        found.append(line + 1)
    return found


def _documents(lines: Sequence[str], whole: str) -> list[tuple[int, int, int]] | None:
    """(marker line, first content line or -1, end) of each document, as PyYAML counts them;
    ``None`` when a marker line carries content (``--- {a: 1}``), left to the exact path."""
    docs: list[tuple[int, int, int]] = []
    start, marker = 0, -1
    for i in _marker_lines(lines, whole):
        text = lines[i]
        if text[3:].strip() and not text[3:].lstrip().startswith("#"):
            return None
        docs.append((marker, start, i))
        start, marker = i + 1, i
    docs.append((marker, start, len(lines)))
    out = []
    for n, (mark, begin, end) in enumerate(docs):
        first = next((j for j in range(begin, end) if not _CONTENT.match(lines[j])), -1)
        if n == 0 and first < 0:
            continue  # comments (or nothing) before the first "---" are not a document
        out.append((mark, first, end))
    return out


def _odd_breaks(text: str) -> bool:
    """Line breaks the two parsers do not share: PyYAML (YAML 1.1) also breaks lines at NEL,
    LS and PS, and the line lookups split on "\\n" (a lone "\\r" would go unseen)."""
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return True
    return "\x85" in text or "\u2028" in text or "\u2029" in text


def load_documents(text: str) -> list[tuple[Any, int, int, TextLines | None]] | None:
    """``(value, marker line, first line, lines)`` per document, or ``None`` to use PyYAML."""
    head = "\n" + text[:1]  # the checks below look for a newline before a line's start
    if (
        head in ("\n%", "\n.", "\n,", "\n]", "\n}")
        or "\n%" in text
        or _odd_breaks(text)
        or _END_MARKER.search(text)
    ):
        return None
    spots = _divergent(text)
    if spots is None:
        return None
    lines = text.splitlines()
    if _multiline_flow(lines, text):
        return None
    docs = _documents(lines, text)
    if docs is None:
        return None
    source, values = _stand_ins(text, spots) if spots else (text, {})
    try:
        parsed = loads_all(source)
    except (InvalidYamlError, ValueError, RecursionError):  # the exact path will say why
        return None
    if not isinstance(parsed, list) or len(parsed) != len(docs):
        return None
    if values:
        try:
            if _restore(parsed, values) != len(values):
                return None  # a stand-in in a comment
        except KeyError:
            return None
    return [
        (value, mark, first, TextLines(lines, first, end) if first >= 0 else None)
        for value, (mark, first, end) in zip(parsed, docs, strict=True)
    ]
