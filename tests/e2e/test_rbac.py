"""RBAC as environment segregation against a real API server: ``airlock webhook`` denies a
RoleBinding that lets a dev ServiceAccount act in a prod namespace, the controller's audit
reports the one that already existed in its PolicyReport, and a dev Pod running as that account
is told why.

One webhook and one controller (subprocesses, as ``make demo`` runs them), a BaselinePolicy and
webhook configurations of this module's own names, and an environment label key of its own, so
no other module's namespace is judged anywhere but in the audit-only default environment. Every
wait is bounded; everything started is stopped and everything created is deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from airlock.rules import RULE_INFO
from airlock_procs import Airlock, AirlockStartError
from e2e_rig import E2ECluster, WebhookCA, install_crds, message_of, poll
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.e2e


GROUP, VERSION = "airlock.dev", "v1alpha1"
TAG = uuid.uuid4().hex[:6]
LABEL = f"rbac-{TAG}.airlock.dev/environment"
RULE = "cross-env-rbac-binding"
RBAC_WEBHOOK = "rbac.validate.airlock.dev"
WAIT_S = 60.0

POLICY: dict[str, Any] = {
    "environmentLabel": LABEL,
    # whatever else the cluster holds is judged here, silently
    "defaultEnvironment": "elsewhere",
    "environments": [
        {"name": "dev", "mode": "warn"},
        {"name": "prod", "mode": "enforce"},
        {"name": "elsewhere", "mode": "audit"},
    ],
}


def rolebinding(ns: str, name: str, sa_namespace: str, sa: str = "trainer") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": sa_namespace}],
    }


@dataclass
class Scene:
    airlock: Airlock
    core: client.CoreV1Api
    rbac: client.RbacAuthorizationV1Api
    custom: client.CustomObjectsApi
    dev: str
    prod: str
    existing: str  # the cross-environment RoleBinding that was there before Airlock

    def create_binding(self, body: dict[str, Any], *, dry_run: bool = False) -> None:
        kwargs = {"dry_run": "All"} if dry_run else {}
        self.rbac.create_namespaced_role_binding(body["metadata"]["namespace"], body, **kwargs)

    def denial(self, body: dict[str, Any], *, dry_run: bool = True) -> ApiException | None:
        try:
            self.create_binding(body, dry_run=dry_run)
        except ApiException as exc:
            return exc
        return None

    def report_results(self, namespace: str) -> set[tuple[str, str, str, str]]:
        try:
            report = self.custom.get_namespaced_custom_object(
                "wgpolicyk8s.io", "v1alpha2", namespace, "policyreports", "airlock"
            )
        except ApiException as exc:
            if exc.status == 404:
                return set()
            raise
        return {
            (r["resources"][0]["kind"], r["resources"][0]["name"], r["rule"], r["result"])
            for r in report.get("results", [])
        }


@pytest.fixture(scope="module")
def scene(
    e2e_cluster: E2ECluster, webhook_ca: WebhookCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    api = e2e_cluster.api_client
    install_crds(api)
    core = client.CoreV1Api(api)
    rbac = client.RbacAuthorizationV1Api(api)
    custom = client.CustomObjectsApi(api)
    work = tmp_path_factory.mktemp("airlock-rbac")
    cert, key = webhook_ca.issue_serving_cert(work / "tls")
    airlock = Airlock(
        api=api,
        kubeconfig=e2e_cluster.kubeconfig,
        ca_cert=webhook_ca.cert,
        serving_cert=cert,
        serving_key=key,
        workdir=work / "run",
        policy_name=f"e2e-rbac-{TAG}",
        tag=f"rbac-{TAG}",
    )
    created: list[str] = []
    try:
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "baselinepolicies",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BaselinePolicy",
                "metadata": {"name": airlock.policy_name},
                "spec": POLICY,
            },
        )
        for env in ("dev", "prod"):
            name = f"rbac-{TAG}-{env}"
            core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={LABEL: env}))
            )
            created.append(name)
        dev, prod = created
        core.create_namespaced_service_account(
            dev, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="trainer"))
        )
        # Bound across environments before Airlock looked: the audit must find it.
        existing = "dev-reads-prod"
        rbac.create_namespaced_role_binding(prod, rolebinding(prod, existing, dev))
        the_scene = Scene(airlock, core, rbac, custom, dev, prod, existing)
        try:
            airlock.start()
            airlock.register()
            # in force once the API server calls the RBAC webhook and it knows the namespaces
            probe = rolebinding(prod, "probe", dev)

            def denied() -> bool:
                exc = the_scene.denial(probe)
                return exc is not None and f"[{RULE}]" in message_of(exc)

            airlock.wait_until(denied, "the RBAC webhook to deny a cross-environment binding")
        except (AirlockStartError, TimeoutError):
            print(airlock.tails())
            raise
        yield the_scene
    finally:
        try:
            airlock.stop()
        finally:
            for name in created:
                try:
                    core.delete_namespace(name)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
            try:
                custom.delete_cluster_custom_object(
                    GROUP, VERSION, "baselinepolicies", airlock.policy_name
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise


def test_cross_environment_rolebinding_is_denied_in_an_enforcing_environment(
    scene: Scene,
) -> None:
    body = rolebinding(scene.prod, "dev-writes-prod", scene.dev)
    exc = scene.denial(body, dry_run=False)
    assert exc is not None, "a dev ServiceAccount was bound in prod"
    assert exc.status == 403
    message = message_of(exc)
    assert f'admission webhook "{RBAC_WEBHOOK}" denied the request' in message
    assert (
        f"airlock denied RoleBinding {scene.prod}/dev-writes-prod (environment prod): 1 violation"
        in message
    )
    assert (
        f"[{RULE}] subjects[0]: ServiceAccount {scene.dev}/trainer of environment dev gets "
        f"access in namespace {scene.prod} of environment prod — fix: {RULE_INFO[RULE].fix}"
    ) in message
    with pytest.raises(ApiException) as missing:
        scene.rbac.read_namespaced_role_binding("dev-writes-prod", scene.prod)
    assert missing.value.status == 404
    # the own environment's account is bound without a word
    scene.create_binding(rolebinding(scene.prod, "prod-reads-prod", scene.prod, "default"))
    # dev only warns: a prod account bound in dev is admitted, with the finding as a warning
    assert scene.denial(rolebinding(scene.dev, "prod-in-dev", scene.prod, "default")) is None


def test_the_audit_reports_the_binding_that_already_existed(scene: Scene) -> None:
    expected = ("RoleBinding", scene.existing, RULE, "fail")
    poll(
        lambda: True if expected in scene.report_results(scene.prod) else None,
        f"the PolicyReport of {scene.prod} to report {scene.existing}",
        WAIT_S,
    )
    results = scene.report_results(scene.prod)
    # the compliant binding made in the previous test is not a failure
    assert {r for r in results if r[0] == "RoleBinding"} == {expected}


def test_a_dev_pod_running_as_the_bound_account_is_told(scene: Scene) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "trainer", "namespace": scene.dev},
        "spec": {
            "serviceAccountName": "trainer",
            "automountServiceAccountToken": False,
            "containers": [{"name": "main", "image": "registry.corp.example/train:1.0"}],
        },
    }
    _, _, headers = scene.core.create_namespaced_pod_with_http_info(scene.dev, pod, dry_run="All")
    warnings = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    ours = [w for w in warnings if f"[{RULE}] spec.serviceAccountName" in w]
    assert len(ours) == 1, warnings
    assert (
        f"runs as ServiceAccount {scene.dev}/trainer, which RoleBinding "
        f"{scene.prod}/{scene.existing} binds into environment prod (own: dev)"
    ) in ours[0]
