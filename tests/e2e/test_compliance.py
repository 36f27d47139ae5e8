"""The compliance side against a real API server: background audit, metrics, PolicyReports,
exception expiry, environment isolation and its repair.

The compliance handlers run in a kopf operator of their own (``register_compliance`` on a fresh
registry) in a background thread with its own event loop, with a 2 s audit interval. To share
the cluster with other modules safely, the operator watches only this module's namespaces (a
kopf namespace pattern) and the policy uses an environment label key of its own, so isolation
NetworkPolicies can only appear here. Every wait is bounded; everything started is stopped and
everything created is deleted.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import kopf
import pytest
from airlock import metrics
from airlock.controller.compliance import Compliance, ComplianceSettings, register_compliance
from airlock.controller.kube import register_login
from e2e_rig import install_crds
from e2e_rig import poll as rig_poll
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.e2e

GROUP, VERSION = "airlock.dev", "v1alpha1"
TAG = uuid.uuid4().hex[:6]
PREFIX = f"comp-{TAG}"
LABEL = f"comp-{TAG}.airlock.dev/environment"
POLICY = f"e2e-comp-{TAG}"
INTERVAL = 2.0
WAIT = 30.0
TOKEN = "hf_" + "Zq8Rt3Wm6Yp1Ks4Vn7Bx2Cd5Fg9Hj0Lq3Tw"
DIGEST = "sha256:" + "ab" * 32
NP_NAME = "airlock-environment-isolation"

T = TypeVar("T")


def poll(fetch: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    return rig_poll(fetch, what, timeout)


def poll_results(
    scene: Scene,
    namespace: str,
    expected: set[tuple[str, str, str, str]],
    what: str,
    timeout: float = WAIT,
) -> None:
    """Poll the results of ``namespace``'s report until they are ``expected``; on a timeout,
    say what was last seen and how far the audit got (an intermittent CI failure here once
    left nothing to go by)."""
    seen: list[set[tuple[str, str, str, str]]] = []

    def fetch() -> bool | None:
        got = scene.results(namespace)
        seen[:] = [got]
        return True if got == expected else None

    try:
        poll(fetch, what, timeout)
    except pytest.fail.Exception:
        compliance = scene.operator.compliance
        last = compliance.last_pass
        pytest.fail(
            f"timed out after {timeout:.0f} s waiting for {what}: last seen "
            f"{sorted(seen[0]) if seen else 'nothing'}; audit passes {compliance.passes}, last "
            f"pass full={last.full if last else None} at {last.summary.time if last else None}; "
            f"report writer available={compliance.reports.available}"
        )


def sample(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


# --- cluster setup -------------------------------------------------------------------------------


def policy_spec(isolation: str) -> dict[str, Any]:
    return {
        "environmentLabel": LABEL,
        "defaultEnvironment": "dev",
        "environments": [
            {"name": "dev", "mode": "audit", "allowedRegistries": ["registry.corp.example/"]},
            {"name": "prod", "mode": "enforce", "allowedRegistries": ["registry.corp.example/"]},
        ],
        "rules": {"owner-label-missing": "off", "network-isolation-missing": "off"},
        "isolation": isolation,
        "isolationAllowedNamespaces": ["monitoring"],
    }


def set_policy(custom: client.CustomObjectsApi, isolation: str) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BaselinePolicy",
        "metadata": {"name": POLICY},
        "spec": policy_spec(isolation),
    }
    try:
        custom.create_cluster_custom_object(GROUP, VERSION, "baselinepolicies", body)
    except ApiException as err:
        if err.status != 409:
            raise
        custom.patch_cluster_custom_object(
            GROUP, VERSION, "baselinepolicies", POLICY, {"spec": {"isolation": isolation}}
        )


def container(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "main",
        "image": image,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            **extra.pop("securityContext", {}),
        },
        **extra,
    }


def pod_spec(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [c],
    }


def deployment(name: str, c: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec(c)},
        },
    }


# --- the operator --------------------------------------------------------------------------------


@dataclass
class Operator:
    """A kopf operator with the compliance handlers, in a thread with its own loop."""

    compliance: Compliance
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop | None = None
    stop_flag: asyncio.Event | None = None
    errors: list[BaseException] = field(default_factory=list)

    def stop(self) -> None:
        if self.loop is not None and self.stop_flag is not None:
            self.loop.call_soon_threadsafe(self.stop_flag.set)
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the operator did not stop within 30 s"


def start_operator(kubeconfig: Path) -> Operator:
    registry = kopf.OperatorRegistry()
    register_login(registry, str(kubeconfig))
    compliance = register_compliance(
        registry,
        ComplianceSettings(
            policy_name=POLICY,
            kubeconfig=str(kubeconfig),
            audit_interval=INTERVAL,
            debounce=0.2,
        ),
    )
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.peering.standalone = True
    settings.scanning.disabled = False
    settings.watching.server_timeout = 60
    ready = threading.Event()
    op = Operator(compliance, threading.Thread(name="compliance-operator", daemon=True))

    def main() -> None:
        loop = asyncio.new_event_loop()
        op.loop = loop
        op.stop_flag = asyncio.Event()
        ready.set()
        try:
            loop.run_until_complete(
                kopf.operator(
                    registry=registry,
                    settings=settings,
                    standalone=True,
                    namespaces=[f"{PREFIX}-*"],
                    stop_flag=op.stop_flag,
                )
            )
        except BaseException as exc:  # surfaced by the fixture
            op.errors.append(exc)
        finally:
            loop.close()

    op.thread = threading.Thread(target=main, name="compliance-operator", daemon=True)
    op.thread.start()
    assert ready.wait(10)
    return op


@dataclass
class Scene:
    core: client.CoreV1Api
    apps: client.AppsV1Api
    custom: client.CustomObjectsApi
    prod: str
    dev: str
    operator: Operator
    started: float

    def report(self, namespace: str) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(
                "wgpolicyk8s.io", "v1alpha2", namespace, "policyreports", "airlock"
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return obj if isinstance(obj, dict) else None

    def results(self, namespace: str) -> set[tuple[str, str, str, str]]:
        """(kind, name, rule, result) of every result of the namespace's report."""
        report = self.report(namespace) or {}
        return {
            (r["resources"][0]["kind"], r["resources"][0]["name"], r["rule"], r["result"])
            for r in report.get("results", [])
        }

    def network_policy(self, namespace: str) -> dict[str, Any] | None:
        try:
            obj = self.custom.get_namespaced_custom_object(
                "networking.k8s.io", "v1", namespace, "networkpolicies", NP_NAME
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return obj if isinstance(obj, dict) else None


@pytest.fixture(scope="module")
def scene(
    api_client: client.ApiClient, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    install_crds(api_client)
    core = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    created: list[str] = []
    operator: Operator | None = None
    try:
        set_policy(custom, "audit")
        for env in ("prod", "dev"):
            name = f"{PREFIX}-{env}"
            core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={LABEL: env}))
            )
            created.append(name)

            def has_sa(ns: str = name) -> bool | None:
                try:
                    core.read_namespaced_service_account("default", ns)
                except ApiException as err:
                    if err.status == 404:
                        return None
                    raise
                return True

            poll(has_sa, f"the default ServiceAccount of {name}", 60)
        prod, dev = created

        # Workloads that exist before Airlock looks (no webhook in this module).
        good = f"registry.corp.example/model:1.0@{DIGEST}"
        apps.create_namespaced_deployment(
            prod,
            deployment(
                "leaky",
                container(
                    "registry.corp.example/model:latest",
                    env=[{"name": "HF_TOKEN", "value": TOKEN}],
                ),
            ),
        )
        apps.create_namespaced_deployment(
            prod,
            deployment(
                "fixme",
                container(
                    good, securityContext={"privileged": True, "allowPrivilegeEscalation": True}
                ),
            ),
        )
        apps.create_namespaced_deployment(prod, deployment("clean", container(good)))
        core.create_namespaced_pod(
            dev,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "waived"},
                "spec": pod_spec(container("registry.corp.example/tool:latest")),
            },
        )
        expires = datetime.now(UTC) + timedelta(seconds=40)
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            dev,
            "policyexceptions",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "PolicyException",
                "metadata": {
                    "name": "tool-by-tag",
                    # no webhook here to stamp these; the audit reads them as the webhook wrote
                    "annotations": {
                        "airlock.dev/created-by": "alice",
                        "airlock.dev/approved-by": "bob",
                    },
                },
                "spec": {
                    "rules": ["image-tag-latest", "image-digest-missing"],
                    "match": {"names": ["waived"]},
                    "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "owner": "tools-team",
                    "reason": "vendor tool only published by tag until next week",
                },
            },
        )
        # the ReplicaSets and Pods of the Deployments exist (kube-controller-manager runs)
        poll(
            lambda: True if len(core.list_namespaced_pod(prod).items) >= 6 else None,
            "the Deployments' Pods",
        )

        operator = start_operator(kubeconfig)
        yield Scene(core, apps, custom, prod, dev, operator, time.monotonic())
    finally:
        if operator is not None:
            operator.stop()
            assert not operator.errors, operator.errors
        for name in created:
            try:
                core.delete_namespace(name)
            except ApiException as err:
                if err.status != 404:
                    raise
        try:
            custom.delete_cluster_custom_object(GROUP, VERSION, "baselinepolicies", POLICY)
        except ApiException as err:
            if err.status != 404:
                raise


