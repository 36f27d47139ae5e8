"""The human report: findings grouped by object, one line each with its fix, then a summary."""

from __future__ import annotations

from collections.abc import Iterable

from airlock.findings import Action, Finding, RuleInfo
from airlock.scan.result import ScanEntry, ScanResult

__all__ = ["format_explain", "format_rule_list", "format_summary", "format_text"]

_TAG = {Action.ENFORCE: "DENY", Action.WARN: "WARN", Action.AUDIT: "AUDIT", Action.OFF: "OFF"}
_RESET = "\x1b[0m"
_STYLE = {
    "DENY": "\x1b[1;31m",
    "WARN": "\x1b[33m",
    "AUDIT": "\x1b[36m",
    "EXEMPT": "\x1b[2m",
    "header": "\x1b[1m",
    "fix": "\x1b[32m",
}


class _Painter:
    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, style: str, text: str) -> str:
        return f"{_STYLE[style]}{text}{_RESET}" if self.color else text


def _header(entry: ScanEntry) -> str:
    v = entry.verdict
    obj = f"{v.namespace}/{v.name}" if v.namespace else v.name
    return f"{v.kind} {obj} ({entry.document.location}, line {entry.document.line})"


def format_text(result: ScanResult, *, color: bool = False, show_exempted: bool = False) -> str:
    """Objects with findings, in file order; exempted findings only when asked for."""
    paint = _Painter(color)
    lines: list[str] = []
    for entry in result.entries:
        shown = [
            f
            for f in sorted(entry.verdict.findings, key=lambda f: (f.path, f.rule))
            if show_exempted or f.exempted_by is None
        ]
        if not shown:
            continue
        header = _header(entry)
        if entry.verdict.environment:
            header += f" [environment {entry.verdict.environment}]"
        lines.append(paint("header", header))
        lines.extend(_finding_lines(shown, paint))
        lines.append("")
    if not lines:
        lines = ["No findings.", ""]
    lines.append(format_summary(result))
    return "\n".join(lines) + "\n"


def _finding_lines(findings: Iterable[Finding], paint: _Painter) -> Iterable[str]:
    for f in findings:
        tag = "EXEMPT" if f.exempted_by is not None else _TAG[f.action]
        note = f" (exempted by {f.exempted_by})" if f.exempted_by is not None else ""
        yield (
            f"  {paint(tag, f'{tag:<6}')} {f.severity.value:<8} {f.rule}  {f.path}: "
            f"{f.message}{note}"
        )
        yield f"         {paint('fix', 'fix:')} {f.fix}"


def format_summary(result: ScanResult) -> str:
    c = result.counts
    files = f"{result.files} file" + ("" if result.files == 1 else "s")
    objects = len(result.entries)
    parts = [
        f"{objects} object{'' if objects == 1 else 's'} scanned in {files}",
    ]
    if result.excluded:
        parts.append(f" ({result.excluded} in excluded namespaces)")
    parts.append(
        f": {c['enforce']} deny, {c['warn']} warn, {c['audit']} audit, {c['exempted']} exempted"
    )
    failing = result.failing_objects
    parts.append(
        f"; {failing} object{'' if failing == 1 else 's'} at or above {result.fail_on.value}"
    )
    if result.errors:
        n = len(result.errors)
        parts.append(f"; {n} input error{'' if n == 1 else 's'}")
    return "".join(parts) + "."


def format_explain(info: RuleInfo) -> str:
    """Everything the catalog says about one rule, for ``airlock explain RULE``."""

    def block(text: str) -> str:
        import textwrap  # off the start-up of the JSON and SARIF reports

        return textwrap.fill(text, width=96, initial_indent="  ", subsequent_indent="  ")

    lines = [
        f"{info.id}: {info.title}",
        f"  family:   {info.family}",
        f"  severity: {info.severity.value}",
        f"  fixed automatically by a mutation: {'yes' if info.mutable else 'no'}",
        "",
        "What it catches:",
        block(info.reason),
        "",
        "Why it matters:",
        block(info.rationale),
        "",
        "How to fix:",
        block(info.fix),
    ]
    if info.references:
        lines += ["", "References:", *(f"  - {ref}" for ref in info.references)]
    return "\n".join(lines) + "\n"


def format_rule_list(rules: Iterable[RuleInfo]) -> str:
    """One line per rule, catalog order, for ``airlock explain --list``."""
    infos = list(rules)
    width = max((len(r.id) for r in infos), default=0)
    return "".join(
        f"{r.id:<{width}}  {r.severity.value:<8}  {r.family:<11}  {r.title}\n" for r in infos
    )
