"""Airlock the way cluster admins run it: its own image, installed with Helm, as pods on a real
node, answering the API server through its Service.

One release (`airlock` in `airlock-system`, the names the README documents) is installed by
digest for the whole module and exercised in order: ready, deny / warn / patch / admit, an
exception approved by a second person, metrics and PolicyReports, then disruptions under a
steady stream of Pod creations (rolling restart, a deleted pod, a certificate rotation, helm
upgrade), and last uninstall, which must leave nothing behind. A second release whose image
does not exist checks that uninstall never depends on Airlock's pods running.

The pods run as a UID the image has no passwd entry for: identity must not depend on one.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from conftest import NodeCluster, localcluster
from cryptography import x509
from e2e_rig import REPO_ROOT, install_crds
from e2e_rig import poll as rig_poll
from kubernetes import client
from kubernetes.client.rest import ApiException

CHART = REPO_ROOT / "charts" / "airlock"
RELEASE, NAMESPACE = "airlock", "airlock-system"
ENV_LABEL = "airlock.dev/environment"
# Looks like a Hugging Face token; never a real one. It must never come back in clear.
SECRET = "hf_" + "Qx7rT2mZ9vB4nK8pL3wY6cJ1dF5gH0sAeU"
NO_PASSWD_UID = 23456
T = TypeVar("T")


def poll(fetch: Callable[[], T | None], what: str, timeout: float = 120.0) -> T:
    """e2e_rig's poll, with a longer default: pods start, stop and reload here."""
    return rig_poll(fetch, what, timeout)


def say(message: str) -> None:
    """Numbers the closing note reports (printed with -s, and kept in the log on failure)."""
    print(f"[node-test] {message}", flush=True)


@dataclass
class Helm:
    node: NodeCluster
    home: Path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
            "KUBECONFIG": str(self.node.kubeconfig),
        }
        result = subprocess.run(
            [self.node.tool("helm"), *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=300,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result


def values(node: NodeCluster, **extra: Any) -> dict[str, Any]:
    spec = {
        "environmentLabel": ENV_LABEL,
        "defaultEnvironment": "dev",
        "environments": [
            {"name": "dev", "mode": "warn", "rules": {"image-digest-missing": "audit"}},
            {
                "name": "prod",
                "mode": "enforce",
                "allowedRegistries": ["registry.corp.example/prod/"],
            },
        ],
        "mutations": {"secureDefaults": True, "inheritOwnerLabel": True},
        "ownerLabel": "airlock.dev/owner",
        "exceptions": {"maxDays": 90, "requireApproval": True},
        "isolation": "audit",
    }
    out: dict[str, Any] = {
        "image": {
            "repository": node.image_repository,
            "digest": node.image_digest,
            "pullPolicy": "IfNotPresent",
        },
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": NO_PASSWD_UID,
            "runAsGroup": NO_PASSWD_UID,
            "fsGroup": NO_PASSWD_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "policy": {"spec": spec},
        # a renewal request (airlock.dev/renew) is honoured within seconds, not minutes
        "controller": {"extraArgs": ["--cert-check-interval=3"]},
    }
    out.update(extra)
    return out


def write_values(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


def answers_through_the_service(node: NodeCluster, namespace: str) -> bool | None:
    """The webhook judged a server-side dry run through its Service. A Deployment is Ready a
    moment before kube-proxy routes its Service (the API server meanwhile gets "connection
    refused"): this is the moment a user's first Pod is judged."""
    probe = pod_body("answer-probe", "docker.io/library/busybox:latest", hardened=False)
    proc = node.kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-", stdin=json.dumps(probe)
    )
    return True if 'admission webhook "pods.validate.airlock.dev"' in proc.stderr else None


def deployment_ready(apps: client.AppsV1Api, name: str) -> bool | None:
    dep = apps.read_namespaced_deployment(name, NAMESPACE)
    want = dep.spec.replicas or 0
    st = dep.status
    if (
        st.observed_generation == dep.metadata.generation
        and (st.updated_replicas or 0) == want
        and (st.ready_replicas or 0) == want
        and (st.replicas or 0) == want
    ):
        return True
    return None


def pod_body(name: str, image: str, *, hardened: bool = True, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": image}
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"airlock.dev/owner": "ml-team"}},
        "spec": {"containers": [container]},
    }
    if hardened:
        container["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        pod["spec"]["automountServiceAccountToken"] = False
    container.update(extra.pop("container", {}))
    pod["spec"].update(extra)
    return pod


PROD_IMAGE = "registry.corp.example/prod/serve:1.4.2@sha256:" + "ab" * 32


@dataclass
class Installed:
    node: NodeCluster
    helm: Helm
    values_file: str
    dev: str
    prod: str
    install_to_ready: float
    api: client.ApiClient = field(repr=False)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)


