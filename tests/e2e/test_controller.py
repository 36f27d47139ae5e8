"""The kopf side against a real API server: ``airlock controller`` (policy status, exception
lifecycle, metrics, peering) as a subprocess, and the webhook's watchers feeding a StateStore.

Every wait is bounded (``poll``/``until``), every process and object started here is stopped or
deleted here. Names carry a random suffix: the cluster is shared with other e2e modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from airlock.admission.store import StateStore
from airlock.controller import run_watchers
from airlock.engine import evaluate
from airlock.model import APPROVED_BY_ANNOTATION, CREATED_BY_ANNOTATION
from e2e_rig import install_crds
from e2e_rig import poll as rig_poll
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.e2e

GROUP, VERSION = "airlock.dev", "v1alpha1"
START_TIMEOUT = 30.0
STATUS_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0

T = TypeVar("T")


def poll(fetch: Callable[[], T | None], what: str, timeout: float = STATUS_TIMEOUT) -> T:
    return rig_poll(fetch, what, timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def suffix() -> str:
    return uuid.uuid4().hex[:8]


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- CRDs ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crds(api_client: client.ApiClient) -> None:
    """Apply manifests/crds and wait until each is served (left installed afterwards)."""
    install_crds(api_client)


# --- the controller process ----------------------------------------------------------------------


@dataclass
class RunningController:
    process: subprocess.Popen[bytes]
    policy_name: str
    peering_name: str
    metrics_port: int
    liveness_port: int
    log: Path

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def sample(self, line_prefix: str) -> float | None:
        for line in self.metrics().splitlines():
            if line.startswith(line_prefix + " "):
                return float(line.rsplit(" ", 1)[1])
        return None


@contextlib.contextmanager
def controller_process(
    kubeconfig: Path,
    log: Path,
    *,
    policy_name: str,
    peering_name: str,
    priority: int,
    extra_args: tuple[str, ...] = (),
    before_alive: Callable[[RunningController], None] | None = None,
) -> Iterator[RunningController]:
    """``python -m airlock.controller`` until the block ends; then SIGTERM, and exit code 0."""
    running = RunningController(
        process=None,  # type: ignore[arg-type]
        policy_name=policy_name,
        peering_name=peering_name,
        metrics_port=free_port(),
        liveness_port=free_port(),
        log=log,
    )
    argv = [
        sys.executable,
        "-m",
        "airlock.controller",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        "default",
        "--policy-name",
        policy_name,
        "--peering-name",
        peering_name,
        "--priority",
        str(priority),
        "--metrics-host",
        "127.0.0.1",
        "--metrics-port",
        str(running.metrics_port),
        "--liveness-endpoint",
        f"http://127.0.0.1:{running.liveness_port}/healthz",
        "--sweep-interval",
        "60",
        *extra_args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRLOCK_CONTROLLER_")}
    with log.open("wb") as out:
        running.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        if before_alive is not None:
            before_alive(running)

        def alive() -> bool | None:
            if running.process.poll() is not None:
                pytest.fail(f"controller exited early:\n{log.read_text()}")
            try:
                url = f"http://127.0.0.1:{running.liveness_port}/healthz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    return True if response.status == 200 else None
            except OSError:
                return None

        poll(alive, "the controller's liveness endpoint", START_TIMEOUT)
        yield running
    finally:
        running.process.send_signal(signal.SIGTERM)
        try:
            code = running.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait(timeout=10)
            pytest.fail(f"controller ignored SIGTERM for {STOP_TIMEOUT:.0f} s")
    assert code == 0, log.read_text()


def delete_quietly(
    custom: client.CustomObjectsApi, group: str, version: str, plural: str, name: str
) -> None:
    try:
        custom.delete_cluster_custom_object(group, version, plural, name)
    except ApiException as err:
        if err.status != 404:
            raise


@pytest.fixture(scope="module")
def controller(
    crds: None, kubeconfig: Path, api_client: client.ApiClient, tmp_path_factory: Any
) -> Iterator[RunningController]:
    tag = suffix()
    custom = client.CustomObjectsApi(api_client)
    try:
        with controller_process(
            kubeconfig,
            tmp_path_factory.mktemp("controller") / "controller.log",
            policy_name=f"e2e-ctl-{tag}",
            peering_name=f"e2e-ctl-{tag}",
            priority=1000,
        ) as running:
            yield running
    finally:
        delete_quietly(custom, GROUP, VERSION, "baselinepolicies", f"e2e-ctl-{tag}")
        delete_quietly(custom, GROUP, VERSION, "baselinepolicies", f"e2e-ctl-{tag}-other")
        delete_quietly(custom, "kopf.dev", "v1", "clusterkopfpeerings", f"e2e-ctl-{tag}")


def policy_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BaselinePolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


def apply_policy(custom: client.CustomObjectsApi, name: str, spec: dict[str, Any]) -> int:
    """Create or replace a BaselinePolicy; returns its generation."""
    try:
        obj = custom.create_cluster_custom_object(
            GROUP, VERSION, "baselinepolicies", policy_body(name, spec)
        )
    except ApiException as err:
        if err.status != 409:
            raise
        current = custom.get_cluster_custom_object(GROUP, VERSION, "baselinepolicies", name)
        body = policy_body(name, spec)
        body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        obj = custom.replace_cluster_custom_object(GROUP, VERSION, "baselinepolicies", name, body)
    return int(obj["metadata"]["generation"])


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def policy_status_at(
    custom: client.CustomObjectsApi, name: str, generation: int
) -> dict[str, Any] | None:
    obj = custom.get_cluster_custom_object(GROUP, VERSION, "baselinepolicies", name)
    status = obj.get("status") or {}
    return obj if status.get("observedGeneration") == generation else None


def test_policy_status_follows_generations(
    controller: RunningController, api_client: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api_client)
    name = controller.policy_name
    spec = {"environments": [{"name": "dev", "mode": "warn"}, {"name": "prod"}]}
    generation = apply_policy(custom, name, spec)

    obj = poll(lambda: policy_status_at(custom, name, generation), "status of generation 1")
    ready = condition(obj, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Valid")
    assert ready["message"] == "valid: 2 environment(s): dev, prod"
    assert ready["observedGeneration"] == generation
    assert obj["status"]["activeGeneration"] == generation
    assert obj["status"]["environments"] == 2
    # No kopf bookkeeping on the object: no finalizer, no progress annotations.
    assert not obj["metadata"].get("finalizers")
    assert not any("kopf" in key for key in (obj["metadata"].get("annotations") or {}))
    info = poll(
        lambda: controller.sample(
            f'airlock_policy_info{{generation="{generation}",policy="{name}"}}'
        ),
        "airlock_policy_info for generation 1",
    )
    assert info == 1.0

    # An invalid generation can land when no webhook checks it (none is registered here): it
    # is reported with every failing field path, and the previous generation stays in force.
    bad = {**spec, "detectors": {"allowValues": ["(unclosed", ".*"]}}
    errors_before = controller.sample("airlock_policy_load_errors_total") or 0.0
    bad_generation = apply_policy(custom, name, bad)
    assert bad_generation == generation + 1
    obj = poll(lambda: policy_status_at(custom, name, bad_generation), "status of generation 2")
    ready = condition(obj, "Ready")
    active = condition(obj, "Active")
    assert ready is not None
    assert active is not None
    assert (ready["status"], ready["reason"]) == ("False", "Invalid")
    assert "spec.detectors.allowValues[0]: invalid regular expression" in ready["message"]
    assert "spec.detectors.allowValues[1]: pattern matches the empty string" in ready["message"]
    assert (active["status"], active["reason"]) == ("True", "PreviousGenerationInForce")
    assert obj["status"]["activeGeneration"] == generation
    assert controller.sample("airlock_policy_load_errors_total") == errors_before + 1

    # Fixed again: Ready flips back and the new generation is in force.
    good_generation = apply_policy(custom, name, {"environments": [{"name": "prod"}]})
    obj = poll(lambda: policy_status_at(custom, name, good_generation), "status of generation 3")
    ready = condition(obj, "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("True", "Valid")
    assert obj["status"]["activeGeneration"] == good_generation


def test_invalid_policy_that_is_not_selected(
    controller: RunningController, api_client: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api_client)
    name = f"{controller.policy_name}-other"
    generation = apply_policy(
        custom, name, {"environments": [{"name": "dev"}], "detectors": {"allowValues": ["("]}}
    )
    obj = poll(lambda: policy_status_at(custom, name, generation), "status of the other policy")
    ready, active = condition(obj, "Ready"), condition(obj, "Active")
    assert ready is not None
    assert active is not None
    assert (ready["status"], ready["reason"]) == ("False", "Invalid")
    assert "spec.detectors.allowValues[0]" in ready["message"]
    assert (active["status"], active["reason"]) == ("False", "NotSelected")

    def warning_event() -> client.CoreV1Event | None:
        events = client.CoreV1Api(api_client).list_namespaced_event("default").items
        for event in events:
            if event.involved_object.name == name and event.reason == "InvalidPolicy":
                return event
        return None

    event = poll(warning_event, "a Warning Event about the invalid policy")
    assert event.type == "Warning"
    assert "spec.detectors.allowValues[0]" in event.message


# --- PolicyExceptions ----------------------------------------------------------------------------


def exception_body(
    name: str,
    expires: datetime,
    *,
    created_by: str | None = "alice",
    approved_by: str | None = None,
) -> dict[str, Any]:
    annotations = {}
    if created_by:
        annotations[CREATED_BY_ANNOTATION] = created_by
    if approved_by:
        annotations[APPROVED_BY_ANNOTATION] = approved_by
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PolicyException",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "rules": ["run-as-root"],
            "match": {"kinds": ["Deployment"]},
            "expires": rfc3339(expires),
            "owner": "vision-team",
            "reason": "the base image runs as root until the January rebuild",
        },
    }


def exception_in_state(
    custom: client.CustomObjectsApi, namespace: str, name: str, state: str
) -> dict[str, Any] | None:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "policyexceptions", name)
    return obj if (obj.get("status") or {}).get("state") == state else None


def test_exception_without_approval_is_pending(
    controller: RunningController, api_client: client.ApiClient, fresh_namespace: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    expires = datetime.now(UTC) + timedelta(hours=20)
    body = exception_body("pending", expires)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, fresh_namespace, "policyexceptions", body
    )

    obj = poll(
        lambda: exception_in_state(custom, fresh_namespace, "pending", "PendingApproval"),
        "PendingApproval",
    )
    status = obj["status"]
    assert "waiting for approval by someone other than alice" in status["message"]
    assert status["createdBy"] == "alice"
    assert "approvedBy" not in status
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    active = condition(obj, "Active")
    assert active is not None
    assert (active["status"], active["reason"]) == ("False", "PendingApproval")
    assert not obj["metadata"].get("finalizers")

    # Approved by a second person (the webhook writes this annotation; here the test does).
    custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        fresh_namespace,
        "policyexceptions",
        "pending",
        {"metadata": {"annotations": {APPROVED_BY_ANNOTATION: "bob"}}},
        _content_type="application/merge-patch+json",
    )
    obj = poll(
        lambda: exception_in_state(custom, fresh_namespace, "pending", "Active"),
        "Active after approval",
    )
    assert obj["status"]["approvedBy"] == "bob"


def test_approved_exception_is_active_then_expires_on_time(
    controller: RunningController, api_client: client.ApiClient, fresh_namespace: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    # Whole seconds (RFC 3339 as users write it), at least 4 s away.
    expires = (datetime.now(UTC) + timedelta(seconds=6)).replace(microsecond=0)
    body = exception_body("short", expires, approved_by="bob")
    custom.create_namespaced_custom_object(
        GROUP, VERSION, fresh_namespace, "policyexceptions", body
    )

    obj = poll(lambda: exception_in_state(custom, fresh_namespace, "short", "Active"), "Active", 5)
    assert obj["status"]["approvedBy"] == "bob"
    assert obj["status"]["message"] == f"active until {expires.isoformat()}"
    expiry_metric = (
        f'airlock_exception_expiry_timestamp_seconds{{name="short",namespace="{fresh_namespace}"}}'
    )
    assert poll(lambda: controller.sample(expiry_metric), "the expiry metric") == pytest.approx(
        expires.timestamp()
    )

    obj = poll(
        lambda: exception_in_state(custom, fresh_namespace, "short", "Expired"), "Expired", 20
    )
    seen_late_by = (datetime.now(UTC) - expires).total_seconds()
    # The sweep interval is 60 s: turning Expired within a few seconds proves the wake-up at
    # the deadline (polling here adds up to 0.2 s, the API round trips a little more).
    assert seen_late_by < 3.0, f"Expired only {seen_late_by:.1f} s after the deadline"
    print(f"Expired seen {seen_late_by:.2f} s after the deadline")
    assert obj["status"]["message"].startswith("expired at")
    assert condition(obj, "Active") is not None
    assert (condition(obj, "Active") or {})["status"] == "False"
    assert (
        poll(
            lambda: controller.sample('airlock_exceptions{state="Expired"}') or None,
            "the Expired count",
        )
        >= 1.0
    )


def test_exception_longer_than_policy_maximum_is_invalid(
    controller: RunningController, api_client: client.ApiClient, fresh_namespace: str
) -> None:
    custom = client.CustomObjectsApi(api_client)
    apply_policy(custom, controller.policy_name, {"exceptions": {"maxDays": 1}})
    try:
        body = exception_body("long", datetime.now(UTC) + timedelta(days=3), approved_by="bob")
        custom.create_namespaced_custom_object(
            GROUP, VERSION, fresh_namespace, "policyexceptions", body
        )
        obj = poll(
            lambda: exception_in_state(custom, fresh_namespace, "long", "Invalid"), "Invalid"
        )
        assert "expires more than 1 days after creation" in obj["status"]["message"]
        # The policy's maximum is raised: the same object becomes Active without being touched.
        apply_policy(custom, controller.policy_name, {"exceptions": {"maxDays": 30}})
        poll(
            lambda: exception_in_state(custom, fresh_namespace, "long", "Active"),
            "Active under the longer maximum",
        )
    finally:
        custom.delete_cluster_custom_object(
            GROUP, VERSION, "baselinepolicies", controller.policy_name
        )


def test_second_replica_stands_by(
    controller: RunningController,
    api_client: client.ApiClient,
    kubeconfig: Path,
    tmp_path: Path,
) -> None:
    custom = client.CustomObjectsApi(api_client)

    def peers() -> dict[str, Any]:
        obj = custom.get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", controller.peering_name
        )
        return dict(obj.get("status") or {})

    assert [info["priority"] for info in peers().values()] == [1000]
    log = tmp_path / "standby.log"
    with controller_process(
        kubeconfig,
        log,
        policy_name=controller.policy_name,
        peering_name=controller.peering_name,
        priority=10,
    ) as standby:
        both = poll(lambda: peers() if len(peers()) == 2 else None, "the standby's keep-alive")
        assert sorted(info["priority"] for info in both.values()) == [10, 1000]
        time.sleep(2)  # a few peering rounds
        # kopf starts a mandatory-peering operator paused and resumes it only when no peer
        # outranks it: the leader logged the resumption, the standby must not.
        assert "Resuming operations" in controller.log.read_text()
        assert "Resuming operations" not in log.read_text()
        # Standing by, it exports no exception numbers (the leader's are the truth).
        assert "airlock_exceptions{" not in standby.metrics()
        assert "airlock_exceptions{" in controller.metrics()
    # Its keep-alive is withdrawn on a graceful stop.
    poll(lambda: True if len(peers()) == 1 else None, "the standby's keep-alive to go")


def _run_kopf(scenario: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` of a scenario that runs kopf's watchers in this process. kopf leaves some
    of its API connections to the loop's teardown; their sockets are collected here, where the
    ResourceWarning is expected, not in whichever later test the collector happens to run (a
    flake seen once in CI: six unclosed sockets to the API server, raised in this file)."""
    try:
        return asyncio.run(scenario)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def test_a_restart_with_an_invalid_stored_policy_keeps_the_last_valid_generation(
    controller: RunningController, api_client: client.ApiClient, kubeconfig: Path
) -> None:
    """Replica A sees generation 1 and then an invalid generation 2; replica B starts after
    generation 2 landed. Both apply generation 1 (B reads it from status.inForce, which the
    controller records), so they give one verdict."""
    custom = client.CustomObjectsApi(api_client)
    name = controller.policy_name
    good = {"environments": [{"name": "dev", "mode": "warn"}, {"name": "prod"}]}
    generation = apply_policy(custom, name, good)

    def recorded() -> int | None:
        obj = custom.get_cluster_custom_object(GROUP, VERSION, "baselinepolicies", name)
        in_force = (obj.get("status") or {}).get("inForce") or {}
        # the stored spec, with the CRD's defaults filled in
        return in_force.get("generation") if in_force.get("spec") == obj["spec"] else None

    assert poll(recorded, "the controller to record the generation in force") == generation
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "nowhere"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }

    async def replica(change: Callable[[], None] | None) -> tuple[Any, list[tuple[str, str]]]:
        store = StateStore(name)
        stop = asyncio.Event()
        watchers = asyncio.create_task(
            run_watchers(store, kubeconfig=str(kubeconfig), policy_name=name, stop=stop)
        )
        try:
            await until(lambda: store.ready, "the store to be ready", 30)
            if change is not None:
                await asyncio.get_running_loop().run_in_executor(None, change)
                await until(lambda: store.policy_error is not None, "the refused generation", 30)
            verdict = evaluate(pod, store.context)
            return store.in_force, sorted((f.rule, f.action.value) for f in verdict.findings)
        finally:
            stop.set()
            await asyncio.wait_for(watchers, timeout=STOP_TIMEOUT)

    invalid = {**good, "detectors": {"allowValues": [".*"]}}

    async def both() -> tuple[tuple[Any, list[tuple[str, str]]], ...]:
        # one after the other in one loop; kopf closes its connections shortly after stopping
        a = await replica(lambda: apply_policy(custom, name, invalid))
        await asyncio.sleep(0.5)
        b = await replica(None)
        await asyncio.sleep(0.5)
        return a, b

    (a_in_force, a_verdict), (b_in_force, b_verdict) = _run_kopf(both())
    assert (a_in_force.source, a_in_force.generation) == ("last-valid", generation)
    assert (b_in_force.source, b_in_force.generation) == ("recorded", generation)
    assert a_in_force.spec == b_in_force.spec
    assert a_verdict == b_verdict
    assert ("privileged-container", "warn") in a_verdict  # dev (the default) warns


