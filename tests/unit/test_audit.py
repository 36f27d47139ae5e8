"""The background audit: index, owner dedup, incremental and full passes, remediation, metrics."""

from __future__ import annotations

import asyncio
import base64
import copy
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airlock import metrics
from airlock.controller.audit import (
    AUDITED_RESOURCES,
    MAX_AUDITED_BINARY,
    Auditor,
    publish_metrics,
    strip,
)
from airlock.controller.compliance import Compliance, ComplianceSettings
from airlock.controller.kube import Kube
from airlock.findings import Action
from prometheus_client.parser import text_string_to_metric_families

from tests.support.builders import clean_pod, deployment
from tests.support.kube import FakeApi

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TOKEN = "hf_" + "Qx7Lm2Np9Rt4Vw8Yz3Bc6Df1Gh5Jk0Ms2Pq"
POLICY: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "BaselinePolicy",
    "metadata": {"name": "default", "generation": 1},
    "spec": {
        "defaultEnvironment": "dev",
        "environments": [
            {"name": "dev", "mode": "warn", "allowedRegistries": ["registry.corp.example/"]},
            {
                "name": "prod",
                "mode": "enforce",
                "allowedRegistries": ["registry.corp.example/prod/"],
            },
        ],
    },
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def with_uid(obj: dict[str, Any], uid: str | None = None) -> dict[str, Any]:
    obj["metadata"]["uid"] = uid or str(uuid.uuid4())
    return obj


def pod(ns: str = "ml-prod", name: str = "p", **spoil: Any) -> dict[str, Any]:
    p = with_uid(clean_pod(ns, name))
    c = p["spec"]["containers"][0]
    if spoil.get("token"):
        c["env"].append({"name": "HF_TOKEN", "value": TOKEN})
    if spoil.get("latest"):
        c["image"] = "registry.corp.example/prod/model:latest"
    if spoil.get("privileged"):
        c["securityContext"]["privileged"] = True
    return p


def owned(obj: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
            "controller": True,
        }
    ]
    return obj


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auditor(clock: Clock) -> Auditor:
    a = Auditor("default", clock=clock)
    assert a.set_policy(POLICY)
    a.set_namespace("ml-prod", {"airlock.dev/environment": "prod"})
    a.set_namespace("ml-dev", {"airlock.dev/environment": "dev"})
    a.set_namespace("kube-system", {})
    return a


def violations(a: Auditor) -> set[tuple[str, str, str]]:
    """(namespace/name, rule, environment) of every violation the audit holds."""
    return {
        (f"{w.ref.namespace}/{w.ref.name}", r.rule, w.environment)
        for w in a.audited()
        for r in w.violations
    }


