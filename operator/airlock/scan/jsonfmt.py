"""The machine report: one JSON object, findings in a stable order (file, document, path, rule).

Stable order and sorted keys make two runs on the same input byte-identical, so CI can diff
reports. ``file`` is the path as given (``-`` for standard input) so tools can open it; helm's
template name, when the document carried a ``# Source:`` comment, is in ``source``.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

from airlock import __version__
from airlock.compilecache import regex
from airlock.findings import Finding
from airlock.scan.loader import Document, describe_error
from airlock.scan.result import ScanEntry, ScanResult, VerdictLike, _entry_key

try:  # the C function behind json's string encoding, without importing json (1.6 ms)
    from _json import encode_basestring as _string  # quotes and escapes, keeps non-ASCII
except ImportError:  # pragma: no cover - a Python without the accelerator
    from json.encoder import encode_basestring as _string

__all__ = [
    "entry_report",
    "escape_surrogates",
    "finding_record",
    "format_json",
    "summary_record",
]


def finding_record(entry: ScanEntry, f: Finding) -> dict[str, Any]:
    """One finding as the report writes it (severity and action are string enums, references
    a tuple: both JSON encoders write them as strings and a list)."""
    doc = entry.document
    record: dict[str, Any] = {
        "rule": f.rule,
        "severity": f.severity,
        "action": f.action,
        "kind": f.kind,
        "namespace": f.namespace,
        "name": f.name,
        "path": f.path,
        "message": f.message,
        "fix": f.fix,
        "family": f.family,
        "references": f.references,
        "environment": entry.verdict.environment,
        "file": doc.file,
        "document": doc.index,
        "line": doc.line_of(f.path),
    }
    if doc.item is not None:
        record["item"] = doc.item
    if doc.source is not None:
        record["source"] = doc.source
    if f.exempted_by is not None:
        record["exempted_by"] = f.exempted_by
    return record


def summary_record(result: ScanResult) -> dict[str, Any]:
    return {
        "objects": len(result.entries),
        "excluded": result.excluded,
        "files": result.files,
        "findings": result.counts,
        "fail_on": result.fail_on.value,
        "failing_objects": result.failing_objects,
        "exit_code": result.exit_code,
        "errors": [describe_error(e) for e in result.errors],
    }


_Key = tuple[str, int, int, str, str, str]


def _ordered(result: ScanResult) -> list[tuple[_Key, ScanEntry, Finding]]:
    """Every finding in report order: a large scan reports tens of thousands, so they are
    sorted once by a precomputed key."""
    rows: list[tuple[_Key, ScanEntry, Finding]] = []
    for entry in result.entries:
        at = _entry_key(entry)  # the order of objects, then of findings within one (the same
        for f in entry.verdict.findings:  # two keys order the lines encoded where judged)
            rows.append(((*at, *_in_object_order(f)), entry, f))
    rows.sort(key=_first)
    return rows


def _first(row: tuple[_Key, ScanEntry, Finding]) -> _Key:
    return row[0]


def _records(result: ScanResult) -> list[dict[str, Any]]:
    """Every finding's record, in report order."""
    return [finding_record(entry, f) for _k, entry, f in _ordered(result)]


LARGE_REPORT = 20_000
"""From this many findings orjson encodes the report. Below, each finding is written out by
:class:`_Encoder`: importing orjson (it brings dataclasses, inspect, uuid and platform) costs
about 17 ms of a scan's start-up, which its faster encoding (0.5 µs a finding instead of 2.5)
only wins back on reports this large. Both write the same bytes (a test holds them to it)."""


_LINE = b",\n    "  # between two findings: one per line
_SEPARATOR = _LINE.decode()


def _null_or(text: str | None) -> str:
    return "null" if text is None else _string(text)


