"""The machine report: one JSON object, findings in a stable order (file, document, path, rule).

Stable order and sorted keys make two runs on the same input byte-identical, so CI can diff
reports. ``file`` is the path as given (``-`` for standard input) so tools can open it; helm's
template name, when the document carried a ``# Source:`` comment, is in ``source``.
"""

from __future__ import annotations

from typing import Any

from airlock import __version__
from airlock.findings import Finding
from airlock.scan.loader import describe_error
from airlock.scan.result import ScanEntry, ScanResult

__all__ = ["finding_record", "format_json", "summary_record"]


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


def _records(result: ScanResult) -> list[dict[str, Any]]:
    """Every finding's record, in report order: a large scan reports tens of thousands, so
    they are sorted once by a precomputed key."""
    rows: list[tuple[tuple[str, int, int, str, str, str], dict[str, Any]]] = []
    for entry in result.entries:
        doc = entry.document
        item = -1 if doc.item is None else doc.item
        for f in entry.verdict.findings:
            key = (doc.file, doc.index, item, f.path, f.rule, f.exempted_by or "")
            rows.append((key, finding_record(entry, f)))
    rows.sort(key=_first)
    return [r for _k, r in rows]


def _first(row: tuple[tuple[str, int, int, str, str, str], dict[str, Any]]) -> Any:
    return row[0]


SMALL_REPORT = 200
"""Up to this many findings the standard library encodes the report: importing orjson (with
the uuid and platform modules it pulls in) costs more than it saves on a small report, and a
short scan is mostly start-up. Both encoders write the same bytes (a test holds them to it)."""


_LINE = b",\n    "  # between two findings: one per line


def _joined(records: list[dict[str, Any]]) -> bytes:
    """The records encoded (compact, sorted keys, no newlines), one per line."""
    if not records:
        return b""
    if len(records) <= SMALL_REPORT:
        encode = _stdlib_encoder().encode
        return _LINE.join(encode(r).encode() for r in records)
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


def _stdlib_encoder() -> Any:
    import json

    return json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _summary(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, sort_keys=True, ensure_ascii=False, indent=2)


def format_json(result: ScanResult) -> str:
    """One finding per line: readable and diffable."""
    findings = _records(result)
    lines = _joined(findings)
    summary = _summary(summary_record(result))
    body = f"[\n    {lines.decode()}\n  ]" if findings else "[]"
    return (
        f'{{\n  "findings": {body},\n  "summary": {summary.replace(chr(10), chr(10) + "  ")},\n'
        f'  "version": "{__version__}"\n}}\n'
    )