@pytest.fixture(scope="module")
def installed(
    node_cluster: NodeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Installed]:
    api = node_cluster.api_client
    install_crds(api)
    core = client.CoreV1Api(api)
    suffix = uuid.uuid4().hex[:6]
    dev, prod = f"ml-dev-{suffix}", f"ml-prod-{suffix}"
    for ns, env in ((dev, "dev"), (prod, "prod")):
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(
                    name=ns, labels={ENV_LABEL: env, "airlock.dev/owner": "ml-team"}
                )
            )
        )
    home = tmp_path_factory.mktemp("helm")
    helm = Helm(node_cluster, home)
    vfile = write_values(home / "values.yaml", values(node_cluster))
    began = time.monotonic()
    helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace", "-f", vfile
    )
    apps = client.AppsV1Api(api)
    poll(lambda: deployment_ready(apps, "airlock-webhook"), "the webhook pods Ready", 240)
    poll(lambda: deployment_ready(apps, "airlock-controller"), "the controller Ready", 240)
    took = time.monotonic() - began
    say(f"helm install to webhook and controller Ready: {took:.1f} s")
    poll(lambda: answers_through_the_service(node_cluster, prod), "the webhook's Service", 60)
    answering = time.monotonic() - began
    say(f"helm install to the webhook answering through its Service: {answering:.1f} s")
    yield Installed(node_cluster, helm, vfile, dev, prod, took, api)
    helm("uninstall", RELEASE, "--namespace", NAMESPACE, check=False)
    for ns in (dev, prod):
        try:
            core.delete_namespace(ns)
        except ApiException as err:
            if err.status != 404:
                raise


def test_pods_are_ready_with_certificates_issued_and_ca_bundles_filled(
    installed: Installed,
) -> None:
    api = installed.api
    secret = installed.core.read_namespaced_secret("airlock-webhook-tls", NAMESPACE)
    assert {"tls.crt", "tls.key", "ca.crt"} <= set(secret.data or {})
    ca = base64.b64decode(secret.data["ca.crt"])
    admission = client.AdmissionregistrationV1Api(api)
    for config in (
        admission.read_validating_webhook_configuration("airlock"),
        admission.read_mutating_webhook_configuration("airlock"),
    ):
        for hook in config.webhooks:
            assert hook.client_config.service.name == "airlock-webhook"
            assert base64.b64decode(hook.client_config.ca_bundle) == ca
    pods = installed.core.list_namespaced_pod(NAMESPACE).items
    running = sorted(p.metadata.labels.get("app.kubernetes.io/component", "") for p in pods)
    assert running == ["controller", "webhook", "webhook"]
    for pod in pods:
        spec = pod.spec
        assert spec.enable_service_links is False
        assert spec.security_context.run_as_user == NO_PASSWD_UID
        (container,) = spec.containers
        assert container.image.endswith("@" + installed.node.image_digest)
        # no admin credentials anywhere: only the pod's own service-account token, the serving
        # certificate and the credential-fingerprint key
        volumes = {v.name: v for v in spec.volumes}
        mounted = set()
        for mount in container.volume_mounts:
            vol = volumes[mount.name]
            assert vol.host_path is None
            if vol.secret is not None:
                mounted.add(vol.secret.secret_name)
                assert mount.read_only is True
        assert mounted <= {"airlock-webhook-tls", "airlock-fingerprint-key"}
        assert "airlock-fingerprint-key" in mounted
        assert pod.status.container_statuses[0].restart_count == 0


def kubectl_warnings(stderr: str) -> list[str]:
    return [
        line.removeprefix("Warning: ")
        for line in stderr.splitlines()
        if line.startswith("Warning: ")
    ]


