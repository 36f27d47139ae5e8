"""The exception lifecycle task, peering, registries and credentials, without a cluster."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest
from airlock import metrics
from airlock.admission.store import StateStore
from airlock.controller import build_watch_registry
from airlock.controller.compliance import Compliance, ComplianceSettings
from airlock.controller.kube import Kube, connection_info, load_configuration
from airlock.controller.policy import PolicyCache
from airlock.controller.policy_exceptions import ExceptionLifecycle, StatusWriteError
from airlock.controller.runner import Controller, peering_allows
from airlock.controller.settings import (
    ControllerSettings,
    add_arguments,
    controller_kopf_settings,
    process_identity,
    settings_from_args,
    watcher_kopf_settings,
)
from airlock.model import APPROVED_BY_ANNOTATION, CREATED_BY_ANNOTATION

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class FakeStatusEndpoint:
    """Applies status merge patches to stored objects, like the API server's status endpoint.

    It fakes the lifecycle's own two callbacks (``write_status``, ``list_objects``), which the
    controller implements on the Kubernetes seam; the seam itself is faked once, in
    tests/support/kube.py.
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.writes: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_with: StatusWriteError | None = None

    async def write(
        self, namespace: str, name: str, changes: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        if self.fail_with is not None:
            raise self.fail_with
        self.writes.append((namespace, name, changes))
        obj = self.objects.get((namespace, name))
        if obj is None:
            return None
        status = obj.setdefault("status", {})
        for key, value in changes.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        return json.loads(json.dumps(obj))

    async def list(self) -> list[Mapping[str, Any]]:
        return list(self.objects.values())


def pex(name: str, expires: datetime, *, approved: bool = True) -> dict[str, Any]:
    annotations = {CREATED_BY_ANNOTATION: "alice"}
    if approved:
        annotations[APPROVED_BY_ANNOTATION] = "bob"
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {
            "name": name,
            "namespace": "ml",
            "generation": 1,
            "creationTimestamp": "2026-03-01T11:00:00Z",
            "annotations": annotations,
        },
        "spec": {
            "rules": ["run-as-root"],
            "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "owner": "vision",
            "reason": "waiting for the rebuilt base image",
        },
    }


