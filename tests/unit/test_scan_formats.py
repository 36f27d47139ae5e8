"""The report formats on hand-built verdicts: text, JSON and SARIF structure and ordering."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airlock.errors import InputError
from airlock.findings import Action, Finding, RuleInfo, Severity
from airlock.scan import (
    ScanEntry,
    ScanResult,
    format_json,
    format_rule_list,
    format_sarif,
    format_text,
    load_text,
)
from airlock.scan.loader import Document
from airlock.scan.sarif import SECURITY_SEVERITY, artifact_uri, fingerprint
from airlock.scan.text import format_explain
from hypothesis import given
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scan"

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: trainer
  namespace: ml-prod
spec:
  template:
    spec:
      containers:
        - name: train
          image: pytorch/pytorch:latest
          securityContext:
            privileged: true
---
apiVersion: v1
kind: Pod
metadata:
  name: notebook
  namespace: ml-dev
spec:
  containers:
    - name: nb
      image: jupyter/base:latest
"""

CATALOG: dict[str, RuleInfo] = {
    "privileged-container": RuleInfo(
        id="privileged-container",
        family="hardening",
        severity=Severity.CRITICAL,
        title="Privileged container",
        reason="A container runs privileged.",
        fix="Remove securityContext.privileged.",
        rationale="A privileged container is root on the node.",
        references=("PSS baseline: Privileged Containers",),
    ),
    "image-tag-latest": RuleInfo(
        id="image-tag-latest",
        family="images",
        severity=Severity.MEDIUM,
        title="Image tag latest",
        reason="The image has no tag or uses latest.",
        fix="Pin a version and a digest.",
        rationale="Mutable tags make deployments unreproducible.",
    ),
    "owner-label-missing": RuleInfo(
        id="owner-label-missing",
        family="governance",
        severity=Severity.LOW,
        title="Owner label missing",
        reason="No owner label.",
        fix="Add airlock.dev/owner.",
        rationale="Someone must answer for a workload.",
    ),
}


@dataclass(frozen=True)
class FakeVerdict:
    kind: str
    namespace: str | None
    name: str
    environment: str
    excluded: bool
    findings: tuple[Finding, ...]


def finding(doc: Document, rule: str, action: Action, path: str, **kw: Any) -> Finding:
    info = CATALOG[rule]
    meta = doc.obj["metadata"]
    return Finding(
        rule=rule,
        severity=info.severity,
        action=action,
        kind=doc.obj["kind"],
        namespace=meta.get("namespace"),
        name=meta["name"],
        path=path,
        message=kw.pop("message", f"{rule} at {path}"),
        fix=info.fix,
        family=info.family,
        references=info.references,
        **kw,
    )


@pytest.fixture
def result() -> ScanResult:
    docs, errors = load_text(MANIFEST, "k8s/train.yaml")
    assert errors == []
    deploy, pod = docs
    c0 = "spec.template.spec.containers[0]"
    deploy_findings = (
        # deliberately out of order: reports sort by path, then rule
        finding(deploy, "privileged-container", Action.ENFORCE, f"{c0}.securityContext.privileged"),
        finding(deploy, "image-tag-latest", Action.ENFORCE, f"{c0}.image"),
    )
    pod_findings = (
        finding(pod, "image-tag-latest", Action.WARN, "spec.containers[0].image"),
        finding(
            pod,
            "owner-label-missing",
            Action.AUDIT,
            "metadata.labels",
            exempted_by="ml-dev/notebooks",
        ),
    )
    return ScanResult(
        entries=[
            ScanEntry(
                deploy,
                FakeVerdict("Deployment", "ml-prod", "trainer", "prod", False, deploy_findings),
            ),
            ScanEntry(pod, FakeVerdict("Pod", "ml-dev", "notebook", "dev", False, pod_findings)),
        ],
        files=1,
    )


