"""Smoke tests proving the e2e rig is a real Kubernetes control plane, not a stand-in:
admission (including a webhook on the host), CRDs, controllers and helm all behave as in a
cluster. No kubelet runs, so nothing here waits for a Pod to run.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from e2e_rig import E2ECluster, WebhookCA
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_CHART = REPO_ROOT / "tests" / "fixtures" / "charts" / "smoke"
K8S_VERSION = "v1.37.2"
HELM_VERSION = "v3.22.0"
DENY_LABEL = "airlock-smoke/deny"

T = TypeVar("T")


def _poll(fetch: Callable[[], T | None], what: str, timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def _pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app": name}),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="main", image="registry.invalid/smoke:1")]
        ),
    )


def test_versions_are_stamped(e2e_cluster: E2ECluster) -> None:
    server = client.VersionApi(e2e_cluster.api_client).get_code()
    assert server.git_version == K8S_VERSION
    assert (server.major, server.minor) == ("1", "37")

    kubectl = subprocess.run(
        [e2e_cluster.tool("kubectl"), "version", "--client", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(kubectl.stdout)["clientVersion"]["gitVersion"] == K8S_VERSION

    helm = subprocess.run(
        [e2e_cluster.tool("helm"), "version", "--short"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert helm.stdout.strip().startswith(HELM_VERSION)


@pytest.mark.parametrize("fresh_namespace", [{"airlock-smoke/tier": "dev"}], indirect=True)
def test_namespace_and_pod_through_the_client(
    api_client: client.ApiClient, fresh_namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    ns = core.read_namespace(fresh_namespace)
    assert ns.metadata.labels["airlock-smoke/tier"] == "dev"
    assert ns.metadata.labels["kubernetes.io/metadata.name"] == fresh_namespace

    core.create_namespaced_pod(fresh_namespace, _pod("smoke"))
    pod = core.read_namespaced_pod("smoke", fresh_namespace)
    # The ServiceAccount admission plugin ran: the default account and its token volume.
    assert pod.spec.service_account_name == "default"
    assert any(v.name.startswith("kube-api-access-") for v in pod.spec.volumes)
    assert pod.status.phase == "Pending"  # no kubelet, by design


def test_crd_becomes_established_and_serves_objects(
    api_client: client.ApiClient, fresh_namespace: str
) -> None:
    ext = client.ApiextensionsV1Api(api_client)
    group = f"smoke{uuid.uuid4().hex[:8]}.airlock.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext.create_custom_resource_definition(crd)
    try:

        def established() -> bool | None:
            got = ext.read_custom_resource_definition(f"widgets.{group}")
            conditions = got.status.conditions or [] if got.status else []
            ok = any(c.type == "Established" and c.status == "True" for c in conditions)
            return True if ok else None

        _poll(established, "the CRD to be Established", timeout=30)
        custom = client.CustomObjectsApi(api_client)
        widget = {
            "apiVersion": f"{group}/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 3},
        }
        _poll(
            lambda: _create_or_none(custom, group, fresh_namespace, widget),
            "the new resource to be served",
            timeout=30,
        )
        got = custom.get_namespaced_custom_object(group, "v1", fresh_namespace, "widgets", "w1")
        assert got["spec"] == {"size": 3}
        # The schema is enforced, so the apiserver really compiled it.
        bad = {**widget, "metadata": {"name": "w2"}, "spec": {"size": 0}}
        with pytest.raises(ApiException) as denied:
            custom.create_namespaced_custom_object(group, "v1", fresh_namespace, "widgets", bad)
        assert denied.value.status == 422
        assert "spec.size" in str(denied.value.body)
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def _create_or_none(
    custom: client.CustomObjectsApi, group: str, namespace: str, body: dict[str, Any]
) -> bool | None:
    try:
        custom.create_namespaced_custom_object(group, "v1", namespace, "widgets", body)
    except ApiException as err:
        if err.status == 404:  # discovery not caught up yet
            return None
        raise
    return True


@dataclass
class _Reviews:
    seen: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(reviews: _Reviews) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            request = review["request"]
            with reviews.lock:
                reviews.seen.append(request)
            name = request["object"]["metadata"]["name"]
            response = {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": request["uid"],
                    "allowed": False,
                    "status": {"code": 403, "message": f"airlock-smoke says no to {name}"},
                },
            }
            payload = json.dumps(response).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def webhook_server(webhook_ca: WebhookCA, tmp_path: Path) -> Iterator[tuple[int, _Reviews]]:
    cert, key = webhook_ca.issue_serving_cert(tmp_path)
    reviews = _Reviews()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(reviews))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, name="smoke-webhook", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), reviews
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_validating_webhook_on_the_host_denies(
    api_client: client.ApiClient,
    fresh_namespace: str,
    webhook_ca: WebhookCA,
    webhook_server: tuple[int, _Reviews],
) -> None:
    port, reviews = webhook_server
    admission = client.AdmissionregistrationV1Api(api_client)
    core = client.CoreV1Api(api_client)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    config = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "deny.smoke.airlock.test",
                "clientConfig": {
                    "url": f"https://127.0.0.1:{port}/validate",
                    "caBundle": base64.b64encode(webhook_ca.cert.read_bytes()).decode(),
                },
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["configmaps"],
                    }
                ],
                # Only this test's namespace and labelled objects: other tests never see it.
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": fresh_namespace}
                },
                "objectSelector": {"matchLabels": {DENY_LABEL: "yes"}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
            }
        ],
    }
    admission.create_validating_webhook_configuration(config)
    try:
        attempt = 0

        def denial() -> ApiException | None:
            # The apiserver picks up new webhook configurations asynchronously.
            nonlocal attempt
            attempt += 1
            cm = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"denied-{attempt}", labels={DENY_LABEL: "yes"})
            )
            try:
                core.create_namespaced_config_map(fresh_namespace, cm)
            except ApiException as err:
                return err
            return None

        err = _poll(denial, "the webhook to deny a labelled ConfigMap", timeout=30)
        assert err.status == 403
        message = json.loads(err.body)["message"]
        assert 'admission webhook "deny.smoke.airlock.test" denied the request' in message
        assert f"airlock-smoke says no to denied-{attempt}" in message

        with reviews.lock:
            last = reviews.seen[-1]
        assert last["namespace"] == fresh_namespace
        assert last["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        assert last["operation"] == "CREATE"

        # Unlabelled objects never reach the webhook and are admitted.
        seen_before = len(reviews.seen)
        core.create_namespaced_config_map(
            fresh_namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="allowed"))
        )
        assert core.read_namespaced_config_map("allowed", fresh_namespace).metadata.name
        assert len(reviews.seen) == seen_before
    finally:
        admission.delete_validating_webhook_configuration(name)


def _helm(e2e_cluster: E2ECluster, tmp_path: Path, *args: str) -> str:
    home = tmp_path / "helm-home"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(e2e_cluster.kubeconfig),
    }
    result = subprocess.run(
        [e2e_cluster.tool("helm"), *args], check=False, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_helm_template_and_install(
    e2e_cluster: E2ECluster, fresh_namespace: str, tmp_path: Path
) -> None:
    rendered = list(
        yaml.safe_load_all(
            _helm(
                e2e_cluster, tmp_path, "template", "demo", str(SMOKE_CHART), "--set", "greeting=hi"
            )
        )
    )
    configmaps = [d for d in rendered if d and d["kind"] == "ConfigMap"]
    assert [d["metadata"]["name"] for d in configmaps] == ["demo-smoke"]
    assert configmaps[0]["data"]["greeting"] == "hi"
    # Offline, helm assumes the Kubernetes minor its own client libraries were built for.
    assert configmaps[0]["data"]["kubeVersion"].startswith("v1.")
    assert configmaps[0]["data"]["kubeVersion"] != "v1.20.0"

    _helm(e2e_cluster, tmp_path, "install", "rel", str(SMOKE_CHART), "-n", fresh_namespace)
    cm = client.CoreV1Api(e2e_cluster.api_client).read_namespaced_config_map(
        "rel-smoke", fresh_namespace
    )
    assert cm.data["greeting"] == "hello"
    assert cm.data["kubeVersion"] == K8S_VERSION  # from the live apiserver's /version
    listed = json.loads(_helm(e2e_cluster, tmp_path, "list", "-n", fresh_namespace, "-o", "json"))
    assert [(r["name"], r["status"]) for r in listed] == [("rel", "deployed")]


def test_deployment_gets_replicaset_and_pods(
    api_client: client.ApiClient, fresh_namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=2,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=_pod("web").spec,
            ),
        ),
    )
    created = apps.create_namespaced_deployment(fresh_namespace, deployment)

    def replicaset() -> client.V1ReplicaSet | None:
        items = apps.list_namespaced_replica_set(fresh_namespace).items
        owned = [
            rs
            for rs in items
            if any(o.uid == created.metadata.uid for o in rs.metadata.owner_references or [])
        ]
        return owned[0] if owned else None

    rs = _poll(replicaset, "kube-controller-manager to create the ReplicaSet")
    assert rs.spec.replicas == 2

    def pods() -> list[client.V1Pod] | None:
        items = core.list_namespaced_pod(fresh_namespace, label_selector="app=web").items
        owned = [
            p
            for p in items
            if any(o.uid == rs.metadata.uid for o in p.metadata.owner_references or [])
        ]
        return owned if len(owned) == 2 else None

    owned_pods = _poll(pods, "the ReplicaSet's two Pods")
    assert {p.spec.containers[0].image for p in owned_pods} == {"registry.invalid/smoke:1"}
    assert all(p.status.phase == "Pending" for p in owned_pods)
