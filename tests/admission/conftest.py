"""The real admission server, in-process, over real TLS, fed AdmissionReview JSON as the API
server sends it.

The server runs on its own event loop in a background thread (pytest has no asyncio plugin here);
each request is an aiohttp client call on a short-lived loop in the test thread, verifying the
test CA, so every test goes through TLS, HTTP parsing and JSON exactly as in a cluster.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from airlock.admission import (
    AdmissionSettings,
    MetricsSettings,
    ServerSettings,
    StateStore,
    TLSSettings,
    WebhookServer,
    WebhookSettings,
)

from tests.support.pki import CA, TLSFiles, issue_serving_cert, make_ca

T = TypeVar("T")

# -- certificates (the test PKI is tests/support/pki.py) ------------------------------------


@pytest.fixture(scope="session")
def session_ca() -> CA:
    return make_ca()


@pytest.fixture
def tls_files(tmp_path: Path, session_ca: CA) -> TLSFiles:
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    der = issue_serving_cert(session_ca, cert_file, key_file, "airlock-webhook-1")
    return TLSFiles(session_ca, cert_file, key_file, der)


# -- policy and cluster state ------------------------------------------------------------------

POLICY: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "BaselinePolicy",
    "metadata": {"name": "default", "generation": 3},
    "spec": {
        "defaultEnvironment": "dev",
        "environments": [
            {"name": "dev", "mode": "warn", "allowedRegistries": ["registry.corp.example/"]},
            {
                "name": "prod",
                "mode": "enforce",
                "allowedRegistries": ["registry.corp.example/prod/"],
            },
            {"name": "staging", "mode": "audit"},
        ],
        "exceptions": {"maxDays": 30},
    },
}

NAMESPACES: dict[str, dict[str, str]] = {
    "ml-dev": {"airlock.dev/environment": "dev"},
    "ml-prod": {"airlock.dev/environment": "prod", "airlock.dev/owner": "team-ml"},
    "ml-staging": {"airlock.dev/environment": "staging"},
    "kube-system": {},
}


def loaded_store(synced: bool = True, store: StateStore | None = None) -> StateStore:
    store = store or StateStore()
    assert store.set_policy(POLICY) is None
    for name, labels in NAMESPACES.items():
        store.set_namespace(name, {"kubernetes.io/metadata.name": name, **labels})
    if synced:
        for what in ("policy", "namespaces", "exceptions"):
            store.mark_synced(what)  # type: ignore[arg-type]
    return store


# -- the server in a thread --------------------------------------------------------------------


class ServerThread:
    """A WebhookServer running on its own loop in a daemon thread."""

    def __init__(self, settings: WebhookSettings, store: StateStore, tls: TLSFiles) -> None:
        self.settings = settings
        self.store = store
        self.tls = tls
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = WebhookServer(settings, store)

    def start(self) -> None:
        self.thread.start()
        self.call(self.server.start())
        self.server_port = self.server.port  # kept: the property fails once stopped

    def stop(self) -> None:
        self.call(self.server.stop())
        self.call(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the server's loop (store writes happen there, as with kopf watchers)."""

        async def wrapper() -> T:
            return fn(*args)

        return self.call(wrapper())

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.port}"

    # -- client side (a fresh loop per call, in the test thread) --

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        async def go() -> tuple[int, bytes]:
            async with (
                aiohttp.ClientSession() as session,
                session.request(
                    method,
                    self.base + path,
                    data=body,
                    headers=headers,
                    ssl=self.tls.client_context(),
                ) as resp,
            ):
                return resp.status, await resp.read()

        return asyncio.run(go())

    def post_review(self, path: str, review: dict[str, Any]) -> dict[str, Any]:
        """POST a review, expect HTTP 200 and a well-formed answer with the request's uid."""
        status, raw = self.request(
            "POST", path, json.dumps(review).encode(), {"Content-Type": "application/json"}
        )
        assert status == 200, raw
        answer = json.loads(raw)
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        assert answer["response"]["uid"] == review["request"]["uid"]
        answer["_raw"] = raw.decode()
        return answer

    def metrics_text(self) -> str:
        async def go() -> str:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{self.server.metrics_port}/metrics") as resp,
            ):
                assert resp.status == 200
                return await resp.text()

        return asyncio.run(go())


def test_settings(tls: TLSFiles, **admission: Any) -> WebhookSettings:
    return WebhookSettings(
        tls=TLSSettings(cert_file=tls.cert_file, key_file=tls.key_file, reload_interval=0.1),
        server=ServerSettings(host="127.0.0.1", port=0, shutdown_timeout=0.5, drain_seconds=0),
        metrics=MetricsSettings(host="127.0.0.1", port=0),
        admission=replace(AdmissionSettings(), **admission),
    )


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


ServerFactory = Callable[..., ServerThread]


@pytest.fixture
def make_server(tls_files: TLSFiles) -> Iterator[ServerFactory]:
    started: list[ServerThread] = []

    def factory(
        store: StateStore | None = None,
        settings: WebhookSettings | None = None,
        **admission: Any,
    ) -> ServerThread:
        srv = ServerThread(
            settings or test_settings(tls_files, **admission),
            store if store is not None else loaded_store(),
            tls_files,
        )
        srv.start()
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()


@pytest.fixture
def webhook(make_server: ServerFactory) -> ServerThread:
    return make_server()


# -- AdmissionReview requests as the API server writes them ------------------------------------

_PLURALS = {
    "Pod": "pods",
    "Deployment": "deployments",
    "ConfigMap": "configmaps",
    "PyTorchJob": "pytorchjobs",
    "BaselinePolicy": "baselinepolicies",
    "PolicyException": "policyexceptions",
}


def admission_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    user: str = "alice@corp.example",
    dry_run: bool = False,
    uid: str | None = None,
) -> dict[str, Any]:
    ref = obj if obj is not None else old
    assert ref is not None
    group, _, version = ref["apiVersion"].rpartition("/")
    kind = ref["kind"]
    meta = ref.get("metadata", {})
    gvk = {"group": group, "version": version, "kind": kind}
    gvr = {"group": group, "version": version, "resource": _PLURALS[kind]}
    options_kind = {
        "CREATE": "CreateOptions",
        "UPDATE": "UpdateOptions",
        "DELETE": "DeleteOptions",
    }[operation]
    request: dict[str, Any] = {
        "uid": uid or str(uuid.uuid4()),
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": meta.get("name", ""),
        "operation": operation,
        "userInfo": {
            "username": user,
            "uid": "3f1c6a9e-0000-4000-8000-000000000001",
            "groups": ["system:authenticated", "ml-engineers"],
        },
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
        "options": {
            "apiVersion": "meta.k8s.io/v1",
            "kind": options_kind,
            "fieldManager": "kubectl",
        },
    }
    if "namespace" in meta:
        request["namespace"] = meta["namespace"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