def test_exit_code_follows_fail_on(result: ScanResult) -> None:
    assert result.exit_code == 1
    assert result.counts == {"enforce": 2, "warn": 1, "audit": 0, "exempted": 1}
    without_enforced = ScanResult(entries=result.entries[1:], files=1)
    assert without_enforced.exit_code == 0
    without_enforced.fail_on = Action.WARN
    assert without_enforced.exit_code == 1
    # the exempted audit finding never fails a scan, whatever the level
    audit_only = ScanResult(entries=result.entries[1:], files=1, fail_on=Action.AUDIT)
    assert audit_only.failing_objects == 1  # the warn finding, not the exempted one
    errors = ScanResult(entries=[], errors=[InputError("bad", "f.yaml", 1)], files=1)
    assert errors.exit_code == 2


def test_text_groups_by_object_and_hides_exempted_unless_asked(result: ScanResult) -> None:
    text = format_text(result)
    lines = text.splitlines()
    assert lines[0] == (
        "Deployment ml-prod/trainer (k8s/train.yaml, document 1, line 1) [environment prod]"
    )
    c0 = "spec.template.spec.containers[0]"
    assert lines[1] == (
        f"  DENY   medium   image-tag-latest  {c0}.image: image-tag-latest at {c0}.image"
    )
    assert lines[2] == "         fix: Pin a version and a digest."
    assert lines[3].startswith("  DENY   critical privileged-container  ")
    assert lines[5] == ""
    assert lines[6] == (
        "Pod ml-dev/notebook (k8s/train.yaml, document 2, line 15) [environment dev]"
    )
    assert lines[7].startswith("  WARN   medium   image-tag-latest  spec.containers[0].image: ")
    assert "owner-label-missing" not in text
    assert lines[-1] == (
        "2 objects scanned in 1 file: 2 deny, 1 warn, 0 audit, 1 exempted; "
        "1 object at or above enforce."
    )
    assert "\x1b[" not in text
    shown = format_text(result, show_exempted=True)
    assert (
        "  EXEMPT low      owner-label-missing  metadata.labels: owner-label-missing at "
        "metadata.labels (exempted by ml-dev/notebooks)"
    ) in shown.splitlines()


def test_text_colours_only_on_request(result: ScanResult) -> None:
    coloured = format_text(result, color=True)
    assert "\x1b[1;31mDENY  \x1b[0m" in coloured
    assert "\x1b[33mWARN  \x1b[0m" in coloured


def test_text_says_so_when_nothing_is_found() -> None:
    docs, _ = load_text(MANIFEST, "k.yaml")
    clean = ScanResult(
        entries=[
            ScanEntry(docs[0], FakeVerdict("Deployment", "ml-prod", "trainer", "prod", False, ()))
        ],
        files=1,
    )
    assert format_text(clean).splitlines() == [
        "No findings.",
        "",
        "1 object scanned in 1 file: 0 deny, 0 warn, 0 audit, 0 exempted; "
        "0 objects at or above enforce.",
    ]


def test_json_has_every_field_in_stable_order(result: ScanResult) -> None:
    report = json.loads(format_json(result))
    findings = report["findings"]
    assert [(f["document"], f["path"], f["rule"]) for f in findings] == [
        (1, "spec.template.spec.containers[0].image", "image-tag-latest"),
        (1, "spec.template.spec.containers[0].securityContext.privileged", "privileged-container"),
        (2, "metadata.labels", "owner-label-missing"),
        (2, "spec.containers[0].image", "image-tag-latest"),
    ]
    first = findings[1]
    assert first == {
        "rule": "privileged-container",
        "severity": "critical",
        "action": "enforce",
        "kind": "Deployment",
        "namespace": "ml-prod",
        "name": "trainer",
        "path": "spec.template.spec.containers[0].securityContext.privileged",
        "message": "privileged-container at spec.template.spec.containers[0].securityContext."
        "privileged",
        "fix": "Remove securityContext.privileged.",
        "family": "hardening",
        "references": ["PSS baseline: Privileged Containers"],
        "environment": "prod",
        "file": "k8s/train.yaml",
        "document": 1,
        "line": 13,
    }
    assert findings[2]["exempted_by"] == "ml-dev/notebooks"
    assert "exempted_by" not in findings[3]
    assert report["summary"] == {
        "objects": 2,
        "excluded": 0,
        "files": 1,
        "findings": {"enforce": 2, "warn": 1, "audit": 0, "exempted": 1},
        "fail_on": "enforce",
        "failing_objects": 1,
        "exit_code": 1,
        "errors": [],
    }
    # byte-identical on a second run: CI can diff reports
    assert format_json(result) == format_json(result)