# A file name that is not UTF-8 reaches Python with lone surrogates in it (os.fsdecode): they are
# written as JSON escapes ("\udcff"), so the report stays UTF-8 and a JSON reader gets the same
# string back (os.fsencode of it is the name's bytes). Objects' own strings never hold them.
_SURROGATE = regex("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _name(text: str) -> str:
    """A file name as a JSON string."""
    return escape_surrogates(_string(text))


def escape_surrogates(json_text: str) -> str:
    """JSON text (where a lone surrogate can only be inside a string) with its lone surrogates
    written as escapes: a file name that is not UTF-8 keeps a report UTF-8."""
    return json_text if json_text.isascii() else _SURROGATE.sub(_escaped, json_text)


def _odd_name(entry: ScanEntry) -> bool:
    """A file name that is not UTF-8, which orjson refuses."""
    doc = entry.document
    return any(
        name is not None and not name.isascii() and _SURROGATE.search(name) is not None
        for name in (doc.file, doc.source)
    )


_RuleParts = tuple[str, str, str]  # family, fix, then references, rule and severity
_Who = tuple[str, str]  # kind, then name and namespace


class _Encoder:
    """Writes findings as compact JSON with sorted keys, field by field: the standard library's
    encoder takes 5 µs a record, half of it sorting and dispatching. What a report repeats is
    encoded once: the fields of the finding's object and file (its findings come one after
    another), and those of its rule (fix, family, references: the same for thousands)."""

    __slots__ = ("_actions", "_entry", "_head", "_rules", "_tail", "_who")

    def __init__(self, rules: dict[tuple[Any, ...], _RuleParts] | None = None) -> None:
        self._rules: dict[tuple[Any, ...], _RuleParts] = {} if rules is None else rules
        self._who: dict[tuple[str, str, str | None], _Who] = {}
        self._actions: dict[str, str] = {}
        self._entry: ScanEntry | None = None
        self._head = ("", "", "")  # document and environment; file; item
        self._tail = ""  # source

    def _enter(self, entry: ScanEntry) -> None:
        doc = entry.document
        self._entry = entry
        self._head = (
            f',"document":{doc.index},"environment":{_string(entry.verdict.environment)}',
            ',"file":' + _name(doc.file),
            "" if doc.item is None else f',"item":{doc.item}',
        )
        self._tail = "" if doc.source is None else ',"source":' + _name(doc.source)

    def line(self, entry: ScanEntry, f: Finding) -> str:
        if entry is not self._entry:
            self._enter(entry)
        key = (f.rule, f.severity, f.family, f.fix, f.references)
        rule = self._rules.get(key)
        if rule is None:
            rule = self._rules[key] = (
                ',"family":' + _string(f.family),
                ',"fix":' + _string(f.fix),
                ',"references":[' + ",".join(map(_string, f.references)) + '],"rule":'
                + _string(f.rule) + ',"severity":' + _string(f.severity),
            )  # fmt: skip
        whom = (f.kind, f.name, f.namespace)
        who = self._who.get(whom)
        if who is None:
            who = self._who[whom] = (
                ',"kind":' + _string(f.kind),
                ',"name":' + _string(f.name) + ',"namespace":' + _null_or(f.namespace),
            )
        action = self._actions.get(f.action)
        if action is None:
            action = self._actions[f.action] = '{"action":' + _string(f.action)
        document, file, item = self._head
        exempted = "" if f.exempted_by is None else ',"exempted_by":' + _string(f.exempted_by)
        return "".join((
            action, document, exempted, rule[0], file, rule[1], item, who[0],
            ',"line":', str(entry.document.line_of(f.path)),
            ',"message":', _string(f.message), who[1],
            ',"path":', _string(f.path), rule[2], self._tail, "}",
        ))  # fmt: skip


# What the encoders of one process share: the encodings of rules (a few hundred at most)
_RULES: dict[tuple[Any, ...], _RuleParts] = {}


def _in_object_order(f: Finding) -> tuple[str, str, str]:
    return f.path, f.rule, f.exempted_by or ""


def entry_report(document: Document, verdict: VerdictLike) -> str:
    """One object's findings as :func:`format_json` writes them, one per line in report order
    (``scan_inputs(render=entry_report)``: the workers of a parallel scan encode what they judge,
    and the report joins them). Objects are ordered by file, document and item, and within one
    the report orders by path, rule and exemption: so the joined lines are in report order."""
    entry = ScanEntry(document, verdict)
    line = _Encoder(_RULES).line
    return _SEPARATOR.join([line(entry, f) for f in sorted(verdict.findings, key=_in_object_order)])


def _encoded_in_order(entries: list[ScanEntry]) -> bool:
    """Every entry's findings were encoded where it was judged, and the entries are in report
    order with no two sharing a file, document and item (a file named twice: the report
    interleaves their findings by path, so they are encoded again, together)."""
    if not entries or any(e.report is None for e in entries):
        return False
    keys = [_entry_key(e) for e in entries]
    return all(a < b for a, b in itertools.pairwise(keys))


def _report_lines(result: ScanResult) -> tuple[int, list[str]]:
    """How many findings, and their encodings in report order: pieces (a finding's line, an
    object's lines, or all of them) to be joined by ``_SEPARATOR``, none empty."""
    entries = result.entries
    if _encoded_in_order(entries):  # encoded where judged, one object after another
        count = sum(len(e.verdict.findings) for e in entries)
        return count, [e.report for e in entries if e.report]
    rows = _ordered(result)
    if not rows:
        return 0, []
    if len(rows) < LARGE_REPORT or any(_odd_name(e) for e in result.entries):
        line = _Encoder().line
        return len(rows), [line(entry, f) for _k, entry, f in rows]
    return len(rows), [_joined([finding_record(entry, f) for _k, entry, f in rows]).decode()]


def _joined(records: list[dict[str, Any]]) -> bytes:
    """The records encoded by orjson (compact, sorted keys, no newlines), one per line."""
    if not records:
        return b""
    import orjson

    # One encoding of the whole list, split where one record ends and the next begins ('},{"').
    # Inside a record those four bytes appear only where a string ends in "},{" (its quote
    # follows) or a record holds objects in a list; then there are more pieces than records,
    # and each record is encoded alone. (Thousands of separate ``orjson.dumps`` results cost
    # more than the encoding itself.)
    dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
    pieces = dumps(records, option=sort)[1:-1].split(b'},{"')
    if len(pieces) == len(records) and all(records):  # an empty record has no boundary
        return (b"}" + _LINE + b'{"').join(pieces)
    return _LINE.join(dumps(r, option=sort) for r in records)


def _summary(record: dict[str, Any]) -> str:
    return escape_surrogates(_pretty(record))


def _pretty(value: Any, depth: int = 0) -> str:
    """``json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)`` of what a summary
    holds (mappings with string keys, lists, strings, integers, booleans, None), without
    importing :mod:`json` for it."""
    inner = "\n" + "  " * (depth + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{_string(k)}: {_pretty(value[k], depth + 1)}" for k in sorted(value)]
        return "{" + inner + ("," + inner).join(items) + "\n" + "  " * depth + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [_pretty(v, depth + 1) for v in value]
        return "[" + inner + ("," + inner).join(items) + "\n" + "  " * depth + "]"
    if isinstance(value, str):
        return _string(value)
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return int.__repr__(value)
    raise TypeError(f"a summary holds no {type(value).__name__}")


def format_json(result: ScanResult) -> str:
    """One finding per line: readable and diffable."""
    count, lines = _report_lines(result)
    summary = _summary(summary_record(result)).replace("\n", "\n  ")
    tail = f',\n  "summary": {summary},\n  "version": "{__version__}"\n}}\n'
    if not count:
        return '{\n  "findings": []' + tail
    # the report's megabytes copied once: its head and tail join the first and last pieces
    lines[0] = '{\n  "findings": [\n    ' + lines[0]
    lines[-1] += "\n  ]" + tail
    return _SEPARATOR.join(lines)