def test_denial_through_the_service_names_every_violation_and_redacts_the_secret(
    installed: Installed,
) -> None:
    bad = pod_body(
        "leaky",
        "docker.io/library/python:latest",
        hardened=False,
        container={
            "env": [{"name": "HF_TOKEN", "value": SECRET}],
            "securityContext": {"privileged": True},
        },
    )
    began = time.monotonic()
    proc = installed.node.kubectl("create", "-n", installed.prod, "-f", "-", stdin=json.dumps(bad))
    took = time.monotonic() - began
    assert proc.returncode != 0
    message = proc.stderr
    assert 'admission webhook "pods.validate.airlock.dev" denied the request' in message
    for rule in (
        "plaintext-secret-env",
        "privileged-container",
        "image-tag-latest",
        "image-registry-not-allowed",
    ):
        assert f"[{rule}]" in message, rule
    assert "[REDACTED Hugging Face token" in message
    assert SECRET not in message
    assert SECRET[3:] not in message
    say(f"denial through the Service: kubectl round trip {took:.2f} s")


def test_warning_patch_and_admission_through_the_service(installed: Installed) -> None:
    # dev warns: admitted, with every finding as a warning, and the secure defaults filled in
    loose = pod_body("loose", "registry.corp.example/dev/tool:latest", hardened=False)
    proc = installed.node.kubectl("create", "-n", installed.dev, "-f", "-", stdin=json.dumps(loose))
    assert proc.returncode == 0, proc.stderr
    warnings = kubectl_warnings(proc.stderr)
    assert any(w.startswith("airlock [image-tag-latest] ") for w in warnings), warnings
    assert any(w.startswith("airlock set ") for w in warnings), warnings
    stored = installed.core.read_namespaced_pod("loose", installed.dev)
    sc = stored.spec.containers[0].security_context
    assert sc.allow_privilege_escalation is False
    assert sc.capabilities.drop == ["ALL"]
    assert stored.spec.automount_service_account_token is False

    # a credential in a warn environment is admitted with a redacted warning; from here on it
    # runs in the cluster, where the audit finds it (and the sweep below checks every channel)
    leaky = pod_body(
        "leaky-dev",
        "registry.corp.example/dev/tool:1.0",
        container={"env": [{"name": "HF_TOKEN", "value": SECRET}]},
    )
    proc = installed.node.kubectl("create", "-n", installed.dev, "-f", "-", stdin=json.dumps(leaky))
    assert proc.returncode == 0, proc.stderr
    assert any("[plaintext-secret-env]" in w for w in kubectl_warnings(proc.stderr))
    assert SECRET not in proc.stderr
    assert SECRET[3:] not in proc.stderr

    # prod enforces: a hardened, pinned pod from the prod registry is admitted silently
    good = pod_body("good", PROD_IMAGE)
    proc = installed.node.kubectl("create", "-n", installed.prod, "-f", "-", stdin=json.dumps(good))
    assert proc.returncode == 0, proc.stderr
    assert [w for w in kubectl_warnings(proc.stderr) if "[" in w] == []


def test_an_exception_approved_by_a_second_person_takes_effect(installed: Installed) -> None:
    node, ns = installed.node, installed.prod
    privileged = pod_body("gpu-setup-1", PROD_IMAGE)
    sc = privileged["spec"]["containers"][0]["securityContext"]
    del sc["allowPrivilegeEscalation"]  # the API server refuses false next to privileged
    sc["privileged"] = True
    denied = node.kubectl(
        "create", "-n", ns, "--dry-run=server", "-f", "-", stdin=json.dumps(privileged)
    )
    assert denied.returncode != 0
    assert "[privileged-container]" in denied.stderr
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7 * 86400))
    exception = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {"name": "gpu-setup", "namespace": ns},
        "spec": {
            "rules": ["privileged-container", "privilege-escalation"],
            "match": {"names": ["gpu-setup-*"]},
            "expires": expires,
            "owner": "gpu-team@corp.example",
            "reason": "the driver installer needs privileges until the operator ships",
        },
    }
    alice = ("--as=alice", "--as-group=system:masters")
    bob = ("--as=bob", "--as-group=system:masters")
    created = node.kubectl(*alice, "apply", "-f", "-", stdin=json.dumps(exception))
    assert created.returncode == 0, created.stderr
    own = node.kubectl(
        *alice, "annotate", "-n", ns, "policyexception/gpu-setup", "airlock.dev/approve=true"
    )
    assert own.returncode != 0
    assert "four-eyes" in own.stderr
    approved = node.kubectl(
        *bob, "annotate", "-n", ns, "policyexception/gpu-setup", "airlock.dev/approve=true"
    )
    assert approved.returncode == 0, approved.stderr

    last: list[str] = []

    def admitted() -> bool | None:
        proc = node.kubectl(
            "create", "-n", ns, "--dry-run=server", "-f", "-", stdin=json.dumps(privileged)
        )
        last[:] = [proc.stderr]
        return True if proc.returncode == 0 else None

    try:
        poll(admitted, "the approved exception to reach both webhook replicas", 60)
    except BaseException:
        print("last answer:", last)
        raise
    # both replicas must agree: ask several times (the Service balances between them)
    for _ in range(10):
        assert admitted()
    custom = client.CustomObjectsApi(installed.api)

    def active() -> bool | None:
        obj = custom.get_namespaced_custom_object(
            "airlock.dev", "v1alpha1", ns, "policyexceptions", "gpu-setup"
        )
        return True if (obj.get("status") or {}).get("state") == "Active" else None

    poll(active, "the controller to mark the exception Active", 60)