def test_json_lists_input_errors() -> None:
    broken = ScanResult(errors=[InputError("line 3: missing kind", "a.yaml", 2)], files=1)
    report = json.loads(format_json(broken))
    assert report["findings"] == []
    assert report["summary"]["errors"] == ["a.yaml, document 2: line 3: missing kind"]
    assert report["summary"]["exit_code"] == 2


def test_sarif_structure(result: ScanResult) -> None:
    sarif = json.loads(format_sarif(result, CATALOG, cwd="/work"))
    assert sarif["version"] == "2.1.0"
    assert sarif["$schema"].endswith("sarif-2.1.0.json")
    (run,) = sarif["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "airlock"
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(CATALOG)
    privileged = rules[0]
    assert privileged["name"] == "PrivilegedContainer"
    assert privileged["shortDescription"] == {"text": "Privileged container"}
    assert privileged["fullDescription"] == {"text": "A container runs privileged."}
    assert privileged["help"]["text"] == (
        "Remove securityContext.privileged.\n\nA privileged container is root on the node."
    )
    assert privileged["properties"]["tags"][0] == "hardening"
    assert privileged["properties"]["security-severity"] == "9.5"
    assert privileged["defaultConfiguration"] == {"level": "error"}
    assert run["invocations"] == [{"executionSuccessful": True, "exitCode": 1}]

    results = run["results"]
    assert len(results) == 4
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["message"]["text"]
        loc = res["locations"][0]
        assert loc["physicalLocation"]["artifactLocation"]["uri"] == "k8s/train.yaml"
        assert loc["physicalLocation"]["region"]["startLine"] >= 1
    by_rule = {(r["ruleId"], r["level"]): r for r in results}
    priv = by_rule["privileged-container", "error"]
    assert priv["locations"][0]["physicalLocation"]["region"]["startLine"] == 13
    assert [ll["fullyQualifiedName"] for ll in priv["locations"][0]["logicalLocations"]] == [
        "Deployment/ml-prod/trainer",
        "Deployment/ml-prod/trainer/spec.template.spec.containers[0].securityContext.privileged",
    ]
    assert set(by_rule) == {
        ("privileged-container", "error"),
        ("image-tag-latest", "error"),
        ("image-tag-latest", "warning"),
        ("owner-label-missing", "note"),
    }
    exempted = by_rule["owner-label-missing", "note"]
    assert exempted["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "PolicyException ml-dev/notebooks",
        }
    ]
    assert "suppressions" not in priv
    fingerprints = {r["partialFingerprints"]["airlockFinding/v1"] for r in results}
    assert len(fingerprints) == 4


def test_sarif_reports_input_errors_as_notifications() -> None:
    broken = ScanResult(errors=[InputError("line 3: missing kind", "a.yaml", 2)], files=1)
    (run,) = json.loads(format_sarif(broken, CATALOG))["runs"]
    assert run["results"] == []
    assert run["invocations"][0]["executionSuccessful"] is False
    assert run["invocations"][0]["toolExecutionNotifications"] == [
        {"level": "error", "message": {"text": "a.yaml, document 2: line 3: missing kind"}}
    ]


