"""The Helm chart against a real API server: server-side validation of every object, install,
certificates issued with the controller's own permissions, RBAC, upgrade, uninstall.

No kubelet runs, so the Deployments never become ready and nothing here waits for them (no
`helm install --wait`). That is also the case where a pre-delete hook Job would hang uninstall
until its deadline and then fail it, leaving the fail-closed Pod webhook behind: the chart has
no hooks, and a plain `helm uninstall` here must remove every webhook configuration at once.
(tests/node/ runs the same chart on a real node, with Airlock's own image.)

Cluster-scoped names are per release and the webhooks only see namespaces labelled for this
module's release, so the install cannot disturb other tests sharing the cluster.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock.controller.certs import (
    CertRotator,
    CertSettings,
    read_state,
    remove_webhook_configurations,
    serving_dns_names,
)
from cryptography import x509
from e2e_rig import REPO_ROOT, E2ECluster
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.e2e

CHART = REPO_ROOT / "charts" / "airlock"
CRDS = REPO_ROOT / "manifests" / "crds"

# Minimal stand-ins for the CRDs of optional integrations (cert-manager, Prometheus Operator),
# so the objects the chart renders for them can be validated by the API server too. Created only
# when the real ones are absent, removed afterwards.
STUB_CRDS = (
    ("cert-manager.io", "Issuer", "issuers"),
    ("cert-manager.io", "Certificate", "certificates"),
    ("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    ("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
)


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    fullname: str
    opt_in: str
    cluster: E2ECluster
    helm_home: Path

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.helm_home / "cache"),
            "HELM_CONFIG_HOME": str(self.helm_home / "config"),
            "HELM_DATA_HOME": str(self.helm_home / "data"),
            "KUBECONFIG": str(self.cluster.kubeconfig),
        }
        result = subprocess.run(
            [self.cluster.tool("helm"), *args], capture_output=True, text=True, env=env, check=False
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    @property
    def values(self) -> list[str]:
        """Per-release names and an opt-in label, so nothing outside this module is checked."""
        return [
            "--set",
            f"policy.name={self.fullname}",
            "--set-string",
            f"webhooks.namespaceSelector.matchLabels.airlock-e2e/release={self.opt_in}",
        ]


def _kubectl(cluster: E2ECluster, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [cluster.tool("kubectl"), "--kubeconfig", str(cluster.kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def crds(e2e_cluster: E2ECluster) -> Iterator[None]:
    """Airlock's CRDs applied (the chart installs them too, only when absent) and the stubs."""
    _kubectl(e2e_cluster, "apply", "--server-side", "-f", str(CRDS))
    ext = client.ApiextensionsV1Api(e2e_cluster.api_client)
    created: list[str] = []
    for group, kind, plural in STUB_CRDS:
        name = f"{plural}.{group}"
        try:
            ext.read_custom_resource_definition(name)
            continue
        except ApiException as err:
            if err.status != 404:
                raise
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        ext.create_custom_resource_definition(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": name},
                "spec": {
                    "group": group,
                    "scope": "Namespaced",
                    "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": schema},
                        }
                    ],
                },
            }
        )
        created.append(name)
    for name in (
        "baselinepolicies.airlock.dev",
        "policyexceptions.airlock.dev",
        "clusterkopfpeerings.kopf.dev",
        *created,
    ):
        _kubectl(e2e_cluster, "wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    yield
    for name in created:
        ext.delete_custom_resource_definition(name)


@pytest.fixture(scope="module")
def release(
    e2e_cluster: E2ECluster, crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    suffix = uuid.uuid4().hex[:6]
    namespace = f"airlock-e2e-{suffix}"
    core = client.CoreV1Api(e2e_cluster.api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    rel = Release(
        name=f"al-{suffix}",
        namespace=namespace,
        fullname=f"al-{suffix}-airlock",
        opt_in=suffix,
        cluster=e2e_cluster,
        helm_home=tmp_path_factory.mktemp("helm-home"),
    )
    rel.helm("install", rel.name, str(CHART), "--namespace", namespace, *rel.values)
    yield rel
    # Whatever happened above: leave no webhook configuration and no release behind.
    rel.helm("uninstall", rel.name, "--namespace", namespace, check=False)
    admission = client.AdmissionregistrationV1Api(e2e_cluster.api_client)
    for delete in (
        admission.delete_validating_webhook_configuration,
        admission.delete_mutating_webhook_configuration,
    ):
        try:
            delete(rel.fullname)
        except ApiException as err:
            if err.status != 404:
                raise
    core.delete_namespace(namespace)


def _sa_client(rel: Release, service_account: str) -> client.ApiClient:
    """An API client authenticated as one of the chart's ServiceAccounts (TokenRequest)."""
    core = client.CoreV1Api(rel.cluster.api_client)
    token = core.create_namespaced_service_account_token(
        service_account,
        rel.namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600)
        ),
    ).status.token
    admin = rel.cluster.api_client.configuration
    config = client.Configuration()
    config.host = admin.host
    config.ssl_ca_cert = admin.ssl_ca_cert
    config.verify_ssl = admin.verify_ssl
    config.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(config)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([], id="defaults"),
        pytest.param(
            [
                "--set",
                "certificates.mode=certManager",
                "--set",
                "metrics.serviceMonitor.enabled=true",
                "--set",
                "metrics.prometheusRule.enabled=true",
                "--set",
                "metrics.dashboard.enabled=true",
                "--set",
                "networkPolicy.enabled=true",
                "--set",
                "webhook.replicas=3",
                "--set",
                "webhook.priorityClassName=system-cluster-critical",
                "--set",
                f"image.digest=sha256:{'ab' * 32}",
                "--set",
                "webhooks.pods.failurePolicy=Ignore",
                "--set-json",
                'policy.spec={"defaultEnvironment":"dev","environments":'
                '[{"name":"dev","mode":"warn"},{"name":"prod","mode":"enforce"}]}',
            ],
            id="non-default",
        ),
    ],
)
def test_every_rendered_object_passes_server_side_validation(
    e2e_cluster: E2ECluster,
    crds: None,
    namespace_factory: Any,
    tmp_path: Path,
    values: list[str],
) -> None:
    namespace = namespace_factory("chart-dry")
    rel = Release("dry", namespace, "dry-airlock", "none", e2e_cluster, tmp_path)
    rendered = rel.helm(
        "template", "dry", str(CHART), "--namespace", namespace, "--include-crds", *values
    ).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    out = _kubectl(e2e_cluster, "apply", "--dry-run=server", "-f", "-", stdin=rendered)
    assert "(server dry run)" in out
    assert {"Deployment", "ValidatingWebhookConfiguration", "BaselinePolicy"} <= kinds
    assert "Job" not in kinds  # no hooks: uninstall never waits for a pod
    if values:
        assert {"Certificate", "Issuer", "ServiceMonitor", "PrometheusRule", "NetworkPolicy"} <= (
            kinds
        )