def gauge(metric: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(metric, labels)


def make(
    api: FakeStatusEndpoint, clock: Clock, cache: PolicyCache | None = None, **kwargs: Any
) -> ExceptionLifecycle:
    return ExceptionLifecycle(
        cache or PolicyCache("default"),
        write_status=api.write,
        list_objects=api.list,
        clock=clock,
        sweep_interval=60.0,
        **kwargs,
    )


def add(api: FakeStatusEndpoint, life: ExceptionLifecycle, obj: dict[str, Any]) -> None:
    api.objects[(obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
    life.observe(obj)


def test_sweep_writes_status_and_wakes_exactly_at_expiry() -> None:
    api, clock = FakeStatusEndpoint(), Clock()
    life = make(api, clock)
    add(api, life, pex("soon", T0 + timedelta(seconds=5)))
    add(api, life, pex("later", T0 + timedelta(days=3, minutes=30), approved=False))

    delay = asyncio.run(life.sweep())

    assert delay == pytest.approx(5.05)
    written = {name: changes for _, name, changes in api.writes}
    assert written["soon"]["state"] == "Active"
    assert written["later"]["state"] == "PendingApproval"
    assert gauge("airlock_exceptions", state="Active") == 1
    assert gauge("airlock_exceptions", state="PendingApproval") == 1
    assert gauge("airlock_exceptions", state="Expired") == 0
    assert gauge(
        "airlock_exception_expiry_timestamp_seconds", namespace="ml", name="soon"
    ) == pytest.approx((T0 + timedelta(seconds=5)).timestamp())

    # Nothing changed: a second sweep writes nothing.
    api.writes.clear()
    asyncio.run(life.sweep())
    assert api.writes == []

    # Past the deadline: only "soon" is rewritten, to Expired.
    clock.now = T0 + timedelta(seconds=5, milliseconds=50)
    delay = asyncio.run(life.sweep())
    assert [(name, changes["state"]) for _, name, changes in api.writes] == [("soon", "Expired")]
    assert api.objects[("ml", "soon")]["status"]["timeLeft"] == "expired"
    assert gauge("airlock_exceptions", state="Expired") == 1
    assert gauge("airlock_exceptions", state="Active") == 0
    assert delay == pytest.approx(60.0)  # the pending one expires in days: the sweep interval


def test_policy_change_makes_a_long_exception_invalid() -> None:
    api, clock, cache = FakeStatusEndpoint(), Clock(), PolicyCache("default")
    life = make(api, clock, cache)
    add(api, life, pex("long", T0 + timedelta(days=30)))
    asyncio.run(life.sweep())
    assert api.objects[("ml", "long")]["status"]["state"] == "Active"

    changed = cache.observe(
        {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "BaselinePolicy",
            "metadata": {"name": "default", "generation": 2},
            "spec": {"exceptions": {"maxDays": 7}},
        }
    )
    assert changed
    assert gauge("airlock_policy_info", policy="default", generation="2") == 1
    asyncio.run(life.sweep())
    status = api.objects[("ml", "long")]["status"]
    assert status["state"] == "Invalid"
    assert "more than 7 days" in status["message"]


def test_invalid_policy_is_counted_once_per_generation_and_keeps_the_last_valid() -> None:
    cache = PolicyCache("default")
    envelope = {"apiVersion": "airlock.dev/v1alpha1", "kind": "BaselinePolicy"}
    valid = {**envelope, "metadata": {"name": "default", "generation": 1}, "spec": {}}
    bad = {
        **envelope,
        "metadata": {"name": "default", "generation": 2, "uid": "u"},
        "spec": {"exceptions": {"maxDays": 0}},
    }
    assert cache.observe(valid)
    before = gauge("airlock_policy_load_errors_total") or 0.0
    assert not cache.observe(bad)
    assert not cache.observe(bad)  # the same generation again (a status update): not recounted
    assert gauge("airlock_policy_load_errors_total") == before + 1
    assert cache.generation == 1
    assert cache.spec.exceptions.max_days == 90
    assert not cache.observe({**envelope, "metadata": {"name": "other"}, "spec": {}})


def test_gone_objects_and_failed_writes() -> None:
    api, clock = FakeStatusEndpoint(), Clock()
    life = make(api, clock)
    obj = pex("gone", T0 + timedelta(days=1))
    life.observe(obj)  # never stored in the fake API: the write answers "not found"
    asyncio.run(life.sweep())
    assert ("ml", "gone") not in life.objects

    add(api, life, pex("flaky", T0 + timedelta(days=1)))
    api.fail_with = StatusWriteError("HTTP 500 Internal Server Error")
    assert asyncio.run(life.sweep()) == pytest.approx(5.0)  # retried soon, not in a minute
    assert ("ml", "flaky") in life.objects


def test_resync_forgets_deletions_that_were_missed() -> None:
    api, clock = FakeStatusEndpoint(), Clock()
    life = make(api, clock)
    add(api, life, pex("kept", T0 + timedelta(days=1)))
    add(api, life, pex("deleted", T0 + timedelta(days=1)))
    del api.objects[("ml", "deleted")]

    asyncio.run(life.resync())

    assert set(life.objects) == {("ml", "kept")}


def test_standby_replica_writes_nothing_and_exports_nothing() -> None:
    api, clock = FakeStatusEndpoint(), Clock()

    async def never() -> bool:
        return False

    life = make(api, clock, leading=never)
    add(api, life, pex("x", T0 + timedelta(days=1)))
    metrics.EXCEPTIONS.labels("Active").set(3)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(life.run(stop))
        await asyncio.sleep(0.05)
        life.stop(stop)
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert api.writes == []
    assert gauge("airlock_exceptions", state="Active") is None


def test_run_loop_wakes_on_observe_and_stops() -> None:
    api, clock = FakeStatusEndpoint(), Clock()
    life = make(api, clock)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(life.run(stop))
        await asyncio.sleep(0.05)
        add(api, life, pex("new", T0 + timedelta(days=1)))
        for _ in range(100):
            if api.writes:
                break
            await asyncio.sleep(0.01)
        life.stop(stop)
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(scenario())
    assert [name for _, name, _ in api.writes] == ["new"]


# --- peering -------------------------------------------------------------------------------------


def peer(priority: int, seconds_ago: float, lifetime: int = 60) -> dict[str, Any]:
    seen = T0 - timedelta(seconds=seconds_ago)
    return {"priority": priority, "lifetime": lifetime, "lastseen": seen.isoformat()}


@pytest.mark.parametrize(
    ("peers", "expected"),
    [
        ({}, True),
        ({"me": peer(50, 0)}, True),
        ({"me": peer(50, 0), "other": peer(10, 5)}, True),
        ({"me": peer(50, 0), "other": peer(90, 5)}, False),
        ({"me": peer(50, 0), "other": peer(50, 5)}, False),  # a tie pauses both (kopf's rule)
        ({"me": peer(50, 0), "other": peer(90, 61)}, True),  # dead: its keep-alive lapsed
        ({"me": peer(50, 0), "other": peer(90, 20, lifetime=10)}, True),
        ({"other": {"priority": "x", "lastseen": "yesterday"}}, True),  # unreadable: ignored
    ],
)
def test_peering_allows(peers: dict[str, Any], expected: bool) -> None:
    assert peering_allows(peers, identity="me", priority=50, now=T0) is expected


# --- registries and settings ---------------------------------------------------------------------


def test_webhook_registry_is_read_only() -> None:
    # kopf writes progress/diff-base annotations and finalizers only for change handlers,
    # daemons and timers, and registers webhooks only for admission handlers. This reads
    # kopf's private registries on purpose: if they are renamed the test fails, it cannot pass.
    registry = build_watch_registry(StateStore("default"), login=False)
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    assert registry._webhooks.get_all_handlers() == []
    # RBAC is selected by plural only (exact), the others by any name
    watched = {
        h.selector.any_name or h.selector.plural for h in registry._watching.get_all_handlers()
    }
    indexed = {
        h.selector.any_name or h.selector.plural for h in registry._indexing.get_all_handlers()
    }
    assert (
        watched
        == indexed
        == {
            "namespaces",
            "baselinepolicies",
            "policyexceptions",
            "rolebindings",
            "clusterrolebindings",
            "clusterroles",
        }
    )
    # A new registry each time: nothing lands in kopf's global one.
    assert build_watch_registry(StateStore("default"), login=False) is not registry


def test_compliance_registry_shares_the_webhook_feeder() -> None:
    # The audit learns the cluster state through the same feeder as the webhook: the same three
    # kinds, the same index/event pair per kind, under its own prefix; nothing writes.
    registry = kopf.OperatorRegistry()
    Compliance(ComplianceSettings(), kube=Kube(custom=object())).register(registry)
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    indexed = {h.id: h.selector for h in registry._indexing.get_all_handlers()}
    watched = {h.id: h.selector for h in registry._watching.get_all_handlers()}
    assert {i.removesuffix("-state") for i in indexed} == {
        i.removesuffix("-events") for i in watched
    }
    webhook = build_watch_registry(StateStore("default"), login=False)
    for h in webhook._indexing.get_all_handlers():
        assert indexed[f"compliance-{h.id}"] == h.selector
    assert indexed["audit-pods-state"].plural == "pods"


def test_controller_registry_writes_no_finalizers(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, token="t0k3n")
    seen: list[Controller] = []
    controller = Controller(
        ControllerSettings(kubeconfig=str(kubeconfig), standalone=True), plugins=[seen.append]
    )
    try:
        assert seen == [controller]  # plugins get the wired controller (registry, api, ...)
        assert asyncio.run(controller.is_leading()) is True  # standalone: always
        registry = controller.registry
        assert registry._changing.get_all_handlers() == []
        assert registry._spawning.get_all_handlers() == []
        assert {h.selector.any_name for h in registry._watching.get_all_handlers()} == {
            "baselinepolicies",
            "policyexceptions",
        }
        assert len(registry._activities.get_all_handlers()) == 1  # our login only
    finally:
        controller.api.close()


def test_kopf_settings_choices() -> None:
    webhook = watcher_kopf_settings()
    assert webhook.posting.enabled is False
    assert webhook.peering.standalone is True
    assert webhook.watching.server_timeout == 300
    controller = controller_kopf_settings(ControllerSettings(peering_name="p1"))
    assert controller.peering.name == "p1"
    assert controller.peering.mandatory is True
    assert controller.posting.enabled is True
    standalone = controller_kopf_settings(ControllerSettings(standalone=True))
    assert standalone.peering.mandatory is False
    assert standalone.peering.standalone is True


def test_settings_from_flags_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # what the kubelet injects for Services named airlock-controller and -metrics
    monkeypatch.setenv("AIRLOCK_CONTROLLER_METRICS_PORT", "tcp://10.0.0.7:8080")
    monkeypatch.setenv("AIRLOCK_CONTROLLER_PORT", "tcp://10.0.0.8:443")
    monkeypatch.setenv("AIRLOCK_CONTROLLER_POLICY_NAME", "from-env")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = settings_from_args(parser.parse_args([]))
    assert defaults.metrics_port == 8080
    assert defaults.policy_name == "default"
    assert defaults.create_peering is True
    settings = settings_from_args(
        parser.parse_args(
            [
                "--standalone",
                "--metrics-port",
                "0",
                "--liveness-endpoint",
                "",
                "--policy-name",
                "prod-baseline",
                "--no-create-peering",
            ]
        )
    )
    assert settings.policy_name == "prod-baseline"
    assert settings.create_peering is False
    assert settings.standalone is True
    assert settings.metrics_port == 0
    assert settings.liveness_endpoint is None
    assert settings.priority is None
    assert ControllerSettings(priority=7).effective_priority() == 7
    drawn = {ControllerSettings().effective_priority() for _ in range(5)}
    assert len(drawn) > 1  # random per replica, so two replicas do not tie


# --- credentials ---------------------------------------------------------------------------------


def write_kubeconfig(tmp_path: Path, *, token: str | None = None) -> Path:
    user: dict[str, Any]
    if token:
        user = {"token": token}
    else:
        user = {
            "client-certificate-data": base64.b64encode(b"CERT").decode(),
            "client-key-data": base64.b64encode(b"KEY").decode(),
        }
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://127.0.0.1:6443",
                    "certificate-authority-data": base64.b64encode(b"CA").decode(),
                },
            }
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(doc))
    return path


