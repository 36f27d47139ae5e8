"""``airlock scan``'s machinery: manifest loading, the scan run and the report formats.

Layer 4, next to (and independent of) :mod:`airlock.engine`: the evaluator is handed in by the
caller, so loaders and formats can be tested with any verdicts and the engine never learns about
files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airlock.scan.jsonfmt import entry_report, format_json
from airlock.scan.loader import (
    MAX_ALIAS_EXPANSION,
    Document,
    Input,
    LoadResult,
    describe_error,
    list_inputs,
    load_paths,
    load_text,
    paused_gc,
)
from airlock.scan.result import (
    Evaluator,
    Renderer,
    ScanEntry,
    ScanResult,
    VerdictLike,
    load_policy_file,
    run_scan,
    scan_inputs,
)
from airlock.scan.text import format_explain, format_rule_list, format_summary, format_text

if TYPE_CHECKING:
    from airlock.scan.sarif import format_sarif


def __getattr__(name: str) -> Any:
    """``format_sarif`` on first use: hashlib, json and pathlib only for a SARIF report."""
    if name == "format_sarif":
        from airlock.scan.sarif import format_sarif

        return format_sarif
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MAX_ALIAS_EXPANSION",
    "Document",
    "Evaluator",
    "Input",
    "LoadResult",
    "Renderer",
    "ScanEntry",
    "ScanResult",
    "VerdictLike",
    "describe_error",
    "entry_report",
    "format_explain",
    "format_json",
    "format_rule_list",
    "format_sarif",
    "format_summary",
    "format_text",
    "list_inputs",
    "load_paths",
    "load_policy_file",
    "load_text",
    "paused_gc",
    "run_scan",
    "scan_inputs",
]
