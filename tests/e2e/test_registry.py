"""Digest pinning end to end: a real kube-apiserver calls ``airlock webhook`` (a subprocess,
``--read-pull-secrets``), which resolves tags against real registries on loopback
(tests/support/registry.py) and reads pull Secrets and ServiceAccounts through the API.

Objects are created with ``dryRun=All``: the API server runs every admission webhook and
returns the object as it would be stored, so what Airlock patched is read back without pods
that never schedule (this control plane has no node).
"""

from __future__ import annotations

import base64
import json
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from airlock_procs import Airlock, AirlockStartError
from e2e_rig import REPO_ROOT, E2ECluster, WebhookCA
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.registry import PushedImage, Registries

pytestmark = pytest.mark.e2e

GROUP, VERSION = "airlock.dev", "v1alpha1"


def pod(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "main", "image": image}], **spec},
    }


class Rig:
    def __init__(self, cluster: E2ECluster, airlock: Airlock, regs: Registries) -> None:
        self.core = client.CoreV1Api(cluster.api_client)
        self.apps = client.AppsV1Api(cluster.api_client)
        self.airlock = airlock
        self.regs = regs

    def dry_pod(self, namespace: str, body: dict[str, Any]) -> Any:
        return self.core.create_namespaced_pod(namespace, body, dry_run="All")


