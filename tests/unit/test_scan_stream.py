"""The streaming scan (one file at a time) judges exactly as a scan of everything loaded at once.

Context that one file lends another (a PolicyException, a Namespace's environment, a ConfigMap
holding a credential that a workload reads) must reach workloads in files scanned before it, and
what the scan keeps of a judged object is its findings and their lines, not the object.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock.engine import evaluate
from airlock.scan import format_json, list_inputs, load_paths, run_scan, scan_inputs

from tests.support.builders import clean_container

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "scan"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "hf_" + hashlib.sha256(b"airlock-stream-test").hexdigest()[:34].replace("0", "Q")


def deployment(name: str, namespace: str, container: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"airlock.dev/owner": "t"}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"automountServiceAccountToken": False, "containers": [container]},
            },
        },
    }


def write_tree(root: Path) -> None:
    """Workloads in early files, the context they need in later ones."""
    reader = clean_container("reader")
    reader["env"].append(
        {"name": "TOKEN", "valueFrom": {"configMapKeyRef": {"name": "creds", "key": "token"}}}
    )
    waived = clean_container("waived")
    waived["securityContext"]["privileged"] = True
    (root / "a-workloads.yaml").write_text(
        yaml.safe_dump_all(
            [
                deployment("reader", "ml-prod", reader),
                deployment("waived", "ml-prod", waived),
                deployment("dev-only", "ml-dev", clean_container("x")),
            ]
        )
    )
    (root / "b").mkdir()
    (root / "b" / "context.yaml").write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "creds", "namespace": "ml-prod"},
                    "data": {"token": TOKEN, "other": "x"},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "ml-dev", "labels": {"airlock.dev/environment": "dev"}},
                },
                {
                    "apiVersion": "airlock.dev/v1alpha1",
                    "kind": "PolicyException",
                    "metadata": {
                        "name": "gpu-driver",
                        "namespace": "ml-prod",
                        "annotations": {
                            "airlock.dev/created-by": "alice",
                            "airlock.dev/approved-by": "bob",
                        },
                    },
                    "spec": {
                        "rules": ["privileged-container"],
                        "match": {"names": ["waived"]},
                        "expires": (NOW + timedelta(days=10)).isoformat(),
                        "owner": "platform",
                        "reason": "the GPU driver installer needs it until the operator lands",
                    },
                },
            ]
        )
    )


POLICY_ENVS = {"environments": [{"name": "prod"}, {"name": "dev", "mode": "warn"}]}


def both(paths: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    from airlock.model import load_policy

    policy = load_policy(POLICY_ENVS)
    streamed = scan_inputs(list_inputs(paths), evaluate, policy=policy, now=NOW)
    loaded = run_scan(load_paths(paths), evaluate, policy=policy, now=NOW)
    return json.loads(format_json(streamed)), json.loads(format_json(loaded))


def test_context_in_later_files_reaches_earlier_workloads(tmp_path: Path) -> None:
    write_tree(tmp_path)
    streamed, loaded = both([str(tmp_path)])
    assert streamed == loaded
    found = {(f["name"], f["rule"]): f for f in streamed["findings"]}
    # the ConfigMap key holds a credential: its reader is flagged, on the line of the reference
    assert found["reader", "plaintext-secret-configmap"]["line"] > 1
    # the exception in another file waives the privileged container
    assert found["waived", "privileged-container"]["exempted_by"] == "ml-prod/gpu-driver"
    # the Namespace in another file puts ml-dev in dev, where rules warn
    assert {f["action"] for f in streamed["findings"] if f["name"] == "dev-only"} == {"warn"}
    assert TOKEN not in json.dumps(streamed)


@pytest.mark.parametrize(
    "paths",
    [["."], ["violating.yaml", "helm.yaml", "list.yaml"], ["broken.yaml", "clean.yaml"]],
)
def test_fixtures_stream_as_they_load(paths: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    streamed, loaded = both(paths)
    assert streamed == loaded


def test_stdin_is_read_once_for_both_passes() -> None:
    text = (FIXTURES / "helm.yaml").read_text()
    inputs = list_inputs(["-"], stdin=io.StringIO(text))
    result = scan_inputs(inputs, evaluate, now=NOW)
    assert result.files == 1
    assert result.entries


@pytest.mark.parametrize("keep", [8 << 20, 0, 900])
def test_each_file_is_read_once_when_its_text_fits_what_the_scan_keeps(
    keep: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The context pass reads every file; a file whose text it kept (in order, while they fit
    in KEEP_TEXTS) is judged from that text, any other is read again; the report is the same."""
    from airlock.scan import loader, result

    monkeypatch.chdir(FIXTURES)
    before = format_json(scan_inputs(list_inputs(["."]), evaluate, now=NOW))
    real = loader.read_text
    room, kept = keep, 0
    names = [i.name for i in list_inputs(["."]) if i.error is None]
    for name in names:
        if len(real(name)) <= room:
            room -= len(real(name))
            kept += 1
    reads: list[str] = []

    def counted(path: str) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(loader, "read_text", counted)
    monkeypatch.setattr(result, "KEEP_TEXTS", keep)
    after = format_json(scan_inputs(list_inputs(["."]), evaluate, now=NOW))
    assert after == before
    assert sorted(set(reads)) == sorted(names)
    assert len(reads) == 2 * len(names) - kept
    assert 0 < kept < len(names) if keep == 900 else kept in (0, len(names))


