"""PolicyReports: the pure report builder, and the writer against an in-memory API."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airlock.controller.audit import AuditedWorkload, Auditor, WorkloadRef, condense
from airlock.controller.kube import Kube
from airlock.controller.reports import (
    OMITTED_ANNOTATION,
    ReportWriter,
    build_report,
    report_digest,
)
from airlock.engine import evaluate
from airlock.model import ExceptionRecord, load_policy
from airlock.state import EvalContext

from tests.support.builders import clean_pod
from tests.support.kube import FakeApi, writes

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TOKEN = "hf_" + "Qx7Lm2Np9Rt4Vw8Yz3Bc6Df1Gh5Jk0Ms2Pq"
POLICY = load_policy(
    {
        "environments": [
            {"name": "prod", "mode": "enforce", "allowedRegistries": ["registry.corp.example/"]}
        ],
    }
)
CTX = EvalContext.build(POLICY, namespace_env={"ml": "prod"}, now=NOW)


def audited(obj: dict[str, Any], ctx: EvalContext = CTX, since: float = 0.0) -> AuditedWorkload:
    meta = obj["metadata"]
    ref = WorkloadRef(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"], "uid-1")
    return condense(ref, evaluate(obj, ctx), since or NOW.timestamp())


def leaky_pod(name: str = "trainer") -> dict[str, Any]:
    p = clean_pod("ml", name)
    c = p["spec"]["containers"][0]
    c["env"].append({"name": "HF_TOKEN", "value": TOKEN})
    c["args"] = [f"--token={TOKEN}"]
    c["securityContext"]["privileged"] = True
    return p


def test_report_shape_for_failures() -> None:
    report = build_report("ml", [audited(leaky_pod())], "default", NOW)
    assert report["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert report["kind"] == "PolicyReport"
    assert report["metadata"] == {
        "name": "airlock",
        "namespace": "ml",
        "labels": {"app.kubernetes.io/managed-by": "airlock"},
    }
    assert report["summary"] == {"pass": 0, "fail": 3, "warn": 0, "error": 0, "skip": 0}
    rules = [r["rule"] for r in report["results"]]
    # most severe first (all three critical here), then rule id
    assert rules == ["plaintext-secret-args", "plaintext-secret-env", "privileged-container"]
    env = report["results"][1]
    assert env == {
        "source": "airlock",
        "policy": "default",
        "rule": "plaintext-secret-env",
        "result": "fail",
        "scored": True,
        "severity": "critical",
        "category": "secrets",
        "message": env["message"],
        "resources": [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": "trainer",
                "namespace": "ml",
                "uid": "uid-1",
            }
        ],
        "timestamp": {"seconds": int(NOW.timestamp()), "nanos": 0},
        "properties": {
            "path": "spec.containers[0].env[1].value",
            "action": "enforce",
            "environment": "prod",
        },
    }
    assert "HF_TOKEN" in env["message"]


def test_a_secret_never_reaches_the_report() -> None:
    report = build_report("ml", [audited(leaky_pod())], "default", NOW)
    text = json.dumps(report)
    assert TOKEN not in text
    assert TOKEN[3:15] not in text


def test_exempted_findings_are_skips_naming_the_exception() -> None:
    waiver = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {
            "name": "gpu-debug",
            "namespace": "ml",
            "creationTimestamp": NOW.isoformat(),
            "annotations": {"airlock.dev/created-by": "a", "airlock.dev/approved-by": "b"},
        },
        "spec": {
            "rules": ["privileged-container"],
            "expires": (NOW + timedelta(days=3)).isoformat(),
            "owner": "ml",
            "reason": "profiling the GPU driver this week",
        },
    }
    ctx = EvalContext.build(
        POLICY,
        namespace_env={"ml": "prod"},
        exceptions=[ExceptionRecord.from_object(waiver)],
        now=NOW,
    )
    report = build_report("ml", [audited(leaky_pod(), ctx)], "default", NOW)
    assert report["summary"]["skip"] == 1
    assert report["summary"]["fail"] == 2
    (skip,) = [r for r in report["results"] if r["result"] == "skip"]
    assert skip["rule"] == "privileged-container"
    assert skip["properties"]["exception"] == "ml/gpu-debug"
    assert report["results"][-1] is skip  # failures first


def test_first_seen_time_and_occurrences() -> None:
    p = leaky_pod()
    p["spec"]["containers"][0]["env"].append({"name": "HF_TOKEN_2", "value": TOKEN + "z"})
    first = audited(p, since=1_700_000_000.0)
    later = condense(first.ref, evaluate(p, CTX), NOW.timestamp(), previous=first)
    report = build_report("ml", [later], "default", NOW)
    env = next(r for r in report["results"] if r["rule"] == "plaintext-secret-env")
    assert env["timestamp"] == {"seconds": 1_700_000_000, "nanos": 0}
    assert env["properties"]["occurrences"] == "2"
    # the same state gives the same report, whatever the clock says: no needless writes
    again = build_report("ml", [later], "default", NOW + timedelta(hours=1))
    assert report_digest(again) == report_digest(report)


def test_compliant_workloads_and_other_namespaces_are_left_out() -> None:
    clean = audited(clean_pod("ml", "fine"))
    other = audited(leaky_pod())
    other = AuditedWorkload(
        WorkloadRef("v1", "Pod", "elsewhere", "x", "u2"), other.environment, other.results
    )
    report = build_report("ml", [clean, other], "default", NOW)
    assert report["results"] == []
    with_passes = build_report("ml", [clean], "default", NOW, include_passes=True)
    assert [(r["result"], r["resources"][0]["name"]) for r in with_passes["results"]] == [
        ("pass", "fine")
    ]
    assert with_passes["summary"]["pass"] == 1


def test_results_are_capped_most_severe_first() -> None:
    many = [audited(leaky_pod(f"p{i:02}")) for i in range(10)]
    report = build_report("ml", many, "default", NOW, max_results=5)
    assert len(report["results"]) == 5
    assert report["summary"]["fail"] == 30  # the summary counts every result
    assert report["metadata"]["annotations"] == {OMITTED_ANNOTATION: "25"}


# --- the writer --------------------------------------------------------------------------------


def make_auditor() -> Auditor:
    a = Auditor("default", clock=lambda: NOW)
    a.set_namespace("ml", {"airlock.dev/environment": "default"})
    return a


def add(a: Auditor, obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["uid"] = str(uuid.uuid4())
    a.upsert(obj)
    return obj


def test_writer_creates_updates_only_on_change_and_collects_garbage() -> None:
    api = FakeApi()
    writer = ReportWriter(Kube(custom=api), policy_name="default")
    a = make_auditor()
    bad = add(a, leaky_pod())

    async def sync() -> int:
        assert await writer.check_available()
        result = a.run_pass()
        return await writer.sync(result.changed_namespaces | writer.present, a.results, NOW)

    assert asyncio.run(sync()) == 1
    stored = api.objects[("policyreports", "ml", "airlock")]
    assert stored["summary"]["fail"] == 3
    # the watch delivers our own write: nothing to do
    assert not writer.observe(stored)
    a.request_full_pass()
    assert asyncio.run(sync()) == 0
    assert writes(api) == [("create", "ml")]

    # someone edits the report by hand: it is written again
    tampered = copy.deepcopy(stored)
    tampered["results"] = []
    tampered["metadata"]["resourceVersion"] = "999"
    assert writer.observe(tampered)
    api.objects[("policyreports", "ml", "airlock")] = tampered
    asyncio.run(writer.sync([], a.results, NOW))
    # create answers 409, so the writer reads the resourceVersion and replaces
    assert [verb for verb, _, _ in api.calls[-3:]] == ["create", "get", "replace"]
    assert api.objects[("policyreports", "ml", "airlock")]["summary"]["fail"] == 3

    # fixed: the namespace has no result left, so its report goes
    fixed = copy.deepcopy(bad)
    c = fixed["spec"]["containers"][0]
    c["env"] = c["env"][:1]
    c["args"] = []
    c["securityContext"]["privileged"] = False
    a.upsert(fixed)
    asyncio.run(sync())
    assert ("policyreports", "ml", "airlock") not in api.objects
    assert writes(api)[-1] == ("delete", "ml")
    assert "ml" not in writer.present


def test_writer_leaves_foreign_reports_alone() -> None:
    api = FakeApi()
    api.objects[("policyreports", "ml", "airlock")] = {
        "metadata": {"name": "airlock", "namespace": "ml", "resourceVersion": "5"},
        "results": [],
    }
    writer = ReportWriter(Kube(custom=api))
    assert not writer.observe(api.objects[("policyreports", "ml", "airlock")])
    a = make_auditor()
    add(a, leaky_pod())
    result = a.run_pass()
    writer.available = True
    asyncio.run(writer.sync(result.changed_namespaces, a.results, NOW))
    assert "replace" not in [verb for verb, _, _ in api.calls]
    assert api.objects[("policyreports", "ml", "airlock")]["results"] == []


def test_writer_skips_everything_without_the_crd(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeApi(crd=False)
    writer = ReportWriter(Kube(custom=api))
    a = make_auditor()
    add(a, leaky_pod())
    result = a.run_pass()
    with caplog.at_level(logging.INFO, logger="airlock.controller.reports"):
        for _ in range(3):
            assert not asyncio.run(writer.check_available())
            assert asyncio.run(writer.sync(result.changed_namespaces, a.results, NOW)) == 0
    assert writes(api) == []
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "policyreports.wgpolicyk8s.io" in lines[0]
    assert "not installed" in lines[0]
    # installed later: picked up at the next check
    api.crd = True
    assert asyncio.run(writer.check_available())
    assert asyncio.run(writer.sync(result.changed_namespaces, a.results, NOW)) == 1