def test_fingerprint_depends_on_place_not_message(result: ScanResult) -> None:
    doc = result.entries[0].document
    a = finding(doc, "image-tag-latest", Action.ENFORCE, "spec.x", message="one wording")
    b = finding(doc, "image-tag-latest", Action.WARN, "spec.x", message="another wording")
    c = finding(doc, "image-tag-latest", Action.ENFORCE, "spec.y")
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(c)


@pytest.mark.parametrize(
    ("file", "source", "uri"),
    [
        ("k8s/app.yaml", None, "k8s/app.yaml"),
        ("./k8s/app.yaml", None, "k8s/app.yaml"),
        ("/work/repo/k8s/app.yaml", None, "repo/k8s/app.yaml"),
        ("/elsewhere/app.yaml", None, "file:///elsewhere/app.yaml"),
        ("-", "chart/templates/x.yaml", "chart/templates/x.yaml"),
        ("-", None, "stdin"),
    ],
)
def test_artifact_uri_is_relative_with_forward_slashes(
    file: str, source: str | None, uri: str
) -> None:
    doc = Document(file, 1, {"kind": "Pod"}, source=source)
    assert artifact_uri(doc, cwd="/work") == uri


def test_security_severity_covers_every_severity() -> None:
    assert {s: SECURITY_SEVERITY[s] for s in Severity} == {
        Severity.CRITICAL: "9.5",
        Severity.HIGH: "8.0",
        Severity.MEDIUM: "5.5",
        Severity.LOW: "3.0",
    }


def test_explain_and_rule_list() -> None:
    text = format_explain(CATALOG["privileged-container"])
    assert text.splitlines()[0] == "privileged-container: Privileged container"
    for heading in ("What it catches:", "Why it matters:", "How to fix:", "References:"):
        assert heading in text
    assert "  - PSS baseline: Privileged Containers" in text
    listing = format_rule_list(CATALOG.values()).splitlines()
    assert [line.split()[0] for line in listing] == list(CATALOG)
    assert listing[0].split()[1:3] == ["critical", "hardening"]


_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)  # as loaded: no surrogates


_OPTIONAL_TEXT = st.none() | _TEXT


@st.composite
def _entries(draw: st.DrawFn) -> tuple[Any, Finding]:
    from airlock.engine import Verdict
    from airlock.scan.result import ScanEntry

    finding = Finding(
        draw(_TEXT),
        draw(st.sampled_from(list(Severity))),
        draw(st.sampled_from(list(Action))),
        draw(_TEXT),
        draw(_OPTIONAL_TEXT),
        draw(_TEXT),
        draw(_TEXT),
        draw(_TEXT),
        draw(_TEXT),
        draw(_TEXT),
        tuple(draw(st.lists(_TEXT, max_size=3))),
        draw(_OPTIONAL_TEXT),
    )
    doc = Document(
        draw(_TEXT),
        draw(st.integers(1, 10**6)),
        {},
        draw(st.integers(1, 10**6)),
        draw(st.none() | st.integers(0, 10**4)),
        draw(_OPTIONAL_TEXT),
    )
    verdict = Verdict(finding.kind, finding.namespace, finding.name, draw(_TEXT), False, (finding,))
    return ScanEntry(doc, verdict), finding


@given(_entries())
def test_each_finding_is_written_as_both_json_encoders_write_its_record(
    drawn: tuple[Any, Finding],
) -> None:
    """The report writes each finding field by field (below LARGE_REPORT findings) or through
    orjson (above): both must give the bytes of the standard encoder on its record."""
    import orjson
    from airlock.scan import jsonfmt

    entry, f = drawn
    record = jsonfmt.finding_record(entry, f)
    standard = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert jsonfmt._Encoder().line(entry, f) == standard
    assert orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode() == standard
    assert jsonfmt._joined([record, record]) == (standard + ",\n    " + standard).encode()


