"""Fixtures for the end-to-end tests: a real control plane (etcd, kube-apiserver,
kube-controller-manager) on 127.0.0.1, started once per session.

The cluster lives in .local/e2e-cluster, never in `make cluster-up`'s .local/cluster, so a test
run cannot stop a developer's demo cluster. Set AIRLOCK_E2E_KUBECONFIG to run against an
existing cluster instead (nothing is then started or stopped).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_rig import REPO_ROOT, E2ECluster, WebhookCA, localcluster
from kubernetes import client, config
from kubernetes.client.rest import ApiException

E2E_DIR = Path(__file__).resolve().parent
E2E_RUN_DIR = REPO_ROOT / ".local" / "e2e-cluster"
NAMESPACE_READY_TIMEOUT_S = 60.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e needs the control plane, so `-m 'not e2e'` must skip it."""
    for item in items:
        if item.path.is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_cluster() -> Iterator[E2ECluster]:
    """The session's cluster: reused from AIRLOCK_E2E_KUBECONFIG, else started and stopped here."""
    reuse = os.environ.get("AIRLOCK_E2E_KUBECONFIG")
    if reuse:
        kubeconfig = Path(reuse).resolve()
        bins = Path(os.environ.get("AIRLOCK_BIN") or localcluster.ensure_binaries())
        started = False
    else:
        cluster = localcluster.start(E2E_RUN_DIR)
        # a cluster this run found already running belongs to another run: leave it up
        kubeconfig, bins, started = cluster.kubeconfig, cluster.bin_dir, not cluster.reused
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield E2ECluster(
            api_client=api,
            kubeconfig=kubeconfig,
            server=str(api.configuration.host),
            bin_dir=bins,
            started_here=started,
        )
    finally:
        api.close()
        if started:
            localcluster.stop(E2E_RUN_DIR)


@pytest.fixture(scope="session")
def api_client(e2e_cluster: E2ECluster) -> client.ApiClient:
    return e2e_cluster.api_client


@pytest.fixture(scope="session")
def kubeconfig(e2e_cluster: E2ECluster) -> Path:
    return e2e_cluster.kubeconfig


@pytest.fixture(scope="session")
def webhook_ca(e2e_cluster: E2ECluster, tmp_path_factory: pytest.TempPathFactory) -> WebhookCA:
    """The cluster's webhook CA, or (for a reused cluster without one) a CA made for the session.

    Any CA works: the webhook configuration's caBundle is what the apiserver trusts.
    """
    if not e2e_cluster.started_here:
        cert = os.environ.get("AIRLOCK_WEBHOOK_CA_CERT")
        key = os.environ.get("AIRLOCK_WEBHOOK_CA_KEY")
        if cert and key:
            return WebhookCA(Path(cert), Path(key))
        cert_path, key_path = localcluster.make_ca(
            tmp_path_factory.mktemp("webhook-ca"), "webhook-ca", "airlock-e2e-webhook-ca"
        )
        return WebhookCA(Path(cert_path), Path(key_path))
    pki = E2E_RUN_DIR / "pki"
    return WebhookCA(pki / "webhook-ca.crt", pki / "webhook-ca.key")


def _wait_for_default_service_account(core: client.CoreV1Api, namespace: str) -> None:
    # The ServiceAccount admission plugin rejects Pods until kube-controller-manager has made
    # the namespace's `default` ServiceAccount.
    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT_S
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except ApiException as err:
            if err.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


NamespaceFactory = Callable[..., str]


@pytest.fixture
def namespace_factory(api_client: client.ApiClient) -> Iterator[NamespaceFactory]:
    """make(prefix="e2e", labels=None) -> name of a new namespace, deleted after the test."""
    core = client.CoreV1Api(api_client)
    created: list[str] = []

    def make(prefix: str = "e2e", labels: dict[str, str] | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels or {}))
        core.create_namespace(body)
        created.append(name)
        _wait_for_default_service_account(core, name)
        return name

    yield make
    for name in created:
        try:
            core.delete_namespace(name)
        except ApiException as err:
            if err.status != 404:
                raise


@pytest.fixture
def fresh_namespace(request: pytest.FixtureRequest, namespace_factory: NamespaceFactory) -> str:
    """A uniquely named namespace for one test, whose default ServiceAccount exists.

    Labels: `@pytest.mark.parametrize("fresh_namespace", [{"k": "v"}], indirect=True)`.
    """
    labels: dict[str, Any] | None = getattr(request, "param", None)
    return namespace_factory(labels=labels)