def test_judged_documents_keep_findings_lines_not_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    result = scan_inputs(list_inputs(["violating.yaml"]), evaluate, now=NOW)
    entry = result.entries[0]
    doc = entry.document
    assert set(doc.obj) == {"apiVersion", "kind", "metadata"}
    assert "spec" not in doc.obj
    lines = {f.path: doc.line_of(f.path) for f in entry.verdict.findings}
    full = load_paths(["violating.yaml"]).documents[0]
    assert lines == {p: full.line_of(p) for p in lines}
    assert len(set(lines.values())) > 1


READER_YAML = {
    "plain": "configMapKeyRef",
    # a double-quoted key spelled with an escape is the same key to YAML (and to kubectl)
    "escaped": '"configMap\\x4BeyRef"',
}


@pytest.mark.parametrize("spelling", sorted(READER_YAML))
@pytest.mark.parametrize("order", ["configmap-first", "reader-first"])
def test_a_configmap_lends_to_its_reader_whichever_file_comes_first(
    tmp_path: Path, order: str, spelling: str
) -> None:
    # ConfigMaps wait (as text) until a file shows a reference: one seen later still reaches
    # a reader whose file is judged earlier, and one seen first is not lost either
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "creds", "namespace": "ml-prod"},
        "data": {"token": TOKEN},
    }
    container = clean_container("reader")
    ref = {"name": "creds", "key": "token"}
    container["env"].append({"name": "TOKEN", "valueFrom": {"KEY_REF": ref}})
    reader = yaml.safe_dump(deployment("reader", "ml-prod", container))
    reader = reader.replace("KEY_REF", READER_YAML[spelling])
    first, second = ("a.yaml", "b.yaml") if order == "configmap-first" else ("b.yaml", "a.yaml")
    (tmp_path / first).write_text(yaml.safe_dump(configmap))
    (tmp_path / second).write_text(reader)
    streamed, loaded = both([str(tmp_path)])
    assert streamed == loaded
    rules = {(f["name"], f["rule"]) for f in streamed["findings"]}
    assert ("reader", "plaintext-secret-configmap") in rules
    assert ("creds", "plaintext-secret-configmap") in rules


def test_configmaps_nobody_reads_are_not_parsed_for_the_context(tmp_path: Path) -> None:
    from airlock.scan import result

    text = "\n---\n".join(
        yaml.safe_dump(o)
        for o in (
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}},
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns2"}},
                ],
            },
        )
    )
    waiting: list[tuple[str, str]] = []
    parsed = list(result._context_objects(text, "f.yaml", waiting))
    # the ConfigMap's own document waits; a document naming another kind too is parsed whole
    assert [o["metadata"]["name"] for o in parsed] == ["ns", "b", "ns2"]
    assert [(name, "name: a" in piece) for piece, name in waiting] == [("f.yaml", True)]
    # without a list to wait in, everything is parsed
    assert len(list(result._context_objects(text, "f.yaml"))) == 4


def test_only_a_marker_at_a_line_start_divides_documents_for_the_context() -> None:
    from airlock.scan import result

    text = (
        "metadata:\n  name: one\n  annotations:\n    note: before --- after\n    rule: x---\n"
        "kind: Namespace\napiVersion: v1\n"
        "--- # the second\nkind: Namespace\napiVersion: v1\nmetadata: {name: two}\n"
    )
    names = [o["metadata"]["name"] for o in result._context_objects(text, "f.yaml")]
    assert names == ["one", "two"]
