"""Types and helpers shared by the e2e conftest and tests (a plain module, so tests can
import it; conftest modules are not meant to be imported)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_localcluster() -> ModuleType:
    # hack/ is not a package; load the one file so the fixture and `make cluster-up` share code.
    name = "airlock_hack_localcluster"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "hack" / "localcluster.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


localcluster = _load_localcluster()


@dataclass(frozen=True)
class E2ECluster:
    """A reachable cluster and what the tests need to drive it."""

    api_client: client.ApiClient
    kubeconfig: Path
    server: str
    bin_dir: Path
    started_here: bool

    def tool(self, name: str) -> str:
        """Path of a built binary (kubectl, helm): never the machine's older ones."""
        return str(self.bin_dir / name)


@dataclass(frozen=True)
class WebhookCA:
    """A CA the apiserver is told to trust for a webhook (through caBundle)."""

    cert: Path
    key: Path

    def issue_serving_cert(
        self, out_dir: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    ) -> tuple[Path, Path]:
        """(cert, key) of a serving certificate for hosts, signed by this CA."""
        cert, key = localcluster.issue_serving_cert(self.cert, self.key, out_dir, hosts)
        return Path(cert), Path(key)


T = TypeVar("T")
CRD_DIR = REPO_ROOT / "manifests" / "crds"


def poll(fetch: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """``fetch()`` until it returns something other than None; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def message_of(exc: ApiException) -> str:
    """The ``message`` of an API error's Status body (a denial's text)."""
    return str(json.loads(exc.body or "{}").get("message", ""))


def install_crds(api_client: client.ApiClient, timeout: float = 30.0) -> None:
    """Create (or replace) every CRD of manifests/crds and wait until each is served.

    They are left installed: other modules use them, and deleting a CRD deletes its objects.
    """
    ext = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    docs = [
        doc
        for path in sorted(CRD_DIR.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    for doc in docs:
        name = doc["metadata"]["name"]
        try:
            ext.create_custom_resource_definition(doc)
        except ApiException as err:
            if err.status != 409:
                raise
            current = ext.read_custom_resource_definition(name)
            doc["metadata"]["resourceVersion"] = current.metadata.resource_version
            ext.replace_custom_resource_definition(name, doc)

    def established(name: str) -> bool | None:
        crd = ext.read_custom_resource_definition(name)
        conditions = (crd.status.conditions or []) if crd.status else []
        ok = any(c.type == "Established" and c.status == "True" for c in conditions)
        return True if ok else None

    def served(doc: dict[str, Any]) -> bool | None:
        spec = doc["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("served"))
        try:
            custom.list_cluster_custom_object(
                spec["group"], version, spec["names"]["plural"], limit=1
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return True

    for doc in docs:
        name = doc["metadata"]["name"]
        poll(lambda name=name: established(name), f"CRD {name} to be established", timeout)
        poll(lambda doc=doc: served(doc), f"CRD {name} to be served", timeout)