def sample(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


# --- what is kept ------------------------------------------------------------------------------


def test_strip_keeps_what_evaluation_reads_and_nothing_else() -> None:
    p = pod(token=True)
    p["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": TOKEN}
    p["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    p["status"] = {"phase": "Running"}
    owned(p, with_uid(deployment(clean_pod())))
    p["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = True
    kept = strip(p)
    assert set(kept) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(kept["metadata"]) == {"name", "namespace", "uid", "labels", "ownerReferences"}
    assert "blockOwnerDeletion" not in kept["metadata"]["ownerReferences"][0]
    assert kept["spec"] == p["spec"]
    assert TOKEN not in str({k: v for k, v in kept.items() if k != "spec"})

    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ml-prod", "uid": "u"},
        "data": {"a": "b"},
        "binaryData": {"blob": "AAAA", "model": "A" * (MAX_AUDITED_BINARY + 4)},
        "immutable": True,
    }
    assert strip(cm) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ml-prod", "uid": "u"},
        "data": {"a": "b"},
        "binaryData": {"blob": "AAAA"},  # small entries only: a credential file, not a model
    }


def test_audited_resources_cover_core_and_ai_kinds() -> None:
    ids = {r.id for r in AUDITED_RESOURCES}
    for core in ("pods", "configmaps", "deployments.apps", "cronjobs.batch", "jobs.batch"):
        assert core in ids
    for ai in ("pytorchjobs.kubeflow.org", "inferenceservices.serving.kserve.io", "rayjobs.ray.io"):
        assert ai in ids
    assert all(r.optional for r in AUDITED_RESOURCES if r.version is None)


# --- evaluation --------------------------------------------------------------------------------


def test_full_pass_judges_each_workload_in_its_environment(auditor: Auditor) -> None:
    auditor.upsert(pod("ml-prod", "bad", latest=True))
    auditor.upsert(pod("ml-prod", "good"))
    auditor.upsert(pod("ml-dev", "dev-bad", privileged=True))
    auditor.upsert(pod("kube-system", "sys", privileged=True))  # excluded namespace
    result = auditor.run_pass()
    assert result.full
    assert violations(auditor) == {
        ("ml-prod/bad", "image-tag-latest", "prod"),
        ("ml-prod/bad", "image-digest-missing", "prod"),
        ("ml-dev/dev-bad", "privileged-container", "dev"),
    }
    assert result.summary.workloads == {"prod": (1, 1), "dev": (0, 1)}
    assert result.summary.compliance == {"dev": 0.0, "prod": 0.5}
    assert result.summary.violations[("image-tag-latest", "prod", "ml-prod", "medium")] == 1
    last = result.summary.last_audit()
    assert last["workloads"] == 3
    assert last["compliance"] == {"dev": 0.0, "prod": 0.5}
    assert last["time"] == "2026-11-26T12:00:00Z"
    assert sum(last["violations"].values()) == 3


def test_one_result_per_rule_with_first_place_and_count(auditor: Auditor) -> None:
    p = pod(token=True)
    p["spec"]["containers"][0]["env"].append({"name": "HF_TOKEN_2", "value": TOKEN + "x"})
    auditor.upsert(p)
    auditor.run_pass()
    (audited,) = auditor.audited()
    (secret,) = [r for r in audited.violations if r.rule == "plaintext-secret-env"]
    assert secret.occurrences == 2
    assert secret.path == "spec.containers[0].env[1].value"
    assert secret.action is Action.ENFORCE
    assert TOKEN not in secret.message


def test_incremental_pass_evaluates_only_what_changed(auditor: Auditor) -> None:
    pods = [pod(name=f"p{i}") for i in range(5)]
    for p in pods:
        auditor.upsert(p)
    assert auditor.run_pass().evaluated == 5
    assert not auditor.pending
    assert not auditor.upsert(copy.deepcopy(pods[0]))  # a resync changes nothing
    assert not auditor.pending
    spoiled = copy.deepcopy(pods[1])
    spoiled["spec"]["containers"][0]["securityContext"]["privileged"] = True
    assert auditor.upsert(spoiled)
    result = auditor.run_pass()
    assert not result.full
    assert result.evaluated == 1
    assert result.changed_namespaces == {"ml-prod"}
    assert violations(auditor) == {("ml-prod/p1", "privileged-container", "prod")}


def test_namespace_label_change_asks_for_a_full_pass(auditor: Auditor) -> None:
    auditor.upsert(pod("team-x", "p", latest=True))
    auditor.run_pass()
    assert {env for _, _, env in violations(auditor)} == {"dev"}  # the default environment
    auditor.set_namespace("team-x", {"airlock.dev/environment": "prod"})
    result = auditor.run_pass()
    assert result.full
    assert {env for _, _, env in violations(auditor)} == {"prod"}


def test_invalid_policy_keeps_the_last_valid_one(auditor: Auditor) -> None:
    bad = copy.deepcopy(POLICY)
    bad["spec"]["environments"][0]["mode"] = "sometimes"
    assert not auditor.set_policy(bad)
    assert auditor.policy.environments[0].mode is Action.WARN
    other = copy.deepcopy(POLICY)
    other["metadata"]["name"] = "other"
    other["spec"]["rules"] = {"image-tag-latest": "off"}
    assert not auditor.set_policy(other)  # not the followed policy
    # a status write (same spec, new resourceVersion) is not a change
    same = copy.deepcopy(POLICY)
    same["status"] = {"lastAudit": {"workloads": 1}}
    assert not auditor.set_policy(same)


# --- owner dedup -------------------------------------------------------------------------------


def test_deployment_reported_once_not_per_replicaset_and_pod(auditor: Auditor) -> None:
    bad = pod(name="template", latest=True)
    dep = with_uid(deployment(bad, name="serve"))
    rs = owned(with_uid(deployment(bad, name="serve-7d9f")), dep)
    rs["kind"] = "ReplicaSet"
    pods = [owned(pod(name=f"serve-7d9f-{i}", latest=True), rs) for i in range(3)]
    for obj in (*pods, rs, dep):  # children first, as a watch may deliver them
        auditor.upsert(obj)
    auditor.run_pass()
    assert {name for name, _, _ in violations(auditor)} == {"ml-prod/serve"}
    assert auditor.summary().total == 1

    # the Deployment goes: the ReplicaSet is now the top owner
    auditor.delete(dep["metadata"]["uid"])
    auditor.run_pass()
    assert {name for name, _, _ in violations(auditor)} == {"ml-prod/serve-7d9f"}


@pytest.mark.parametrize(
    ("owner_kind", "api_version", "child_kind"),
    [("CronJob", "batch/v1", "Job"), ("PyTorchJob", "kubeflow.org/v1", "Pod")],
)
def test_top_owner_carries_the_findings(
    auditor: Auditor, owner_kind: str, api_version: str, child_kind: str
) -> None:
    bad = pod(name="x", privileged=True)
    owner = {
        "apiVersion": api_version,
        "kind": owner_kind,
        "metadata": {
            "name": "train",
            "namespace": "ml-prod",
            "uid": str(uuid.uuid4()),
            "labels": {"airlock.dev/owner": "ml"},
        },
        "spec": (
            {"jobTemplate": {"spec": {"template": {"spec": bad["spec"]}}}}
            if owner_kind == "CronJob"
            else {"pytorchReplicaSpecs": {"Master": {"template": {"spec": bad["spec"]}}}}
        ),
    }
    child = owned(pod(name="train-1", privileged=True), owner)
    if child_kind == "Job":
        child = owned(with_uid(deployment(bad, name="train-1")), owner)
        child.update(apiVersion="batch/v1", kind="Job")
    auditor.upsert(child)
    auditor.upsert(owner)
    auditor.run_pass()
    assert violations(auditor) == {("ml-prod/train", "privileged-container", "prod")}


def test_orphan_is_judged_when_its_owner_is_not_audited(auditor: Auditor) -> None:
    p = pod(name="orphan", latest=True)
    p["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "x/v1",
            "kind": "Thing",
            "name": "t",
            "uid": "not-indexed",
            "controller": True,
        }
    ]
    auditor.upsert(p)
    auditor.run_pass()
    assert ("ml-prod/orphan", "image-tag-latest", "prod") in violations(auditor)