@pytest.fixture(scope="module")
def rig(
    e2e_cluster: E2ECluster,
    webhook_ca: WebhookCA,
    registries: Registries,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rig]:
    kubectl = [e2e_cluster.tool("kubectl"), "--kubeconfig", str(e2e_cluster.kubeconfig)]
    subprocess.run(
        [*kubectl, "apply", "--server-side", "--force-conflicts", "-f",
         str(REPO_ROOT / "manifests" / "crds")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    subprocess.run(
        [*kubectl, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    work = tmp_path_factory.mktemp("airlock-registry")
    cert, key = webhook_ca.issue_serving_cert(work / "tls")
    tag = uuid.uuid4().hex[:8]
    airlock = Airlock(
        api=e2e_cluster.api_client,
        kubeconfig=e2e_cluster.kubeconfig,
        ca_cert=webhook_ca.cert,
        serving_cert=cert,
        serving_key=key,
        workdir=work / "run",
        policy_name=f"e2e-registry-{tag}",
        tag=tag,
        with_controller=False,
        webhook_args=("--read-pull-secrets",),
    )
    pem = registries.ca.pem.decode()
    custom = client.CustomObjectsApi(e2e_cluster.api_client)
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "baselinepolicies",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BaselinePolicy",
            "metadata": {"name": airlock.policy_name},
            "spec": {
                "environments": [{"name": "dev", "mode": "warn"}],
                "mutations": {"pinImageDigests": True},
                "registries": [
                    {"host": registries.public.host, "caBundle": pem},
                    {"host": registries.private.host, "caBundle": pem},
                ],
            },
        },
    )
    the_rig = Rig(e2e_cluster, airlock, registries)
    try:
        try:
            airlock.start()
            airlock.register()
        except AirlockStartError:
            print(airlock.tails())
            raise
        yield the_rig
    finally:
        airlock.stop()
        try:
            custom.delete_cluster_custom_object(
                GROUP, VERSION, "baselinepolicies", airlock.policy_name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture
def ns(rig: Rig, namespace_factory: Callable[..., str]) -> str:
    return namespace_factory("e2e-registry")


def wait_pinned(rig: Rig, namespace: str, image: str, want: str, **spec: Any) -> Any:
    """The dry-run Pod once the webhook configuration is in force and pins ``image``."""
    deadline = time.monotonic() + 60
    while True:
        created = rig.dry_pod(namespace, pod(f"p-{uuid.uuid4().hex[:6]}", image, **spec))
        if created.spec.containers[0].image == want or time.monotonic() > deadline:
            return created
        time.sleep(0.25)


def test_pod_tag_is_pinned_through_the_api_server(rig: Rig, ns: str) -> None:
    image: PushedImage = rig.regs.pusher("public").image(
        "e2e/app", "1.0", platforms=("amd64", "arm64")
    )
    ref = f"{rig.regs.public.host}/e2e/app:1.0"
    created = wait_pinned(rig, ns, ref, f"{ref}@{image.digest}")
    assert created.spec.containers[0].image == f"{ref}@{image.digest}"


def test_deployment_tag_is_pinned(rig: Rig, ns: str) -> None:
    image = rig.regs.pusher("public").image("e2e/server", "3.1")
    ref = f"{rig.regs.public.host}/e2e/server:3.1"
    wait_pinned(rig, ns, ref, f"{ref}@{image.digest}")  # the webhook is in force
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "server"},
        "spec": {
            "selector": {"matchLabels": {"app": "server"}},
            "template": {
                "metadata": {"labels": {"app": "server"}},
                "spec": {"containers": [{"name": "main", "image": ref}]},
            },
        },
    }
    created = rig.apps.create_namespaced_deployment(ns, body, dry_run="All")
    assert created.spec.template.spec.containers[0].image == f"{ref}@{image.digest}"


def test_private_image_is_pinned_with_the_service_accounts_pull_secret(rig: Rig, ns: str) -> None:
    regs = rig.regs
    image = regs.pusher("private").image("e2e/private", "9")
    ref = f"{regs.private.host}/e2e/private:9"
    auth = base64.b64encode(f"{regs.username}:{regs.password}".encode()).decode()
    config = json.dumps({"auths": {regs.private.host: {"auth": auth}}})
    rig.core.create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "regcred"},
            "type": "kubernetes.io/dockerconfigjson",
            "stringData": {".dockerconfigjson": config},
        },
    )
    rig.core.create_namespaced_service_account(
        ns, {"metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "regcred"}]}
    )
    # without credentials (the default ServiceAccount has none): admitted unpinned
    public = regs.pusher("public").image("e2e/probe", "1")
    probe = f"{regs.public.host}/e2e/probe:1"
    wait_pinned(rig, ns, probe, f"{probe}@{public.digest}")
    plain = rig.dry_pod(ns, pod("anonymous", ref))
    assert plain.spec.containers[0].image == ref
    created = rig.dry_pod(ns, pod("with-secret", ref, serviceAccountName="puller"))
    assert created.spec.containers[0].image == f"{ref}@{image.digest}"
    assert regs.password not in rig.airlock.tails()


def test_added_latency_of_pinning(rig: Rig, ns: str) -> None:
    """What pinning adds to a Pod creation through the API server: the first lookup of a
    tag (cold: token + HEAD) and later ones (cached), against an already pinned image."""
    pusher = rig.regs.pusher("public")
    image = pusher.image("e2e/latency", "1.0")
    ref = f"{rig.regs.public.host}/e2e/latency:1.0"
    pinned_ref = f"{ref}@{image.digest}"
    warm = pusher.image("e2e/warmup", "1")
    warm_ref = f"{rig.regs.public.host}/e2e/warmup:1"
    wait_pinned(rig, ns, warm_ref, f"{warm_ref}@{warm.digest}")

    def create(image_ref: str) -> float:
        start = time.perf_counter()
        rig.dry_pod(ns, pod(f"l-{uuid.uuid4().hex[:6]}", image_ref))
        return time.perf_counter() - start

    cold = create(ref)
    cached = [create(ref) for _ in range(20)]
    baseline = [create(pinned_ref) for _ in range(20)]
    added = statistics.median(cached) - statistics.median(baseline)
    print(
        f"\nPod create (dry-run) through the API server: cold lookup {cold * 1000:.1f} ms, "
        f"cached median {statistics.median(cached) * 1000:.1f} ms, "
        f"already pinned median {statistics.median(baseline) * 1000:.1f} ms "
        f"(pinning adds {added * 1000:.1f} ms when cached)"
    )
    assert statistics.median(cached) < 1.0
