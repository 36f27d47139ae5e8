"""The Grafana dashboard and the PrometheusRule query only metrics Airlock really exports.

Each PromQL expression is reduced to the metric names it reads (a small tokenizer: strings,
label matchers, ranges and grouping clauses removed; identifiers followed by ``(`` are functions;
keywords dropped), and each name must appear in a real scrape: the registry's Prometheus text
after an audit pass, admission reviews through the real handler, and the controller's policy
cache, so a renamed metric or a typo in a panel fails here rather than on a blank dashboard.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock import metrics
from airlock.admission import AdmissionSettings, StateStore, handle_validate
from airlock.controller.audit import Auditor, publish_metrics
from airlock.controller.policy import PolicyCache
from prometheus_client.parser import text_string_to_metric_families

from tests.support.builders import clean_pod

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "manifests" / "monitoring" / "dashboard.json"
RULES = REPO / "manifests" / "monitoring" / "prometheusrule.yaml"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_TOKEN = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[a-z]*|([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "topk",
        "bottomk",
        "quantile",
        "stddev",
        "stdvar",
        "group",
        "count_values",
    }
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for m in _TOKEN.finditer(text):
        name, call = m.group(1), m.group(2)
        if name is None or call or name in _KEYWORDS:
            continue
        names.add(name)
    return names


def test_tokenizer_finds_metrics_and_nothing_else() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, kind) (rate(airlock_admission_duration_seconds_bucket"
        '{kind=~"Pod|Job", environment="$env"}[$__rate_interval]))) > 0.1 and on (job) '
        "time() - max(up offset 1h) < 3 * 86400 or sum without (x) (foo:bar_total) > 1e3"
    )
    assert metric_names(expr) == {
        "airlock_admission_duration_seconds_bucket",
        "up",
        "foo:bar_total",
    }


def _dashboard_exprs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _dashboard_exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _dashboard_exprs(item)


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    assert doc["apiVersion"] == "monitoring.coreos.com/v1"
    assert doc["kind"] == "PrometheusRule"
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def all_exprs() -> list[tuple[str, str]]:
    out = [("dashboard", e) for e in _dashboard_exprs(dashboard()["panels"])]
    out += [(f"alert {r['alert']}", str(r["expr"])) for r in rules()]
    for var in dashboard()["templating"]["list"]:
        definition = var.get("definition")
        if definition:
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", definition)
            assert m, definition
            out.append((f"variable {var['name']}", m.group(1)))
    return out


# --- a real scrape ------------------------------------------------------------------------------

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "BaselinePolicy",
    "metadata": {"name": "default", "generation": 3},
    "spec": {"environments": [{"name": "prod", "mode": "enforce"}]},
}


def _review(obj: dict[str, Any]) -> dict[str, Any]:
    gvk = {"group": "", "version": "v1", "kind": obj["kind"]}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk,
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": gvk,
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": obj["metadata"]["name"],
            "namespace": obj["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


@pytest.fixture(scope="module")
def scraped() -> set[str]:
    # the audit: a violation seen, then fixed (remediation), one waived, one still open
    clock = [NOW]
    auditor = Auditor("default", clock=lambda: clock[0])
    auditor.set_policy(POLICY)
    auditor.set_namespace("ml", {"airlock.dev/environment": "prod"})
    bad = clean_pod("ml", "bad")
    bad["metadata"]["uid"] = "u1"
    bad["spec"]["containers"][0]["securityContext"]["privileged"] = True
    waived = clean_pod("ml", "waived")
    waived["metadata"]["uid"] = "u2"
    waived["spec"]["hostNetwork"] = True
    auditor.upsert(bad)
    auditor.upsert(waived)
    auditor.set_exception(
        {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "PolicyException",
            "metadata": {
                "name": "w",
                "namespace": "ml",
                "creationTimestamp": NOW.isoformat(),
                "annotations": {"airlock.dev/created-by": "a", "airlock.dev/approved-by": "b"},
            },
            "spec": {
                "rules": ["host-namespaces"],
                "match": {"names": ["waived"]},
                "expires": (NOW + timedelta(days=5)).isoformat(),
                "owner": "ml",
                "reason": "network benchmark this week",
            },
        }
    )
    auditor.run_pass()
    clock[0] = NOW + timedelta(hours=1)
    fixed = copy.deepcopy(bad)
    fixed["spec"]["containers"][0]["securityContext"]["privileged"] = False
    auditor.upsert(fixed)
    still_open = clean_pod("ml", "open")
    still_open["metadata"]["uid"] = "u3"
    still_open["spec"]["containers"][0]["image"] = "registry.corp.example/model:latest"
    auditor.upsert(still_open)
    result = auditor.run_pass(full=True)
    publish_metrics(result.summary, result=result)

    # admission, through the real handler
    store = StateStore("default")
    store.set_policy(POLICY)
    store.set_namespace("ml", {"airlock.dev/environment": "prod"})
    for kind in ("policy", "namespaces", "exceptions"):
        store.mark_synced(kind)  # type: ignore[arg-type]
    for obj in (clean_pod("ml", "ok"), bad):
        handle_validate(_review(obj), store, AdmissionSettings())

    # the controller's policy cache, and what the exception lifecycle and certificates set
    PolicyCache("default").observe(POLICY)
    metrics.EXCEPTIONS.labels("Active").set(1)
    metrics.EXCEPTION_EXPIRY.labels("ml", "w").set((NOW + timedelta(days=5)).timestamp())
    metrics.WEBHOOK_CERTIFICATE_EXPIRY.set((NOW + timedelta(days=90)).timestamp())

    names: set[str] = set()
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        names.update(s.name for s in family.samples)
    return names


def test_every_queried_metric_is_exported(scraped: set[str]) -> None:
    exprs = all_exprs()
    assert len(exprs) > 20
    missing = {
        (where, name) for where, expr in exprs for name in metric_names(expr) if name not in scraped
    }
    assert missing == set()


def test_scrape_holds_the_audit_and_admission_series(scraped: set[str]) -> None:
    for name in (
        "airlock_audit_violations",
        "airlock_remediation_duration_seconds_bucket",
        "airlock_remediation_duration_seconds_count",
        "airlock_admission_duration_seconds_bucket",
        "airlock_admission_requests_total",
        "airlock_rule_results_total",
    ):
        assert name in scraped


def test_dashboard_covers_what_the_platform_team_asked_for() -> None:
    exprs = [e for where, e in all_exprs() if where == "dashboard"]
    used = set().union(*(metric_names(e) for e in exprs))
    assert {
        "airlock_compliance_ratio",
        "airlock_audit_violations",
        "airlock_admission_requests_total",
        "airlock_admission_duration_seconds_bucket",
        "airlock_exception_expiry_timestamp_seconds",
        "airlock_remediation_duration_seconds_bucket",
    } <= used
    assert any("histogram_quantile" in e and "admission_duration" in e for e in exprs)
    assert any("14 * 86400" in e for e in exprs)
    d = dashboard()
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert p["targets"]


def test_alerts_cover_staleness_prod_exceptions_certificates_and_webhook() -> None:
    by_name = {r["alert"]: str(r["expr"]) for r in rules()}
    assert "airlock_audit_last_success_timestamp_seconds" in by_name["AirlockAuditStale"]
    assert "3 * 300" in by_name["AirlockAuditStale"]
    assert 'environment="prod"' in by_name["AirlockComplianceDropProd"]
    assert "airlock_exception_expiry_timestamp_seconds" in by_name["AirlockExceptionExpiringSoon"]
    assert (
        "airlock_webhook_certificate_expiry_timestamp_seconds"
        in by_name["AirlockWebhookCertificateExpiring"]
    )
    assert 'decision="error"' in by_name["AirlockWebhookErrors"]
    assert "histogram_quantile" in by_name["AirlockWebhookLatencyHigh"]
    assert "unless count(airlock_policy_info)" in by_name["AirlockPolicyMissing"]
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