# --- remediation, exceptions, counters ---------------------------------------------------------


def test_fixing_a_violation_observes_remediation_time(auditor: Auditor, clock: Clock) -> None:
    before = (
        sample(
            "airlock_remediation_duration_seconds_count",
            rule="privileged-container",
            environment="prod",
        )
        or 0.0
    )
    before_sum = (
        sample(
            "airlock_remediation_duration_seconds_sum",
            rule="privileged-container",
            environment="prod",
        )
        or 0.0
    )
    bad = pod(name="fixme", privileged=True)
    auditor.upsert(bad)
    auditor.run_pass()
    clock.advance(3600)
    auditor.run_pass(full=True)  # still failing: no observation, first-seen kept
    (audited,) = auditor.audited()
    assert audited.violations[0].since == T0.timestamp()
    clock.advance(1800)
    fixed = copy.deepcopy(bad)
    del fixed["spec"]["containers"][0]["securityContext"]["privileged"]
    auditor.upsert(fixed)
    auditor.run_pass()
    assert violations(auditor) == set()
    after = sample(
        "airlock_remediation_duration_seconds_count",
        rule="privileged-container",
        environment="prod",
    )
    after_sum = sample(
        "airlock_remediation_duration_seconds_sum", rule="privileged-container", environment="prod"
    )
    assert after == before + 1
    assert after_sum == pytest.approx(before_sum + 5400)


def test_deleted_or_unchecked_violations_are_not_remediations(
    auditor: Auditor, clock: Clock
) -> None:
    def count() -> float:
        return (
            sample(
                "airlock_remediation_duration_seconds_count",
                rule="image-tag-latest",
                environment="prod",
            )
            or 0.0
        )

    start = count()
    gone = pod(name="gone", latest=True)
    kept = pod(name="kept", latest=True)
    auditor.upsert(gone)
    auditor.upsert(kept)
    auditor.run_pass()
    clock.advance(60)
    auditor.delete(gone["metadata"]["uid"])
    auditor.run_pass()
    assert count() == start
    off = copy.deepcopy(POLICY)
    off["spec"]["rules"] = {"image-tag-latest": "off"}
    assert auditor.set_policy(off)
    auditor.run_pass()
    assert "image-tag-latest" not in {rule for _, rule, _ in violations(auditor)}
    assert count() == start


def exception(ns: str, rules: list[str], expires: datetime, names: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {
            "name": "waiver",
            "namespace": ns,
            "creationTimestamp": (T0 - timedelta(days=1)).isoformat(),
            "annotations": {
                "airlock.dev/created-by": "alice",
                "airlock.dev/approved-by": "bob",
            },
        },
        "spec": {
            "rules": rules,
            "match": {"names": names},
            "expires": expires.isoformat(),
            "owner": "ml-team",
            "reason": "vendor image pinned by tag until the next release",
        },
    }