_FEW = st.sampled_from(["a", "b", 'q"', "é"])  # few values: findings share rules and objects
_TWO = st.sampled_from(["a", 'q"'])


@st.composite
def _report_rows(draw: st.DrawFn) -> list[tuple[Any, Finding]]:
    """Findings of a few objects whose fields often coincide, in an order where one object's
    findings may also come apart (the encoder must not carry one row's fields to the next)."""
    from airlock.engine import Verdict
    from airlock.scan.result import ScanEntry

    entries = []
    for _ in range(draw(st.integers(1, 3))):
        doc = Document(
            draw(_FEW), draw(st.integers(1, 3)), {}, 1,
            draw(st.none() | st.integers(0, 2)), draw(st.none() | _FEW),
        )  # fmt: skip
        entries.append(ScanEntry(doc, Verdict("Pod", None, "n", draw(_FEW), False, ())))
    rows = []
    for _ in range(draw(st.integers(1, 12))):
        f = Finding(
            draw(_TWO), draw(st.sampled_from([Severity.HIGH, Severity.LOW])),
            draw(st.sampled_from(list(Action))), draw(_FEW), draw(st.none() | _FEW), draw(_FEW),
            draw(_FEW), draw(_FEW), draw(_TWO), draw(_TWO), tuple(draw(st.lists(_TWO, max_size=2))),
            draw(st.none() | _FEW),
        )  # fmt: skip
        rows.append((draw(st.sampled_from(entries)), f))
    return rows


@given(_report_rows())
def test_one_encoder_writes_every_row_of_a_report_as_the_standard_encoder(
    rows: list[tuple[Any, Finding]],
) -> None:
    """The report's encoder remembers the parts that findings share (their object's, their
    rule's): each line must still be its own record's standard encoding."""
    from airlock.scan import jsonfmt

    line = jsonfmt._Encoder().line
    for entry, f in rows:
        record = jsonfmt.finding_record(entry, f)
        standard = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        assert line(entry, f) == standard


@given(_report_rows())
def test_reports_encoded_where_objects_are_judged_join_into_the_same_report(
    rows: list[tuple[Any, Finding]],
) -> None:
    """A scan asked to (``render=entry_report``) encodes each object's findings where it judges
    it, in its worker; the report joined from those is the one encoded at the end."""
    from airlock.engine import Verdict
    from airlock.scan import entry_report, format_json
    from airlock.scan.result import ScanEntry, _entry_key

    objects: dict[tuple[str, int, int], tuple[ScanEntry, list[Finding]]] = {}
    rows = [(e, f) for e, f in rows if f.action is not Action.OFF]  # a rule turned off: none
    for entry, f in rows:  # one entry per object (file, document, item), as a scan has
        objects.setdefault(_entry_key(entry), (entry, []))[1].append(f)
    entries = []
    for key in sorted(objects):
        entry, found = objects[key]
        v = entry.verdict
        entries.append(
            ScanEntry(
                entry.document,
                Verdict(v.kind, v.namespace, v.name, v.environment, False, tuple(found)),
            )
        )
    plain = ScanResult(entries=entries, files=1)
    encoded = ScanResult(
        entries=[
            ScanEntry(e.document, e.verdict, entry_report(e.document, e.verdict)) for e in entries
        ],
        files=1,
    )
    assert format_json(encoded) == format_json(plain)


_SUMMARY_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)


@given(_SUMMARY_VALUES)
def test_the_summary_is_written_as_json_writes_it(value: Any) -> None:
    """The summary is written without importing json (start-up): as json.dumps writes it."""
    from airlock.scan import jsonfmt

    assert jsonfmt._pretty(value) == json.dumps(value, sort_keys=True, ensure_ascii=False, indent=2)