def test_connection_info_from_token_kubeconfig(tmp_path: Path) -> None:
    info = connection_info(
        load_configuration(str(write_kubeconfig(tmp_path, token="t0k3n"))),
        default_namespace="airlock-system",
    )
    assert info.server == "https://127.0.0.1:6443"
    assert (info.scheme, info.token) == ("Bearer", "t0k3n")
    assert info.insecure is False
    assert Path(str(info.ca_path)).read_bytes() == b"CA"
    assert info.default_namespace == "airlock-system"


def test_connection_info_from_client_certificate(tmp_path: Path) -> None:
    info = connection_info(load_configuration(str(write_kubeconfig(tmp_path))))
    assert info.token is None
    assert Path(str(info.certificate_path)).read_bytes() == b"CERT"
    assert Path(str(info.private_key_path)).read_bytes() == b"KEY"


def test_fields_pruned_by_the_api_server_are_not_rewritten_forever() -> None:
    # An older CRD without status.timeLeft prunes it: the stored status never shows it, but
    # writing the same thing again (and again, on every sweep) would be pointless load.
    api, clock = FakeStatusEndpoint(), Clock()
    original = api.write

    async def pruning_write(
        namespace: str, name: str, changes: dict[str, Any]
    ) -> Mapping[str, Any] | None:
        result = await original(namespace, name, changes)
        if result is not None:
            result = dict(result)
            result["status"] = {k: v for k, v in result["status"].items() if k != "timeLeft"}
            result["metadata"] = {**result["metadata"], "resourceVersion": "7"}
        return result

    life = ExceptionLifecycle(
        PolicyCache("default"), write_status=pruning_write, clock=clock, sweep_interval=60.0
    )
    add(api, life, pex("p", T0 + timedelta(days=2, minutes=30)))
    asyncio.run(life.sweep())
    asyncio.run(life.sweep())
    assert len(api.writes) == 1
    clock.now = T0 + timedelta(hours=1)  # timeLeft ticks: written once more
    asyncio.run(life.sweep())
    assert [changes.get("timeLeft") for _, _, changes in api.writes] == ["2d 0h", "1d 23h"]


