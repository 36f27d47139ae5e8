"""One kopf watch feeder for both processes: the cluster state, and any other watched kind.

Both ``airlock webhook`` (:func:`run_watchers`, in the same event loop as its aiohttp server) and
``airlock controller``'s compliance side (:mod:`airlock.controller.compliance`) learn about the
cluster through :func:`feed`: one ``@kopf.index`` handler for every upsert and one
``@kopf.on.event`` handler for deletions, the two kinds for which kopf writes nothing to the
cluster (no progress or diff-base annotations, no finalizers, no status). The cluster state
itself (namespaces, the BaselinePolicy, PolicyExceptions, and the RoleBindings,
ClusterRoleBindings and ClusterRoles that say which workload ServiceAccounts may act where) is
wired once, by
:func:`register_cluster_feed`; what each process does with it is a :class:`ClusterFeed`.

Readiness without a window of stale state. kopf runs the *index* handlers over the initial
listing of every indexed resource before it runs any other handler. The first ``on.event`` call
therefore proves that every listing is fully delivered, and that is when a feed is told
``synced()`` (the webhook's ``/readyz`` turns 200, the audit's first pass may run). Deletions
arrive through ``on.event`` (kopf never calls index handlers for them). A separate priming LIST
before kopf would leave a gap: an object deleted between that LIST and kopf's own would stay in
the state forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import kopf

from airlock.cluster import ClusterState, SyncKind
from airlock.controller._operator import run_operator
from airlock.controller.kube import CRD_VERSION, register_login
from airlock.controller.settings import process_identity, watcher_kopf_settings
from airlock.model import API_GROUP

__all__ = [
    "BASELINE_POLICIES",
    "NAMESPACES",
    "POLICY_EXCEPTIONS",
    "RBAC_RESOURCES",
    "ClusterFeed",
    "StateFeed",
    "Watched",
    "build_watch_registry",
    "feed",
    "names",
    "register_cluster_feed",
    "run_watchers",
]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Watched:
    """One watched resource, as kopf selects it (``version`` None: the preferred one).

    ``exact`` selects by plural only (kopf's ``plural=``); otherwise the name may also be a
    kind, singular or short name, as kopf's positional selectors allow.
    """

    group: str
    version: str | None
    plural: str
    exact: bool = False

    def register(self, decorator: Any, **kwargs: Any) -> Any:
        """``decorator`` (``kopf.index``, ``kopf.on.event``) applied to this selector."""
        if self.exact:
            return decorator(group=self.group, version=self.version, plural=self.plural, **kwargs)
        return decorator(self.group, self.version, self.plural, **kwargs)


NAMESPACES: Final = Watched("", "v1", "namespaces")
BASELINE_POLICIES: Final = Watched(API_GROUP, CRD_VERSION, "baselinepolicies")
POLICY_EXCEPTIONS: Final = Watched(API_GROUP, CRD_VERSION, "policyexceptions")
# read-only, by plural: what the RBAC rules know of the cluster (airlock.rbac)
RBAC_RESOURCES: Final = tuple(
    Watched("rbac.authorization.k8s.io", "v1", plural, exact=True)
    for plural in ("rolebindings", "clusterrolebindings", "clusterroles")
)


def names(body: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of a watched object ("" for what is missing)."""
    meta = body.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def feed(
    registry: kopf.OperatorRegistry,
    resource: Watched,
    *,
    ident: str,
    upsert: Callable[[kopf.Body], object],
    delete: Callable[[kopf.Body], object],
    synced: Callable[[], object],
    when: Callable[..., bool] | None = None,
) -> None:
    """Feed ``resource`` to ``upsert``/``delete``; ``synced`` is called on every event.

    Registers ``{ident}-state`` (an index handler: every version of every object, including the
    initial listing) and ``{ident}-events`` (an event handler: ``synced`` first, then
    ``delete`` for deletions). The callbacks are synchronous and do no I/O; their return
    values are ignored. ``when`` filters both, as kopf's ``when=`` does.
    """

    async def state(body: kopf.Body, **_: Any) -> None:
        upsert(body)

    async def events(type: str | None, body: kopf.Body, **_: Any) -> None:
        synced()
        if type == "DELETED":
            delete(body)

    resource.register(kopf.index, id=f"{ident}-state", when=when, registry=registry)(state)
    resource.register(kopf.on.event, id=f"{ident}-events", when=when, registry=registry)(events)


class ClusterFeed(Protocol):
    """What a process does with the cluster-state watches (synchronous, no I/O)."""

    def synced(self) -> None:
        """Every initial listing of the registry is delivered (called on every event)."""

    def namespace(self, body: Mapping[str, Any]) -> None: ...
    def namespace_deleted(self, body: Mapping[str, Any]) -> None: ...
    def policy(self, body: Mapping[str, Any]) -> None: ...
    def policy_deleted(self, body: Mapping[str, Any]) -> None: ...
    def exception(self, body: Mapping[str, Any]) -> None: ...
    def exception_deleted(self, body: Mapping[str, Any]) -> None: ...
    def rbac(self, body: Mapping[str, Any]) -> None: ...
    def rbac_deleted(self, body: Mapping[str, Any]) -> None: ...


def register_cluster_feed(
    registry: kopf.OperatorRegistry, sink: ClusterFeed, *, prefix: str = ""
) -> None:
    """Watch namespaces, BaselinePolicies, PolicyExceptions and RBAC bindings and ClusterRoles
    into ``sink``.

    Handler ids are ``{prefix}namespace-state``, ``{prefix}policy-events`` and so on: a prefix
    keeps them apart from other handlers of the same registry (kopf names indexes by id).
    """
    for resource, ident, upsert, delete in (
        (NAMESPACES, "namespace", sink.namespace, sink.namespace_deleted),
        (BASELINE_POLICIES, "policy", sink.policy, sink.policy_deleted),
        (POLICY_EXCEPTIONS, "exception", sink.exception, sink.exception_deleted),
        *((r, r.plural[:-1], sink.rbac, sink.rbac_deleted) for r in RBAC_RESOURCES),
    ):
        feed(
            registry,
            resource,
            ident=f"{prefix}{ident}",
            upsert=upsert,
            delete=delete,
            synced=sink.synced,
        )


class StateFeed:
    """The webhook's :class:`ClusterFeed`: a :class:`~airlock.cluster.ClusterState`, and the logs.

    Every version of a BaselinePolicy is handed to the state: what is in force may come from
    the controller's status (``status.inForce``, for a replica starting while the stored
    generation is invalid), and the state counts each refused generation once; the log says so
    once too.
    """

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        self._synced = False

    def synced(self) -> None:
        if not self._synced:
            self._synced = True
            kinds: tuple[SyncKind, ...] = ("policy", "namespaces", "exceptions")
            for kind in kinds:
                self.state.mark_synced(kind)
            _log.info("initial listings loaded; the webhook is ready")

    # -- namespaces: labels name the environment -------------------------------------------

    def namespace(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        self.state.set_namespace(names(body)[1], dict(meta.get("labels") or {}))

    def namespace_deleted(self, body: Mapping[str, Any]) -> None:
        self.state.delete_namespace(names(body)[1])

    # -- the BaselinePolicy in force -------------------------------------------------------

    def policy(self, body: Mapping[str, Any]) -> None:
        state = self.state
        name = names(body)[1]
        if name != state.policy_name:
            return
        error = state.set_policy(body)
        if error is not None and state.tracker.new_refusal:
            in_force = state.in_force
            kept = (
                f"generation {in_force.generation} stays in force ({in_force.source})"
                if in_force.source != "absent"
                else "no valid generation is known: every rule audits"
            )
            # The controller reports the full error in the policy's status; the log names the
            # failing field paths only.
            paths = ", ".join(path for path, _ in error.errors) or str(error)
            _log.warning("BaselinePolicy %s refused, %s: %s", name, kept, paths)

    def policy_deleted(self, body: Mapping[str, Any]) -> None:
        name = names(body)[1]
        self.state.delete_policy(name)
        if name == self.state.policy_name:
            _log.warning(
                "BaselinePolicy %s deleted: nothing is denied or patched, every rule audits", name
            )

    # -- PolicyExceptions ------------------------------------------------------------------

    def exception(self, body: Mapping[str, Any]) -> None:
        self.state.set_exception(body)

    def exception_deleted(self, body: Mapping[str, Any]) -> None:
        self.state.delete_exception(*names(body))

    # -- RBAC: which workload ServiceAccounts may act where ---------------------------------

    def rbac(self, body: Mapping[str, Any]) -> None:
        self.state.set_rbac(body)

    def rbac_deleted(self, body: Mapping[str, Any]) -> None:
        self.state.delete_rbac(body)


def build_watch_registry(
    store: ClusterState, *, kubeconfig: str | None = None, login: bool = True
) -> kopf.OperatorRegistry:
    """A fresh registry with the webhook's read-only handlers feeding ``store``.

    A new registry per call (never kopf's global one, nothing registered at import), so the
    controller process can register a different set, and tests can run several.
    ``login=False`` leaves authentication to kopf's defaults (only for unit tests).
    """
    registry = kopf.OperatorRegistry()
    register_cluster_feed(registry, StateFeed(store))
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
    """Watch namespaces, BaselinePolicies, PolicyExceptions and RBAC into ``store`` until ``stop``.

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