# --- the tests (in order: they share the scene) -------------------------------------------------


def test_existing_violations_show_in_metrics_and_reports(scene: Scene) -> None:
    poll(
        lambda: True if scene.operator.compliance.passes >= 1 else None,
        "the first audit pass",
    )
    poll(
        lambda: sample(
            "airlock_audit_violations",
            rule="plaintext-secret-env",
            environment="prod",
            namespace=scene.prod,
            severity="critical",
        ),
        "the plaintext secret in the metrics",
        timeout=INTERVAL + 10,
    )
    # one violation per workload: the Deployment, not its ReplicaSet and two Pods
    assert (
        sample(
            "airlock_audit_violations",
            rule="plaintext-secret-env",
            environment="prod",
            namespace=scene.prod,
            severity="critical",
        )
        == 1.0
    )
    assert (
        sample(
            "airlock_audit_violations",
            rule="privileged-container",
            environment="prod",
            namespace=scene.prod,
            severity="critical",
        )
        == 1.0
    )
    assert sample("airlock_audit_workloads", environment="prod", compliant="true") == 1.0
    assert sample("airlock_audit_workloads", environment="prod", compliant="false") == 2.0
    assert sample("airlock_compliance_ratio", environment="prod") == pytest.approx(1 / 3)
    stamp = sample("airlock_audit_last_success_timestamp_seconds")
    assert stamp is not None
    assert abs(stamp - time.time()) < 60

    expected_prod = {
        ("Deployment", "leaky", "plaintext-secret-env", "fail"),
        ("Deployment", "leaky", "image-tag-latest", "fail"),
        ("Deployment", "leaky", "image-digest-missing", "fail"),
        ("Deployment", "fixme", "privileged-container", "fail"),
        ("Deployment", "fixme", "privilege-escalation", "fail"),
    }
    poll_results(scene, scene.prod, expected_prod, f"the PolicyReport of {scene.prod}")
    report = scene.report(scene.prod)
    assert report is not None
    assert report["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "airlock"}
    assert report["summary"]["fail"] == 5
    assert {r["policy"] for r in report["results"]} == {POLICY}
    assert {r["source"] for r in report["results"]} == {"airlock"}
    assert TOKEN not in json.dumps(report)
    assert TOKEN[3:15] not in json.dumps(report)

    dev_expected = {
        ("Pod", "waived", "image-tag-latest", "skip"),
        ("Pod", "waived", "image-digest-missing", "skip"),
    }
    poll_results(scene, scene.dev, dev_expected, f"the PolicyReport of {scene.dev} with the waiver")
    dev_report = scene.report(scene.dev)
    assert dev_report is not None
    assert {r["properties"]["exception"] for r in dev_report["results"]} == {
        f"{scene.dev}/tool-by-tag"
    }

    policy = scene.custom.get_cluster_custom_object(GROUP, VERSION, "baselinepolicies", POLICY)
    last = policy["status"]["lastAudit"]
    assert last["workloads"] == 4
    assert last["violations"]["critical"] == 2
    assert last["compliance"]["prod"] == pytest.approx(1 / 3, abs=1e-3)


def test_fixing_a_workload_records_remediation(scene: Scene) -> None:
    def remediated() -> float:
        return (
            sample(
                "airlock_remediation_duration_seconds_count",
                rule="privileged-container",
                environment="prod",
            )
            or 0.0
        )

    before = remediated()
    # a strategic merge patch: privileged must be said false, not just left out
    fixed = deployment(
        "fixme",
        container(
            f"registry.corp.example/model:1.0@{DIGEST}", securityContext={"privileged": False}
        ),
    )
    scene.apps.patch_namespaced_deployment(
        "fixme", scene.prod, {"spec": {"template": fixed["spec"]["template"]}}
    )
    poll(
        lambda: (
            True
            if ("Deployment", "fixme", "privileged-container", "fail")
            not in scene.results(scene.prod)
            else None
        ),
        "the fixed Deployment to leave the report",
    )
    assert remediated() == before + 1
    assert (
        sample(
            "airlock_audit_violations",
            rule="privileged-container",
            environment="prod",
            namespace=scene.prod,
            severity="critical",
        )
        is None
    )
    assert sample("airlock_audit_workloads", environment="prod", compliant="true") == 2.0


def test_an_expired_exception_turns_its_workload_back_into_a_violation(scene: Scene) -> None:
    expected = {
        ("Pod", "waived", "image-tag-latest", "fail"),
        ("Pod", "waived", "image-digest-missing", "fail"),
    }
    poll_results(scene, scene.dev, expected, "the waiver to expire", timeout=60)
    assert (
        sample(
            "airlock_audit_violations",
            rule="image-tag-latest",
            environment="dev",
            namespace=scene.dev,
            severity="medium",
        )
        == 1.0
    )


def test_isolation_creates_repairs_and_removes_network_policies(scene: Scene) -> None:
    set_policy(scene.custom, "enforce")
    for ns, env in ((scene.prod, "prod"), (scene.dev, "dev")):
        np = poll(lambda ns=ns: scene.network_policy(ns), f"the NetworkPolicy of {ns}")
        assert np["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "airlock"
        assert np["spec"]["podSelector"] == {}
        assert np["spec"]["policyTypes"] == ["Ingress"]
        assert np["spec"]["ingress"] == [
            {
                "from": [
                    {"namespaceSelector": {"matchLabels": {LABEL: env}}},
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/metadata.name",
                                    "operator": "In",
                                    "values": ["monitoring"],
                                }
                            ]
                        }
                    },
                ]
            }
        ]
    original = copy.deepcopy(scene.network_policy(scene.prod))
    assert original is not None

    # a hand edit that narrows the policy to some pods and opens ingress to everyone
    scene.custom.patch_namespaced_custom_object(
        "networking.k8s.io",
        "v1",
        scene.prod,
        "networkpolicies",
        NP_NAME,
        {"spec": {"podSelector": {"matchLabels": {"app": "one"}}, "ingress": [{}]}},
    )
    poll(
        lambda: (
            True
            if (np := scene.network_policy(scene.prod)) is not None
            and np["spec"] == original["spec"]
            and np["metadata"]["resourceVersion"] != original["metadata"]["resourceVersion"]
            else None
        ),
        "the hand edit to be repaired",
    )

    set_policy(scene.custom, "off")
    for ns in (scene.prod, scene.dev):
        poll(
            lambda ns=ns: True if scene.network_policy(ns) is None else None,
            f"the NetworkPolicy of {ns} to be removed",
        )