def test_watch_handlers_feed_the_store() -> None:
    # Calls the registered handlers directly (kopf's private registry lists them), with the
    # bodies kopf would pass; the e2e test runs the same handlers under kopf itself.
    store = StateStore("default")
    registry = build_watch_registry(store, login=False)
    index = {h.id: h.fn for h in registry._indexing.get_all_handlers()}
    events = {h.id: h.fn for h in registry._watching.get_all_handlers()}
    envelope = {"apiVersion": "airlock.dev/v1alpha1", "kind": "BaselinePolicy"}

    def policy(generation: int, spec: dict[str, Any]) -> Any:
        meta = {"name": "default", "uid": "u1", "generation": generation}
        return kopf.Body({**envelope, "metadata": meta, "spec": spec})

    async def scenario() -> None:
        ns = kopf.Body({"metadata": {"name": "ml", "labels": {"airlock.dev/environment": "prod"}}})
        await index["namespace-state"](body=ns)
        valid = policy(1, {"environments": [{"name": "dev"}, {"name": "prod"}]})
        await index["policy-state"](body=valid)
        assert not store.ready  # listed, but kopf has not opened the gate yet
        await events["namespace-events"](type=None, body=ns)
        assert store.ready
        assert store.context.environment_of("ml").name == "prod"
        assert store.policy_generation == "1"

        errors = gauge("airlock_policy_load_errors_total") or 0.0
        invalid = policy(2, {"detectors": {"allowValues": [".*"]}})
        await index["policy-state"](body=invalid)
        await index["policy-state"](body=invalid)  # a status update: same generation
        assert gauge("airlock_policy_load_errors_total") == errors + 1
        assert store.policy_generation == "1"  # the last valid one stays

        await events["namespace-events"](type="DELETED", body=ns)
        assert "ml" not in store.context.namespace_labels
        await events["policy-events"](type="DELETED", body=invalid)
        assert store.policy_generation is None

    asyncio.run(scenario())


def test_process_identity_needs_no_passwd_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    """kopf's own identity detection calls getpass.getuser(), which raises for a UID without a
    passwd entry (a container's runAsUser); Airlock always names itself."""
    import getpass

    def no_user() -> str:
        raise KeyError("getpwuid(): uid not found: 23456")

    monkeypatch.setattr(getpass, "getuser", no_user)
    monkeypatch.delenv("POD_NAME", raising=False)
    assert process_identity("airlock-webhook").startswith("airlock-webhook@")
    monkeypatch.setenv("POD_NAME", "airlock-webhook-5d9c-abcde")
    assert process_identity("airlock-webhook") == "airlock-webhook-5d9c-abcde"
