"""The webhook's watches: kopf, standalone and read-only, keeping a ClusterState current.

``airlock webhook`` runs :func:`run_watchers` in the same event loop as its aiohttp server. The
registry (:func:`build_watch_registry`) holds only ``@kopf.index`` and ``@kopf.on.event``
handlers, the two kinds for which kopf writes nothing to the cluster: no progress or diff-base
annotations, no finalizers, no status. Events are off too (:func:`watcher_kopf_settings`).

Readiness without a window of stale state. The store is fed by *index* handlers, which kopf
runs over the initial listing of every indexed resource (namespaces, BaselinePolicies,
PolicyExceptions) before it runs any other handler. The first ``on.event`` call therefore
proves that all three listings are fully in the store, and that is when the kinds are marked
synced (and ``/readyz`` turns 200). Deletions arrive through ``on.event`` (kopf never calls index
handlers for them). A separate priming LIST before kopf would leave a gap: an object deleted
between that LIST and kopf's own would stay in the store forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from airlock.cluster import ClusterState, SyncKind
from airlock.controller._operator import run_operator
from airlock.controller.kube import CRD_VERSION, register_login
from airlock.controller.settings import process_identity, watcher_kopf_settings
from airlock.model import API_GROUP

__all__ = ["build_watch_registry", "run_watchers"]

_log = logging.getLogger(__name__)


def _names(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def build_watch_registry(
    store: ClusterState, *, kubeconfig: str | None = None, login: bool = True
) -> kopf.OperatorRegistry:
    """A fresh registry with the webhook's read-only handlers feeding ``store``.

    A new registry per call (never kopf's global one, nothing registered at import), so the
    controller process can register a different set, and tests can run several.
    ``login=False`` leaves authentication to kopf's defaults (only for unit tests).
    """
    registry = kopf.OperatorRegistry()
    synced = False

    def mark_synced() -> None:
        nonlocal synced
        if not synced:
            synced = True
            kinds: tuple[SyncKind, ...] = ("policy", "namespaces", "exceptions")
            for kind in kinds:
                store.mark_synced(kind)
            _log.info("initial listings loaded; the webhook is ready")

    # --- namespaces: labels name the environment -------------------------------------------

    @kopf.index("v1", "namespaces", id="namespace-state", registry=registry)
    async def namespace_state(body: kopf.Body, **_: Any) -> None:
        store.set_namespace(_names(body)[1], dict(body.get("metadata", {}).get("labels") or {}))

    @kopf.on.event("v1", "namespaces", id="namespace-events", registry=registry)
    async def namespace_events(type: str | None, body: kopf.Body, **_: Any) -> None:
        mark_synced()
        if type == "DELETED":
            store.delete_namespace(_names(body)[1])

    # --- the BaselinePolicy in force -------------------------------------------------------

    # Every version is handed to the store: what is in force may come from the controller's
    # status (status.inForce, for a replica starting while the stored generation is invalid),
    # and the store counts each refused generation once; the log says so once too.

    @kopf.index(API_GROUP, CRD_VERSION, "baselinepolicies", id="policy-state", registry=registry)
    async def policy_state(body: kopf.Body, **_: Any) -> None:
        meta = body.get("metadata", {})
        name = str(meta.get("name") or "")
        if name != store.policy_name:
            return
        error = store.set_policy(body)
        if error is not None and store.tracker.new_refusal:
            in_force = store.in_force
            kept = (
                f"generation {in_force.generation} stays in force ({in_force.source})"
                if in_force.source != "absent"
                else "no valid generation is known: every rule audits"
            )
            # The controller reports the full error in the policy's status; the log names the
            # failing field paths only.
            paths = ", ".join(path for path, _ in error.errors) or str(error)
            _log.warning("BaselinePolicy %s refused, %s: %s", name, kept, paths)

    @kopf.on.event(
        API_GROUP, CRD_VERSION, "baselinepolicies", id="policy-events", registry=registry
    )
    async def policy_events(type: str | None, body: kopf.Body, **_: Any) -> None:
        mark_synced()
        if type == "DELETED":
            name = _names(body)[1]
            store.delete_policy(name)
            if name == store.policy_name:
                _log.warning(
                    "BaselinePolicy %s deleted: nothing is denied or patched, every rule audits",
                    name,
                )

    # --- PolicyExceptions ------------------------------------------------------------------

    @kopf.index(API_GROUP, CRD_VERSION, "policyexceptions", id="exception-state", registry=registry)
    async def exception_state(body: kopf.Body, **_: Any) -> None:
        store.set_exception(body)

    @kopf.on.event(
        API_GROUP, CRD_VERSION, "policyexceptions", id="exception-events", registry=registry
    )
    async def exception_events(type: str | None, body: kopf.Body, **_: Any) -> None:
        mark_synced()
        if type == "DELETED":
            store.delete_exception(*_names(body))

    if login:
        register_login(registry, kubeconfig)
    return registry


async def run_watchers(
    store: ClusterState,
    *,
    kubeconfig: str | None,
    policy_name: str,
    stop: asyncio.Event,
    on_signal: Callable[[], None] | None = None,
) -> None:
    """Watch namespaces, BaselinePolicies and PolicyExceptions into ``store`` until ``stop``.

    Runs kopf in the current event loop (standalone, cluster-wide). In the main thread, once
    kopf is up, SIGINT and SIGTERM call ``on_signal`` (default: set ``stop``; kopf's own
    handlers are replaced), so the process decides the order in which its parts stop
    (:mod:`airlock.webhook_process`). When kopf ends for any other reason (a fatal error)
    ``stop`` is set too: better no webhook than one serving a picture that no longer updates.

    Mind kopf's shutdown: it treats every task created after it started as its own, and
    cancels those still running 5 s after it stopped. Stop the HTTP listeners promptly once
    ``stop`` is set, and start the server's long-lived tasks before calling this.
    """
    if store.policy_name != policy_name:
        raise ValueError(
            f"the store follows BaselinePolicy {store.policy_name!r}, not {policy_name!r}"
        )
    registry = build_watch_registry(store, kubeconfig=kubeconfig)
    try:
        await run_operator(
            stop,
            on_signal or stop.set,
            registry=registry,
            settings=watcher_kopf_settings(),
            standalone=True,
            clusterwide=True,
            identity=process_identity("airlock-webhook"),
        )
    finally:
        stop.set()