def test_with_no_create_peering_the_controller_waits_for_the_charts_peering_object(
    crds: None, api_client: client.ApiClient, kubeconfig: Path, tmp_path: Path
) -> None:
    """The chart creates the ClusterKopfPeering; a controller that created it first made one
    `helm install` in three fail with `already exists`. With --no-create-peering it waits."""
    custom = client.CustomObjectsApi(api_client)
    name = f"e2e-wait-{suffix()}"
    log = tmp_path / "controller.log"
    chart_labels = {"app.kubernetes.io/managed-by": "Helm"}

    def missing() -> bool:
        try:
            custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
        except ApiException as err:
            if err.status == 404:
                return True
            raise
        return False

    def helm_creates_it_later(running: RunningController) -> None:
        poll(
            lambda: True if "waiting for the ClusterKopfPeering" in log.read_text() else None,
            "the controller to say it waits",
        )
        time.sleep(2)
        assert running.process.poll() is None, log.read_text()
        assert missing(), "the controller created the peering object itself"
        custom.create_cluster_custom_object(
            "kopf.dev",
            "v1",
            "clusterkopfpeerings",
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "ClusterKopfPeering",
                "metadata": {"name": name, "labels": chart_labels},
            },
        )

    try:
        with controller_process(
            kubeconfig,
            log,
            policy_name=name,
            peering_name=name,
            priority=500,
            extra_args=("--no-create-peering",),
            before_alive=helm_creates_it_later,
        ):
            obj = poll(
                lambda: (
                    found
                    if (
                        found := custom.get_cluster_custom_object(
                            "kopf.dev", "v1", "clusterkopfpeerings", name
                        )
                    ).get("status")
                    else None
                ),
                "the controller's keep-alive in the chart's peering object",
            )
            assert obj["metadata"]["labels"] == chart_labels
    finally:
        delete_quietly(custom, "kopf.dev", "v1", "clusterkopfpeerings", name)