# --------------------------------------------------------------------------- the installed chart


def test_crds_are_established(release: Release) -> None:
    ext = client.ApiextensionsV1Api(release.cluster.api_client)
    for name in (
        "baselinepolicies.airlock.dev",
        "policyexceptions.airlock.dev",
        "clusterkopfpeerings.kopf.dev",
    ):
        crd = ext.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in crd.status.conditions}
        assert conditions.get("Established") == "True", name


def test_installed_objects(release: Release) -> None:
    api = release.cluster.api_client
    custom = client.CustomObjectsApi(api)
    policy = custom.get_cluster_custom_object(
        "airlock.dev", "v1alpha1", "baselinepolicies", release.fullname
    )
    assert policy["spec"]["environments"] == [{"name": "default", "mode": "audit"}]
    assert release.namespace in policy["spec"]["excludedNamespaces"]
    custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", release.fullname)
    apps = client.AppsV1Api(api)
    webhook = apps.read_namespaced_deployment(f"{release.fullname}-webhook", release.namespace)
    assert webhook.spec.replicas == 2
    assert webhook.spec.template.spec.automount_service_account_token is False
    core = client.CoreV1Api(api)
    secret = core.read_namespaced_secret(f"{release.fullname}-webhook-tls", release.namespace)
    assert not secret.data  # empty until the controller fills it