def test_a_scan_does_not_import_json() -> None:
    """``airlock scan -o json`` of YAML (the summary, the findings) without the json module."""
    code = (
        "import sys; from airlock.cli import main; main(['scan', '-o', 'json', 'clean.yaml']);"
        "print('json' in sys.modules, file=sys.stderr)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=FIXTURES, capture_output=True, text=True, check=False
    )
    assert run.stderr.strip().splitlines()[-1] == "False"
    assert '"summary"' in run.stdout


def test_large_and_small_reports_write_the_same_lines(
    result: ScanResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airlock.scan import jsonfmt

    small = jsonfmt.format_json(result)
    monkeypatch.setattr(jsonfmt, "LARGE_REPORT", 1)
    assert jsonfmt.format_json(result) == small
    assert small.count('"rule":') == sum(len(e.verdict.findings) for e in result.entries) > 1


_TRICKY: list[dict[str, Any]] = [
    {"message": 'a "},{" inside', "path": "x"},
    {"message": "line\nbreak, tab\t, ] and [ \\ back", "path": "é/ü/中"},
    {"message": "", "references": ("a", '},{"b'), "n": None},
]
# records whose encoding holds '},{"' inside: the split cannot be trusted, each is encoded alone
_UNSPLITTABLE: dict[str, dict[str, Any]] = {
    "a string ending in },{": {"message": "ends in },{", "path": "p"},
    "objects in a list": {"nested": [{"a": 1}, {"b": '},{"'}], "path": "p"},
    "an empty record": {},
}


@pytest.mark.parametrize("copies", [1, 100])
@pytest.mark.parametrize("extra", [None, *_UNSPLITTABLE])
def test_json_report_is_one_finding_per_line_whatever_the_strings_hold(
    copies: int, extra: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orjson
    from airlock.scan.jsonfmt import _joined

    calls: list[int] = []
    real = orjson.dumps
    monkeypatch.setattr(orjson, "dumps", lambda *a, **k: calls.append(1) or real(*a, **k))
    added = [_UNSPLITTABLE[extra]] if extra else []
    if extra == "an empty record":  # one boundary fewer, one '},{"' more: the count alone agrees
        added.append(_UNSPLITTABLE["a string ending in },{"])
    records = (_TRICKY + added) * copies
    lines = _joined(records).split(b",\n    ")
    assert len(lines) == len(records)
    assert [json.loads(p) for p in lines] == json.loads(json.dumps(records))
    if copies > 1:  # orjson: one encoding split at the boundaries, or one per record
        assert len(calls) == (1 if extra is None else 1 + len(records))
    assert _joined([]) == b""


@pytest.mark.parametrize("large", [False, True])
def test_a_file_name_that_is_not_utf8_is_written_as_json_escapes(
    large: bool, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.fsdecode turns the name's stray bytes into lone surrogates: the report stays UTF-8
    and its reader gets the same string back, whatever the report's size (orjson refuses
    such strings, so the report is then written field by field)."""
    import os

    from airlock.scan import jsonfmt

    name = os.path.join(os.fsencode(tmp_path), b"bad\xff.yaml")
    with open(name, "wb") as fh:
        fh.write(MANIFEST.encode())
    broken = os.path.join(os.fsencode(tmp_path), b"broken\xfe.yaml")
    with open(broken, "wb") as fh:
        fh.write(b"a: [1\n")  # an input error naming the file, in the summary
    if large:
        monkeypatch.setattr(jsonfmt, "LARGE_REPORT", 1)
    from airlock.engine import evaluate
    from airlock.scan.loader import list_inputs
    from airlock.scan.result import scan_inputs

    result = scan_inputs(list_inputs([os.fsdecode(name), os.fsdecode(broken)]), evaluate)
    report = json.loads(jsonfmt.format_json(result).encode("utf-8"))  # strict: no surrogate
    assert {f["file"] for f in report["findings"]} == {os.fsdecode(name)}
    assert os.fsdecode(broken) in report["summary"]["errors"][0]
    sarif = json.loads(format_sarif(result, CATALOG).encode("utf-8"))
    assert sarif["runs"][0]["results"]