# --- the webhook's watchers ----------------------------------------------------------------------


async def until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> float:
    """Await ``predicate``; return how long it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def test_watchers_keep_the_store_current(
    crds: None, api_client: client.ApiClient, kubeconfig: Path, fresh_namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    policy_name = f"e2e-watch-{suffix()}"
    namespace_before = core.read_namespace(fresh_namespace)
    store = StateStore(policy_name)
    timings: dict[str, float] = {}

    async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))

    async def scenario() -> None:
        stop = asyncio.Event()
        watchers = asyncio.create_task(
            run_watchers(store, kubeconfig=str(kubeconfig), policy_name=policy_name, stop=stop)
        )
        try:
            timings["ready"] = await until(lambda: store.ready, "the store to be ready", 30)
            assert fresh_namespace in store.context.namespace_labels
            assert store.policy_generation is None  # no such policy yet: the built-in default

            await call(
                core.patch_namespace,
                fresh_namespace,
                {"metadata": {"labels": {"airlock.dev/environment": "prod"}}},
            )
            timings["label"] = await until(
                lambda: (
                    store.context.labels_of(fresh_namespace).get("airlock.dev/environment")
                    == "prod"
                ),
                "the namespace label",
            )

            spec = {"environments": [{"name": "dev"}, {"name": "prod", "mode": "audit"}]}
            await call(apply_policy, custom, policy_name, spec)
            timings["policy"] = await until(
                lambda: store.policy_generation == "1", "the new policy"
            )
            env = store.context.environment_of(fresh_namespace)
            assert (env.name, env.mode.value) == ("prod", "audit")

            # An invalid change is refused; the last valid policy stays in force.
            await call(
                apply_policy, custom, policy_name, {**spec, "detectors": {"allowValues": [".*"]}}
            )
            await until(lambda: store.policy_error is not None, "the refused policy")
            assert store.policy_generation == "1"
            assert [p for p, _ in store.policy_error.errors] == ["spec.detectors.allowValues[0]"]

            expires = datetime.now(UTC) + timedelta(hours=2)
            body = exception_body("watched", expires, approved_by="bob")
            await call(
                custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                fresh_namespace,
                "policyexceptions",
                body,
            )
            await until(
                lambda: (
                    [r.name for r in store.context.exceptions.get(fresh_namespace, ())]
                    == ["watched"]
                ),
                "the exception in force",
            )
            await call(
                custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                fresh_namespace,
                "policyexceptions",
                "watched",
            )
            timings["delete"] = await until(
                lambda: (fresh_namespace, "watched") not in store.exceptions,
                "the deleted exception to go",
            )

            await call(
                custom.delete_cluster_custom_object, GROUP, VERSION, "baselinepolicies", policy_name
            )
            await until(lambda: store.policy_generation is None, "the deleted policy to go")
        finally:
            stop.set()
            await asyncio.wait_for(watchers, timeout=STOP_TIMEOUT)

    try:
        _run_kopf(scenario())
    finally:
        try:
            custom.delete_cluster_custom_object(GROUP, VERSION, "baselinepolicies", policy_name)
        except ApiException as err:
            if err.status != 404:
                raise
    for what, seconds in timings.items():
        assert seconds < 10, f"{what} took {seconds:.1f} s"
    # Read-only: the watchers wrote nothing to the namespace (the test's label patch aside).
    namespace_after = core.read_namespace(fresh_namespace)
    assert namespace_after.metadata.finalizers == namespace_before.metadata.finalizers
    assert not any("kopf" in key for key in (namespace_after.metadata.annotations or {}))
    print("watcher latencies (s):", {k: round(v, 3) for k, v in timings.items()})