def test_exception_waives_until_it_expires(auditor: Auditor, clock: Clock) -> None:
    auditor.upsert(pod(name="waived", latest=True))
    expires = T0 + timedelta(hours=2)
    auditor.set_exception(exception("ml-prod", ["image-tag-latest"], expires, ["waived"]))
    auditor.run_pass()
    (audited,) = auditor.audited()
    assert [r.rule for r in audited.exemptions] == ["image-tag-latest"]
    assert audited.exemptions[0].exempted_by == "ml-prod/waiver"
    assert ("ml-prod/waived", "image-tag-latest", "prod") not in violations(auditor)
    summary = auditor.summary()
    assert ("image-tag-latest", "prod", "ml-prod", "medium") not in summary.violations
    assert auditor.next_expiry() == expires

    clock.now = expires + timedelta(seconds=1)
    auditor.request_full_pass()
    auditor.run_pass()
    assert ("ml-prod/waived", "image-tag-latest", "prod") in violations(auditor)
    assert auditor.next_expiry() is None


def test_exception_change_reevaluates_its_namespace_only(auditor: Auditor) -> None:
    auditor.upsert(pod("ml-prod", "a", latest=True))
    auditor.upsert(pod("ml-dev", "b", latest=True))
    auditor.run_pass()
    auditor.set_exception(exception("ml-prod", ["image-tag-latest"], T0 + timedelta(days=1), ["*"]))
    result = auditor.run_pass()
    assert not result.full
    assert result.evaluated == 1


def test_rule_results_count_new_violations_once(auditor: Auditor, clock: Clock) -> None:
    def fails() -> float:
        return (
            sample(
                "airlock_rule_results_total",
                rule="privileged-container",
                environment="prod",
                result="fail",
                source="audit",
            )
            or 0.0
        )

    start = fails()
    auditor.upsert(pod(name="a", privileged=True))
    auditor.upsert(pod(name="b", privileged=True))
    auditor.run_pass()
    assert fails() == start + 2
    for _ in range(3):
        clock.advance(300)
        auditor.run_pass(full=True)
    assert fails() == start + 2


# --- ConfigMaps and isolation ------------------------------------------------------------------


def test_credential_configmap_flags_its_readers_until_fixed(auditor: Auditor, clock: Clock) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "ml-prod", "uid": str(uuid.uuid4())},
        "data": {"db.password": "Xk9#mQ2$vL7pR4wZ", "LOG_LEVEL": "debug"},
    }
    reader = pod(name="reader")
    reader["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "app"}}]
    auditor.upsert(cm)
    auditor.upsert(reader)
    auditor.run_pass()
    assert violations(auditor) == {
        ("ml-prod/app", "plaintext-secret-configmap", "prod"),
        ("ml-prod/reader", "plaintext-secret-configmap", "prod"),
    }
    # a ConfigMap is not a workload: the compliance ratio counts the pod only
    assert auditor.summary().workloads["prod"] == (0, 1)
    clock.advance(120)
    fixed = copy.deepcopy(cm)
    fixed["data"] = {"LOG_LEVEL": "debug"}
    auditor.upsert(fixed)
    result = auditor.run_pass()
    assert not result.full
    assert violations(auditor) == set()


def test_credential_in_configmap_binary_data_is_audited(auditor: Auditor) -> None:
    key_file = "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "b3BlbnNzaC1rZXktdjEAAAAA" * 6 + "\n"
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "keys", "namespace": "ml-prod", "uid": str(uuid.uuid4())},
        "binaryData": {"id_ed25519": base64.b64encode(key_file.encode()).decode()},
    }
    auditor.upsert(cm)
    auditor.run_pass()
    assert violations(auditor) == {("ml-prod/keys", "plaintext-secret-configmap", "prod")}


def test_network_isolation_follows_the_watched_policies(auditor: Auditor) -> None:
    auditor.upsert(pod(name="p"))
    auditor.run_pass()
    assert violations(auditor) == set()  # unknown until NetworkPolicies are listed
    auditor.mark_isolation_known()
    auditor.run_pass()
    assert violations(auditor) == {("ml-prod/p", "network-isolation-missing", "prod")}
    auditor.set_isolated("ml-prod", True)
    result = auditor.run_pass()
    assert not result.full
    assert violations(auditor) == set()


# --- metrics -----------------------------------------------------------------------------------