def test_webhook_configurations_select_only_opted_in_non_excluded_namespaces(
    release: Release,
) -> None:
    admission = client.AdmissionregistrationV1Api(release.cluster.api_client)
    validating = admission.read_validating_webhook_configuration(release.fullname)
    mutating = admission.read_mutating_webhook_configuration(release.fullname)
    hooks = {h.name: h for h in [*validating.webhooks, *mutating.webhooks]}
    assert set(hooks) == {
        "pods.validate.airlock.dev",
        "workloads.validate.airlock.dev",
        "configmaps.validate.airlock.dev",
        "policies.validate.airlock.dev",
        "rbac.validate.airlock.dev",
        "pods.mutate.airlock.dev",
        "workloads.mutate.airlock.dev",
        "exceptions.mutate.airlock.dev",
    }
    assert hooks["pods.validate.airlock.dev"].failure_policy == "Fail"
    assert hooks["workloads.validate.airlock.dev"].failure_policy == "Ignore"
    assert hooks["rbac.validate.airlock.dev"].failure_policy == "Ignore"
    for hook in hooks.values():
        selector = hook.namespace_selector
        assert selector.match_labels == {"airlock-e2e/release": release.opt_in}
        (expr,) = selector.match_expressions
        assert expr.key == "kubernetes.io/metadata.name"
        assert expr.operator == "NotIn"
        assert expr.values == sorted(
            ["kube-node-lease", "kube-public", "kube-system", release.namespace]
        )
        assert hook.client_config.service.name == f"{release.fullname}-webhook"
        assert hook.client_config.service.namespace == release.namespace
        assert hook.client_config.ca_bundle is None  # the controller fills it (next test)


def test_controller_issues_certificates_and_patches_ca_bundle_with_its_own_rbac(
    release: Release,
) -> None:
    settings = CertSettings(
        namespace=release.namespace,
        secret_name=f"{release.fullname}-webhook-tls",
        service_name=f"{release.fullname}-webhook",
        webhook_configurations=(release.fullname,),
    )
    api = _sa_client(release, f"{release.fullname}-controller")
    try:
        rotator = CertRotator(settings, api)
        first = asyncio.run(rotator.check_once())
        second = asyncio.run(rotator.check_once())
    finally:
        api.close()
    assert first.issue_ca is not None
    assert first.issue_serving == "no serving certificate"
    assert not second.changed  # idempotent: nothing due, nothing to patch

    core = client.CoreV1Api(release.cluster.api_client)
    secret = core.read_namespaced_secret(settings.secret_name, release.namespace)
    data = {k: base64.b64decode(v) for k, v in secret.data.items()}
    state = read_state(data)
    assert state.leaf is not None
    assert state.active_ca is not None
    state.leaf.verify_directly_issued_by(state.active_ca)
    san = state.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName)[0] == serving_dns_names(settings)[0]
    assert serving_dns_names(settings)[0] == f"{release.fullname}-webhook.{release.namespace}.svc"

    admission = client.AdmissionregistrationV1Api(release.cluster.api_client)
    expected = base64.b64encode(data["ca.crt"]).decode()
    for config in (
        admission.read_validating_webhook_configuration(release.fullname),
        admission.read_mutating_webhook_configuration(release.fullname),
    ):
        assert [h.client_config.ca_bundle for h in config.webhooks] == [expected] * len(
            config.webhooks
        )


def _allowed(
    release: Release,
    account: str,
    verb: str,
    resource: str,
    *,
    group: str = "",
    subresource: str = "",
    name: str = "",
    namespace: str = "",
) -> bool:
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{release.namespace}:{release.fullname}-{account}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}"],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource or None,
                name=name or None,
                namespace=namespace or None,
            ),
        )
    )
    result = client.AuthorizationV1Api(release.cluster.api_client).create_subject_access_review(
        review
    )
    return bool(result.status.allowed)


