"""SARIF 2.1.0, the format code-scanning services (GitHub, GitLab, Azure DevOps) ingest.

Every catalog rule is declared, not only those that fired, so a service can show a rule's help
for a result from an older run and ``ruleIndex`` is the same in every report. Exempted findings
are kept as suppressed results: the waiver stays visible to reviewers instead of vanishing.
The fingerprint hashes where a finding is (rule, object, JSON path), never what it found.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from airlock import __version__
from airlock.compilecache import regex
from airlock.findings import Action, Finding, RuleInfo, Severity
from airlock.scan.jsonfmt import escape_surrogates
from airlock.scan.loader import Document, describe_error
from airlock.scan.result import ScanEntry, ScanResult

__all__ = ["INFORMATION_URI", "SARIF_SCHEMA", "SECURITY_SEVERITY", "artifact_uri", "format_sarif"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/airlock-dev/airlock"
FINGERPRINT_KEY = "airlockFinding/v1"

SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
}
_LEVEL = {Action.ENFORCE: "error", Action.WARN: "warning", Action.AUDIT: "note", Action.OFF: "none"}
_WORD = regex(r"[A-Za-z0-9]+")


def _rule_name(rule_id: str) -> str:
    return "".join(w.capitalize() for w in _WORD.findall(rule_id))


def _rule_descriptor(info: RuleInfo) -> dict[str, Any]:
    refs = "".join(f"\n- {r}" for r in info.references)
    return {
        "id": info.id,
        "name": _rule_name(info.id),
        "shortDescription": {"text": info.title},
        "fullDescription": {"text": info.reason},
        "help": {
            "text": f"{info.fix}\n\n{info.rationale}",
            "markdown": f"**Fix:** {info.fix}\n\n{info.rationale}"
            + (f"\n\n**References:**{refs}" if refs else ""),
        },
        # the built-in policy enforces every rule; a policy may soften it per environment
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": [info.family, "security", "kubernetes"],
            "security-severity": SECURITY_SEVERITY[info.severity],
            "precision": "high",
        },
    }


def artifact_uri(doc: Document, cwd: str | None = None) -> str:
    """A relative, forward-slash URI for the file (helm's template name for standard input)."""
    if doc.file == "-":
        return doc.source or "stdin"
    return _file_uri(doc.file, cwd or os.getcwd())


@functools.lru_cache(maxsize=1024)
def _file_uri(file: str, cwd: str) -> str:
    path = Path(file)
    if path.is_absolute():
        try:
            rel = os.path.relpath(path, cwd)
        except ValueError:  # another drive on Windows
            return path.as_uri()
        if rel.startswith(".."):
            return path.as_uri()
        return PurePosixPath(*Path(rel).parts).as_posix()
    return PurePosixPath(*path.parts).as_posix()


def _object_name(f: Finding) -> str:
    return f"{f.kind}/{f.namespace}/{f.name}" if f.namespace else f"{f.kind}/{f.name}"


def fingerprint(f: Finding) -> str:
    key = "\x1f".join((f.rule, f.kind, f.namespace or "", f.name, f.path))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _result(
    entry: ScanEntry, f: Finding, index: Mapping[str, int], cwd: str | None
) -> dict[str, Any]:
    doc = entry.document
    obj = _object_name(f)
    result: dict[str, Any] = {
        "ruleId": f.rule,
        "level": _LEVEL[f.action],
        "kind": "fail",
        "message": {"text": f"{obj} {f.path}: {f.message} Fix: {f.fix}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(doc, cwd)},
                    "region": {"startLine": doc.line_of(f.path)},
                },
                "logicalLocations": [
                    {"fullyQualifiedName": obj, "name": f.name, "kind": "resource"},
                    {"fullyQualifiedName": f"{obj}/{f.path}", "name": f.path, "kind": "property"},
                ],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(f)},
        "properties": {
            "action": f.action.value,
            "severity": f.severity.value,
            "environment": entry.verdict.environment,
            "document": doc.index,
        },
    }
    if f.rule in index:
        result["ruleIndex"] = index[f.rule]
    if doc.item is not None:
        result["properties"]["item"] = doc.item
    if f.exempted_by is not None:
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": f"PolicyException {f.exempted_by}",
            }
        ]
    return result


def format_sarif(
    result: ScanResult, rules: Mapping[str, RuleInfo], *, cwd: str | None = None
) -> str:
    """``rules`` is the catalog (:data:`airlock.rules.RULE_INFO`), in catalog order."""
    index = {rule_id: i for i, rule_id in enumerate(rules)}
    results = [_result(e, f, index, cwd) for e, f in result.findings()]
    invocation: dict[str, Any] = {
        "executionSuccessful": not result.errors,
        "exitCode": result.exit_code,
    }
    if result.errors:
        invocation["toolExecutionNotifications"] = [
            {"level": "error", "message": {"text": describe_error(e)}} for e in result.errors
        ]
    run = {
        "tool": {
            "driver": {
                "name": "airlock",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": [_rule_descriptor(info) for info in rules.values()],
            }
        },
        "invocations": [invocation],
        "results": results,
        "properties": {
            "summary": {
                "objects": len(result.entries),
                "files": result.files,
                "findings": result.counts,
                "failOn": result.fail_on.value,
            },
        },
    }
    report = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    # compact: SARIF files are read by tools, and ``indent`` forces the slow pure-Python encoder
    return escape_surrogates(json.dumps(report, ensure_ascii=False, separators=(",", ":"))) + "\n"