def test_controller_metrics_from_its_pod_and_policy_reports(installed: Installed) -> None:
    (pod,) = installed.core.list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/component=controller"
    ).items
    url = f"http://{pod.status.pod_ip}:8080/metrics"

    def scraped() -> str | None:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                text = resp.read().decode()
        except OSError:
            return None
        return text if "airlock_audit_workloads{" in text else None

    text = poll(scraped, f"the controller's audit metrics at {url}", 120)
    assert "airlock_policy_info{" in text
    assert SECRET not in text
    custom = client.CustomObjectsApi(installed.api)

    def report() -> dict[str, Any] | None:
        items = custom.list_namespaced_custom_object(
            "wgpolicyk8s.io", "v1alpha2", installed.dev, "policyreports"
        )["items"]
        return items[0] if items and items[0].get("results") else None

    rep = poll(report, f"a PolicyReport in {installed.dev}", 120)
    assert any(r["policy"] for r in rep["results"])
    assert SECRET not in json.dumps(rep)


class PodStream:
    """Pod creations (server-side dry run: the whole admission chain, nothing stored) in a
    steady loop on a thread; counts what the API server answered."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.sent = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = pod_body("stream", PROD_IMAGE)
        while not self._stop.is_set():
            self.sent += 1
            try:
                self.core.create_namespaced_pod(
                    self.namespace, body, dry_run="All", _request_timeout=30
                )
            except ApiException as err:
                self.failed.append(f"HTTP {err.status}: {(err.body or '')[:300]}")
            except Exception as err:
                self.failed.append(f"{type(err).__name__}: {err}")
            time.sleep(0.05)

    def __enter__(self) -> PodStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def only_serving_webhooks(installed: Installed) -> bool | None:
    """True once every webhook pod left is one of the Deployment's current, ready replicas."""
    pods = installed.core.list_namespaced_pod(
        NAMESPACE, label_selector="app.kubernetes.io/component=webhook"
    ).items
    done = len(pods) == 2 and all(p.metadata.deletion_timestamp is None for p in pods)
    return True if done else None


def test_rolling_restart_of_the_webhook_drops_no_request(installed: Installed) -> None:
    apps = client.AppsV1Api(installed.api)
    with PodStream(installed.api, installed.prod) as stream:
        time.sleep(2)
        restarted = installed.node.kubectl(
            "rollout", "restart", "-n", NAMESPACE, "deployment/airlock-webhook"
        )
        assert restarted.returncode == 0, restarted.stderr
        time.sleep(2)
        poll(lambda: deployment_ready(apps, "airlock-webhook"), "the restarted webhook Ready", 240)
        poll(lambda: only_serving_webhooks(installed), "the old pods to be gone", 120)
        time.sleep(2)
    say(f"rolling restart: {stream.sent} Pod creations sent, {len(stream.failed)} failed")
    assert stream.sent > 20
    assert stream.failed == []


def test_deleting_a_webhook_pod_drops_no_request(installed: Installed) -> None:
    apps = client.AppsV1Api(installed.api)
    with PodStream(installed.api, installed.prod) as stream:
        time.sleep(2)
        victim = installed.core.list_namespaced_pod(
            NAMESPACE, label_selector="app.kubernetes.io/component=webhook"
        ).items[0]
        installed.core.delete_namespaced_pod(victim.metadata.name, NAMESPACE)
        time.sleep(2)
        poll(lambda: deployment_ready(apps, "airlock-webhook"), "a replacement webhook pod", 240)
        # the stream goes on through the victim's whole goodbye: preStop pause, drain, exit
        poll(lambda: only_serving_webhooks(installed), "the deleted pod to be gone", 120)
        time.sleep(2)
    say(f"webhook pod deleted: {stream.sent} Pod creations sent, {len(stream.failed)} failed")
    assert stream.sent > 20
    assert stream.failed == []