def test_rbac_grants_each_service_account_exactly_what_it_needs(release: Release) -> None:
    ns, full = release.namespace, release.fullname
    tls = f"{full}-webhook-tls"
    checks = [
        # the webhook reads its state, nothing else
        ("webhook", "list", "namespaces", {}, True),
        ("webhook", "watch", "baselinepolicies", {"group": "airlock.dev"}, True),
        ("webhook", "list", "policyexceptions", {"group": "airlock.dev"}, True),
        ("webhook", "get", "secrets", {"namespace": ns, "name": tls}, False),
        ("webhook", "list", "pods", {}, False),
        ("webhook", "create", "events", {"namespace": ns}, False),
        ("webhook", "patch", "baselinepolicies", {"group": "airlock.dev"}, False),
        # the controller: status, audit reads, its own products, the TLS Secret by name
        (
            "controller",
            "patch",
            "baselinepolicies",
            {"group": "airlock.dev", "subresource": "status", "name": full},
            True,
        ),
        (
            "controller",
            "patch",
            "policyexceptions",
            {"group": "airlock.dev", "subresource": "status", "namespace": "team-a"},
            True,
        ),
        ("controller", "update", "baselinepolicies", {"group": "airlock.dev"}, False),
        ("controller", "delete", "policyexceptions", {"group": "airlock.dev"}, False),
        ("controller", "list", "pods", {}, True),
        ("controller", "delete", "pods", {"namespace": "team-a"}, False),
        ("controller", "watch", "deployments", {"group": "apps"}, True),
        ("controller", "update", "deployments", {"group": "apps", "namespace": "team-a"}, False),
        ("controller", "list", "pytorchjobs", {"group": "kubeflow.org"}, True),
        ("controller", "list", "configmaps", {}, True),
        ("controller", "create", "policyreports", {"group": "wgpolicyk8s.io"}, True),
        ("controller", "create", "networkpolicies", {"group": "networking.k8s.io"}, True),
        ("controller", "create", "events", {"namespace": "team-a"}, True),
        ("controller", "patch", "clusterkopfpeerings", {"group": "kopf.dev", "name": full}, True),
        ("controller", "get", "secrets", {"namespace": ns, "name": tls}, True),
        ("controller", "update", "secrets", {"namespace": ns, "name": tls}, True),
        ("controller", "get", "secrets", {"namespace": ns, "name": "other"}, False),
        ("controller", "list", "secrets", {"namespace": ns}, False),
        # the TLS Secret is created again if deleted; create cannot be limited by name
        ("controller", "create", "secrets", {"namespace": ns}, True),
        ("controller", "create", "secrets", {"namespace": "team-a"}, False),
        # its own report and NetworkPolicy by name, nobody else's
        (
            "controller",
            "update",
            "policyreports",
            {"group": "wgpolicyk8s.io", "namespace": "team-a", "name": "airlock"},
            True,
        ),
        (
            "controller",
            "delete",
            "policyreports",
            {"group": "wgpolicyk8s.io", "namespace": "team-a", "name": "kyverno-report"},
            False,
        ),
        (
            "controller",
            "patch",
            "networkpolicies",
            {
                "group": "networking.k8s.io",
                "namespace": "team-a",
                "name": "airlock-environment-isolation",
            },
            True,
        ),
        (
            "controller",
            "delete",
            "networkpolicies",
            {"group": "networking.k8s.io", "namespace": "team-a", "name": "default-deny"},
            False,
        ),
        (
            "controller",
            "patch",
            "clusterkopfpeerings",
            {"group": "kopf.dev", "name": "someone-elses-operator"},
            False,
        ),
        ("controller", "get", "secrets", {"namespace": "team-a", "name": tls}, False),
        (
            "controller",
            "patch",
            "validatingwebhookconfigurations",
            {"group": "admissionregistration.k8s.io", "name": full},
            True,
        ),
        (
            "controller",
            "patch",
            "mutatingwebhookconfigurations",
            {"group": "admissionregistration.k8s.io", "name": "someone-elses"},
            False,
        ),
        (
            "controller",
            "delete",
            "validatingwebhookconfigurations",
            {"group": "admissionregistration.k8s.io", "name": full},
            False,
        ),
    ]
    wrong = [
        (account, verb, resource, attrs, expected)
        for account, verb, resource, attrs, expected in checks
        if _allowed(release, account, verb, resource, **attrs) is not expected
    ]
    assert wrong == []