def scrape() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The registry as Prometheus would read it: name -> {sorted labels: value}."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    text = metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_scrape_shows_the_known_state(auditor: Auditor, clock: Clock) -> None:
    auditor.upsert(pod("ml-prod", "bad", privileged=True))
    auditor.upsert(pod("ml-prod", "good"))
    auditor.upsert(pod("ml-dev", "ok"))
    auditor.upsert(pod("ml-dev", "waived", latest=True))
    auditor.set_exception(
        exception("ml-dev", ["image-tag-latest", "image-digest-missing"], T0 + timedelta(1), ["*"])
    )
    result = auditor.run_pass()
    publish_metrics(result.summary, result=result)
    got = scrape()
    assert got["airlock_audit_violations"] == {
        (
            ("environment", "prod"),
            ("namespace", "ml-prod"),
            ("rule", "privileged-container"),
            ("severity", "critical"),
        ): 1.0
    }
    assert got["airlock_audit_workloads"] == {
        (("compliant", "true"), ("environment", "prod")): 1.0,
        (("compliant", "false"), ("environment", "prod")): 1.0,
        (("compliant", "true"), ("environment", "dev")): 2.0,
        (("compliant", "false"), ("environment", "dev")): 0.0,
    }
    assert got["airlock_compliance_ratio"] == {
        (("environment", "dev"),): 1.0,
        (("environment", "prod"),): 0.5,
    }
    assert got["airlock_audit_last_success_timestamp_seconds"] == {(): T0.timestamp()}
    assert got["airlock_audit_duration_seconds"][()] == pytest.approx(result.duration)
    for labels in got["airlock_audit_violations"]:
        values = dict(labels).values()
        assert not any(v in ("bad", "good", "ok", "waived") for v in values)  # no pod names


def test_namespace_label_can_be_dropped(auditor: Auditor) -> None:
    auditor.set_namespace("ml-prod-2", {"airlock.dev/environment": "prod"})
    auditor.upsert(pod("ml-prod", "a", privileged=True))
    auditor.upsert(pod("ml-prod-2", "b", privileged=True))
    result = auditor.run_pass()
    publish_metrics(result.summary, namespace_label=False, result=result)
    text = metrics.exposition().decode()
    assert "ml-prod" not in text
    assert (
        'airlock_audit_violations{environment="prod",namespace="",rule="privileged-container",'
        'severity="critical"} 2.0' in text
    )


# --- the task ----------------------------------------------------------------------------------


def test_task_waits_for_sync_then_passes_on_change_and_on_interval() -> None:
    """The loop behind the kopf handlers, against an in-memory API, in a thread with a deadline
    (a loop that never yields would starve its own event loop, so nothing inside could time it
    out)."""
    api = FakeApi()
    compliance = Compliance(
        ComplianceSettings(audit_interval=1.0, debounce=0.01),
        kube=Kube(custom=api),
        clock=lambda: T0,
    )
    seen: dict[str, Any] = {}

    async def until(predicate: Any, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(compliance.run(stop))
        compliance.auditor.set_policy(POLICY)
        compliance.auditor.set_namespace("ml-prod", {"airlock.dev/environment": "prod"})
        await asyncio.sleep(0.05)  # the task runs, waiting for the sync
        compliance.auditor.upsert(pod(name="bad", privileged=True))
        compliance.poke()  # handlers poke during the initial listing, before the sync
        await asyncio.sleep(0.2)
        seen["before_sync"] = compliance.passes
        compliance.mark_synced()
        await until(lambda: compliance.passes >= 1)
        seen["first"] = compliance.last_pass
        await until(lambda: compliance.passes >= 2)  # full passes keep coming every interval
        assert compliance.last_pass is not None
        assert compliance.last_pass.full
        # right after a full pass, the next one is an interval away: a change goes alone
        compliance.auditor.upsert(pod(name="worse", latest=True))
        compliance.poke()  # what the watch handlers do after feeding the auditor
        await until(lambda: compliance.last_pass is not None and not compliance.last_pass.full)
        seen["incremental"] = compliance.last_pass
        stop.set()
        await asyncio.wait_for(task, 5)

    runner = threading.Thread(target=asyncio.run, args=(scenario(),), daemon=True)
    runner.start()
    runner.join(20)
    assert not runner.is_alive(), "the audit task starved its event loop"
    assert seen["before_sync"] == 0
    assert seen["first"].full
    assert seen["incremental"].evaluated == 1
    report = api.objects[("policyreports", "ml-prod", "airlock")]
    assert {(r["resources"][0]["name"], r["rule"]) for r in report["results"]} >= {
        ("bad", "privileged-container"),
        ("worse", "image-tag-latest"),
    }
    assert api.status_patches[0]["status"]["lastAudit"]["workloads"] == 1
    # isolation is audit: no NetworkPolicy was written
    assert not [k for k in api.objects if k[0] == "networkpolicies"]