def served_certificate(ip: str) -> x509.Certificate | None:
    """The certificate a webhook pod serves on 8443 (no verification: we only read it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((ip, 8443), timeout=5) as sock, ctx.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return x509.load_der_x509_certificate(der) if der else None


def test_certificate_rotation_drops_no_request(installed: Installed) -> None:
    """An admin asks for a new serving certificate (airlock.dev/renew on the Secret); the
    controller issues it, the kubelet refreshes the mounted files, every replica reloads them,
    and the API server never sees a handshake fail."""
    core = installed.core

    def serving_serial() -> int:
        secret = core.read_namespaced_secret("airlock-webhook-tls", NAMESPACE)
        pem = base64.b64decode(secret.data["tls.crt"])
        return x509.load_pem_x509_certificate(pem).serial_number

    before = serving_serial()
    with PodStream(installed.api, installed.prod) as stream:
        time.sleep(2)
        core.patch_namespaced_secret(
            "airlock-webhook-tls",
            NAMESPACE,
            {"metadata": {"annotations": {"airlock.dev/renew": str(time.time())}}},
        )
        after = poll(
            lambda: serving_serial() if serving_serial() != before else None,
            "the controller to issue a new serving certificate",
            60,
        )
        ips = [
            p.status.pod_ip
            for p in core.list_namespaced_pod(
                NAMESPACE, label_selector="app.kubernetes.io/component=webhook"
            ).items
            if p.metadata.deletion_timestamp is None
        ]
        assert len(ips) == 2

        def all_serve_new() -> bool | None:
            served = [served_certificate(ip) for ip in ips]
            return True if all(c is not None and c.serial_number == after for c in served) else None

        began = time.monotonic()
        poll(all_serve_new, "every webhook replica to serve the new certificate", 180)
        say(
            "certificate rotation: every replica served the new certificate after "
            f"{time.monotonic() - began:.0f} s"
        )
        time.sleep(3)
    say(f"certificate rotation: {stream.sent} Pod creations sent, {len(stream.failed)} failed")
    assert stream.sent > 20
    assert stream.failed == []


def test_helm_upgrade_keeps_serving(installed: Installed) -> None:
    apps = client.AppsV1Api(installed.api)
    admission = client.AdmissionregistrationV1Api(installed.api)
    with PodStream(installed.api, installed.prod) as stream:
        time.sleep(2)
        installed.helm(
            "upgrade",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "-f",
            installed.values_file,
            "--set",
            "webhooks.pods.timeoutSeconds=7",
            "--set",
            "webhook.podAnnotations.upgraded=yes",
        )
        time.sleep(2)
        poll(lambda: deployment_ready(apps, "airlock-webhook"), "the upgraded webhook Ready", 240)
        time.sleep(3)
    say(f"helm upgrade: {stream.sent} Pod creations sent, {len(stream.failed)} failed")
    assert stream.failed == []
    pods = next(
        h
        for h in admission.read_validating_webhook_configuration("airlock").webhooks
        if h.name == "pods.validate.airlock.dev"
    )
    assert pods.timeout_seconds == 7
    assert pods.client_config.ca_bundle  # the controller's caBundle survived the upgrade


def pods_of(installed: Installed, component: str) -> list[Any]:
    return list(
        installed.core.list_namespaced_pod(
            NAMESPACE, label_selector=f"app.kubernetes.io/component={component}"
        ).items
    )


def scrape(ip: str) -> str | None:
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/metrics", timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def test_the_controller_restarted_mid_audit_comes_back_with_reports_and_metrics(
    installed: Installed,
) -> None:
    apps = client.AppsV1Api(installed.api)
    (old,) = pods_of(installed, "controller")
    # a graceful delete withdraws its peering keep-alive at once; a killed one would leave it
    # to expire (kopf's 60 s lifetime) before the new replica may lead
    installed.core.delete_namespaced_pod(old.metadata.name, NAMESPACE)
    poll(
        lambda: (
            True
            if [p for p in pods_of(installed, "controller") if p.metadata.name != old.metadata.name]
            else None
        ),
        "a new controller pod",
        60,
    )
    poll(lambda: deployment_ready(apps, "airlock-controller"), "the new controller Ready", 180)

    def new_pod_metrics() -> str | None:
        # read the pod again each time: the Deployment may count the old pod as ready while the
        # new one has no address yet
        pods = [p for p in pods_of(installed, "controller") if p.metadata.name != old.metadata.name]
        if len(pods) != 1 or not pods[0].status.pod_ip:
            return None
        text = scrape(pods[0].status.pod_ip)
        return text if text and "airlock_audit_workloads{" in text else None

    text = poll(new_pod_metrics, "the new controller's audit metrics", 240)
    assert 'airlock_compliance_ratio{environment="dev"}' in text
    custom = client.CustomObjectsApi(installed.api)
    report = custom.get_namespaced_custom_object(
        "wgpolicyk8s.io", "v1alpha2", installed.dev, "policyreports", "airlock"
    )
    assert report["results"]


def test_policy_deleted_then_invalid_gives_one_answer_on_every_replica_and_restart(
    installed: Installed,
) -> None:
    """No policy: nothing is denied (audit everywhere). An invalid policy that lands while the
    policy check is off: the last valid generation stays in force, also in webhook pods that
    start afterwards (they read status.inForce)."""
    node, ns = installed.node, installed.prod
    custom = client.CustomObjectsApi(installed.api)
    apps = client.AppsV1Api(installed.api)
    bad_pod = json.dumps(pod_body("loose", "docker.io/library/python:latest", hardened=False))

    def verdict() -> bool:
        """True when prod denies the loose pod."""
        proc = node.kubectl("create", "-n", ns, "--dry-run=server", "-f", "-", stdin=bad_pod)
        return proc.returncode != 0

    def all_agree(expected: bool) -> bool | None:
        answers = [verdict() for _ in range(8)]  # the Service spreads them over both replicas
        return True if answers == [expected] * 8 else None

    assert all_agree(True)
    policy = custom.get_cluster_custom_object(
        "airlock.dev", "v1alpha1", "baselinepolicies", "default"
    )
    custom.delete_cluster_custom_object("airlock.dev", "v1alpha1", "baselinepolicies", "default")
    poll(lambda: all_agree(False), "both replicas to stop denying without a policy", 60)

    # back, valid, through helm (it owns the object)
    installed.helm(
        "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", installed.values_file
    )
    poll(lambda: all_agree(True), "the policy back in force", 60)
    current = custom.get_cluster_custom_object(
        "airlock.dev", "v1alpha1", "baselinepolicies", "default"
    )

    def recorded() -> bool | None:
        obj = custom.get_cluster_custom_object(
            "airlock.dev", "v1alpha1", "baselinepolicies", "default"
        )
        in_force = (obj.get("status") or {}).get("inForce") or {}
        return True if in_force.get("generation") == obj["metadata"]["generation"] else None

    poll(recorded, "the controller to record the generation in force", 60)
    # an invalid generation lands: the policy check is taken out of the way first, as when the
    # webhook was down (failurePolicy Ignore)
    admission = client.AdmissionregistrationV1Api(installed.api)
    config = admission.read_validating_webhook_configuration("airlock")
    index = next(
        i for i, h in enumerate(config.webhooks) if h.name == "policies.validate.airlock.dev"
    )
    admission.patch_validating_webhook_configuration(
        "airlock", [{"op": "remove", "path": f"/webhooks/{index}"}]
    )
    time.sleep(2)
    # valid for the CRD's schema, refused by Airlock: an allow-list entry matching everything
    custom.patch_cluster_custom_object(
        "airlock.dev",
        "v1alpha1",
        "baselinepolicies",
        "default",
        {"spec": {"detectors": {"allowValues": [".*"]}}},
    )

    def refused() -> bool | None:
        obj = custom.get_cluster_custom_object(
            "airlock.dev", "v1alpha1", "baselinepolicies", "default"
        )
        ready = [c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == "Ready"]
        return True if ready and ready[0]["status"] == "False" else None

    poll(refused, "the controller to mark the invalid generation", 60)
    time.sleep(3)
    assert all_agree(True)  # the last valid generation stays in force on both replicas
    restarted = node.kubectl("rollout", "restart", "-n", NAMESPACE, "deployment/airlock-webhook")
    assert restarted.returncode == 0, restarted.stderr
    time.sleep(2)
    poll(lambda: deployment_ready(apps, "airlock-webhook"), "the restarted webhook Ready", 240)
    assert all_agree(True)  # fresh replicas read the recorded generation
    del policy, current
    # put the valid policy back (helm restores the webhook entry and the spec)
    installed.helm(
        "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", installed.values_file
    )
    poll(
        lambda: (
            True
            if any(
                h.name == "policies.validate.airlock.dev"
                for h in admission.read_validating_webhook_configuration("airlock").webhooks
            )
            else None
        ),
        "helm to restore the policy webhook",
        30,
    )


def test_an_api_server_restart_leaves_the_webhook_serving_and_watching(
    installed: Installed,
) -> None:
    """The API server goes away and comes back (a control-plane upgrade): Airlock's pods keep
    running, its watches reconnect, and a namespace relabelled after the restart is judged by
    its new environment on every replica."""
    node = installed.node

    def airlock_pods() -> list[Any]:
        return pods_of(installed, "webhook") + pods_of(installed, "controller")

    # a rollout left by an earlier test settles first: its old pods drain (their /readyz fails
    # on purpose) and go away, which is not what this test is about
    apps = client.AppsV1Api(installed.api)
    poll(
        lambda: (
            True
            if all(deployment_ready(apps, d) for d in ("airlock-webhook", "airlock-controller"))
            and all(p.metadata.deletion_timestamp is None for p in airlock_pods())
            else None
        ),
        "Airlock's deployments settled, no pod terminating",
        180,
    )
    restarts = {
        p.metadata.name: p.status.container_statuses[0].restart_count for p in airlock_pods()
    }
    began = time.monotonic()
    localcluster.restart(node.run_dir, "kube-apiserver")
    say(f"kube-apiserver restarted in {time.monotonic() - began:.1f} s")
    ns = f"ml-moved-{uuid.uuid4().hex[:6]}"
    installed.core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={ENV_LABEL: "dev"}))
    )
    loose = json.dumps(pod_body("loose", "docker.io/library/python:latest", hardened=False))

    def denied() -> bool:
        proc = node.kubectl("create", "-n", ns, "--dry-run=server", "-f", "-", stdin=loose)
        return proc.returncode != 0

    try:
        poll(lambda: True if not any(denied() for _ in range(6)) else None, "dev to warn", 60)
        installed.core.patch_namespace(ns, {"metadata": {"labels": {ENV_LABEL: "prod"}}})
        poll(
            lambda: True if all(denied() for _ in range(6)) else None,
            "both replicas to see the namespace move to prod",
            60,
        )
        # kept running: the same pods, no container restarted, and Ready (the kubelet reports
        # probe results to the API server again once it is back)
        after = airlock_pods()
        assert {
            p.metadata.name: p.status.container_statuses[0].restart_count for p in after
        } == restarts
        poll(
            lambda: (
                True if all(p.status.container_statuses[0].ready for p in airlock_pods()) else None
            ),
            "Airlock's pods Ready after the API server restart",
            60,
        )
    finally:
        installed.core.delete_namespace(ns)


def test_no_secret_in_any_output_channel(installed: Installed) -> None:
    """The leaky pod runs in dev: its token must appear in no log, Event, metric, report or
    status Airlock wrote."""
    needles = (SECRET, SECRET[3:], SECRET[5:20])
    channels: dict[str, str] = {}
    for pod in installed.core.list_namespaced_pod(NAMESPACE).items:
        for previous in (False, True):
            try:
                channels[f"log {pod.metadata.name} previous={previous}"] = (
                    installed.core.read_namespaced_pod_log(
                        pod.metadata.name, NAMESPACE, previous=previous
                    )
                )
            except ApiException as err:
                if err.status not in (400, 404):
                    raise
        channels[f"metrics {pod.metadata.name}"] = scrape(pod.status.pod_ip) or ""
    events = installed.core.list_event_for_all_namespaces()
    channels["events"] = json.dumps(installed.api.sanitize_for_serialization(events))
    custom = client.CustomObjectsApi(installed.api)
    reports = custom.list_cluster_custom_object("wgpolicyk8s.io", "v1alpha2", "policyreports")
    channels["policyreports"] = json.dumps(reports)
    for plural in ("baselinepolicies", "policyexceptions"):
        objs = custom.list_cluster_custom_object("airlock.dev", "v1alpha1", plural)
        channels[plural] = json.dumps([o.get("status") for o in objs["items"]])
    assert "[REDACTED Hugging Face token" in channels["policyreports"]  # it was seen
    assert sum(len(text) for text in channels.values()) > 10_000
    leaks = [name for name, text in channels.items() if any(n in text for n in needles)]
    assert leaks == []


def leftovers(api: client.ApiClient, namespaces: list[str], release: str = RELEASE) -> list[str]:
    """Everything of a release that is still there after uninstall."""
    found: list[str] = []
    admission = client.AdmissionregistrationV1Api(api)
    for kind, lister in (
        ("ValidatingWebhookConfiguration", admission.list_validating_webhook_configuration),
        ("MutatingWebhookConfiguration", admission.list_mutating_webhook_configuration),
    ):
        found += [
            f"{kind}/{o.metadata.name}"
            for o in lister().items
            if o.metadata.name.startswith(release)
        ]
    rbac = client.RbacAuthorizationV1Api(api)
    found += [
        f"ClusterRole/{o.metadata.name}"
        for o in rbac.list_cluster_role().items
        if o.metadata.name.startswith(release + "-")
    ]
    found += [
        f"ClusterRoleBinding/{o.metadata.name}"
        for o in rbac.list_cluster_role_binding().items
        if o.metadata.name.startswith(release + "-")
    ]
    custom = client.CustomObjectsApi(api)
    found += [
        f"ClusterKopfPeering/{o['metadata']['name']}"
        for o in custom.list_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings")["items"]
        if o["metadata"]["name"].startswith(release)
    ]
    found += [
        f"BaselinePolicy/{o['metadata']['name']}"
        for o in custom.list_cluster_custom_object("airlock.dev", "v1alpha1", "baselinepolicies")[
            "items"
        ]
    ]
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)
    for ns in namespaces:
        found += [
            f"Pod {ns}/{p.metadata.name}"
            for p in core.list_namespaced_pod(ns).items
            if p.metadata.labels.get("app.kubernetes.io/part-of") == "airlock"
        ]
        found += [
            f"Deployment {ns}/{d.metadata.name}" for d in apps.list_namespaced_deployment(ns).items
        ]
        found += [
            f"Secret {ns}/{s.metadata.name}"
            for s in core.list_namespaced_secret(ns).items
            if s.metadata.name.startswith(release)
        ]
        found += [f"Service {ns}/{s.metadata.name}" for s in core.list_namespaced_service(ns).items]
        found += [
            f"PolicyReport {ns}/{r['metadata']['name']}"
            for r in custom.list_namespaced_custom_object(
                "wgpolicyk8s.io", "v1alpha2", ns, "policyreports"
            )["items"]
        ]
    return found


def test_uninstall_removes_everything_airlock_created(installed: Installed) -> None:
    began = time.monotonic()
    installed.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--timeout", "120s")
    took = time.monotonic() - began
    say(f"helm uninstall: {took:.1f} s")
    namespaces = [NAMESPACE, installed.dev, installed.prod]

    def clean() -> list[str] | None:
        left = leftovers(installed.api, namespaces)
        return [] if not left else None

    poll(clean, "every object of the release to be gone", 120)
    # nothing fail-closed is left: a Pod in a checked namespace is admitted at once
    proc = installed.node.kubectl(
        "create",
        "-n",
        installed.prod,
        "--dry-run=server",
        "-f",
        "-",
        stdin=json.dumps(pod_body("after", "docker.io/library/python:latest", hardened=False)),
    )
    assert proc.returncode == 0, proc.stderr


def test_uninstall_without_a_runnable_image_leaves_no_webhook(
    installed: Installed, tmp_path: Path
) -> None:
    """The image cannot be pulled, so no Airlock pod ever runs: uninstall must still remove the
    fail-closed Pod webhook (a pre-delete hook Job would have hung here)."""
    node = installed.node
    helm = Helm(node, tmp_path)
    broken = values(node)
    broken["image"] = {
        "repository": "registry.invalid/airlock",
        "tag": "0.0.0",
        "pullPolicy": "IfNotPresent",
    }
    vfile = write_values(tmp_path / "values.yaml", broken)
    helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace", "-f", vfile
    )
    admission = client.AdmissionregistrationV1Api(installed.api)
    assert admission.read_validating_webhook_configuration("airlock").webhooks
    began = time.monotonic()
    helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--timeout", "120s")
    took = time.monotonic() - began
    say(f"helm uninstall with an image that cannot be pulled: {took:.1f} s")
    assert took < 60
    poll(
        lambda: (
            [] if not leftovers(installed.api, [NAMESPACE, installed.dev, installed.prod]) else None
        ),
        "every object of the broken release to be gone",
        120,
    )