def test_upgrade_keeps_certificates_and_uninstall_leaves_no_webhook_behind(
    release: Release,
) -> None:
    api = release.cluster.api_client
    admission = client.AdmissionregistrationV1Api(api)
    before = admission.read_validating_webhook_configuration(release.fullname)
    bundle = before.webhooks[0].client_config.ca_bundle
    assert bundle, "run after the certificate test"

    release.helm(
        "upgrade",
        release.name,
        str(CHART),
        "--namespace",
        release.namespace,
        *release.values,
        "--set",
        "webhooks.pods.timeoutSeconds=7",
    )
    after = admission.read_validating_webhook_configuration(release.fullname)
    pods = next(h for h in after.webhooks if h.name == "pods.validate.airlock.dev")
    assert pods.timeout_seconds == 7
    # helm's three-way merge leaves what the controller set
    assert [h.client_config.ca_bundle for h in after.webhooks] == [bundle] * len(after.webhooks)
    secret = client.CoreV1Api(api).read_namespaced_secret(
        f"{release.fullname}-webhook-tls", release.namespace
    )
    assert set(secret.data) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}

    # no --no-hooks: nothing may wait for a pod (none can run here)
    began = time.monotonic()
    release.helm("uninstall", release.name, "--namespace", release.namespace, "--timeout", "60s")
    assert time.monotonic() - began < 30
    for read in (
        admission.read_validating_webhook_configuration,
        admission.read_mutating_webhook_configuration,
    ):
        with pytest.raises(ApiException) as gone:
            read(release.fullname)
        assert gone.value.status == 404
    rbac = client.RbacAuthorizationV1Api(api)
    with pytest.raises(ApiException) as role_gone:
        rbac.read_cluster_role(f"{release.fullname}-controller")
    assert role_gone.value.status == 404
    custom = client.CustomObjectsApi(api)
    with pytest.raises(ApiException) as peering_gone:
        custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", release.fullname)
    assert peering_gone.value.status == 404
    # CRDs stay (helm never deletes crds/): deleting them would delete every policy
    client.ApiextensionsV1Api(api).read_custom_resource_definition("baselinepolicies.airlock.dev")


def test_uninstall_with_an_image_that_does_not_exist_leaves_no_webhook(
    e2e_cluster: E2ECluster, crds: None, namespace_factory: Any, tmp_path: Path
) -> None:
    """No pod of this release can ever run (no node here, and no such image): uninstall still
    removes both webhook configurations and the release; `uninstall-webhooks` (the runbook's
    command) then finds nothing to delete."""
    namespace = namespace_factory("chart-noimage")
    suffix = namespace.rsplit("-", 1)[1]
    rel = Release(f"ni-{suffix}", namespace, f"ni-{suffix}-airlock", suffix, e2e_cluster, tmp_path)
    rel.helm(
        "install",
        rel.name,
        str(CHART),
        "--namespace",
        namespace,
        *rel.values,
        "--set",
        "image.repository=registry.invalid/nothing/here",
    )
    try:
        began = time.monotonic()
        rel.helm("uninstall", rel.name, "--namespace", namespace, "--timeout", "60s")
        assert time.monotonic() - began < 30
        admission = client.AdmissionregistrationV1Api(e2e_cluster.api_client)
        for read in (
            admission.read_validating_webhook_configuration,
            admission.read_mutating_webhook_configuration,
        ):
            with pytest.raises(ApiException) as gone:
                read(rel.fullname)
            assert gone.value.status == 404
        assert remove_webhook_configurations(e2e_cluster.api_client, [rel.fullname]) == []
    finally:
        rel.helm("uninstall", rel.name, "--namespace", namespace, check=False)
    listed = rel.helm("list", "--namespace", namespace, "-q").stdout.split()
    assert rel.name not in listed
