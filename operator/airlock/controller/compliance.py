"""The controller's compliance side, on kopf: background audit, metrics, PolicyReports, isolation.

:func:`register_compliance` adds to a kopf registry the watches that feed an
:class:`~airlock.controller.audit.Auditor` (every supported workload kind, ConfigMaps, namespaces,
the BaselinePolicy, PolicyExceptions, isolation NetworkPolicies, Airlock's PolicyReports) and a
startup/cleanup pair that runs :meth:`Compliance.run`, the task that evaluates, exports metrics,
writes PolicyReports, reconciles NetworkPolicies and records ``status.lastAudit``.

RoleBindings, ClusterRoleBindings and ClusterRoles come with the cluster state (the webhook reads
them too); RoleBindings are also audited objects, reported in their namespace's PolicyReport.

Every watch goes through the webhook's feeder (:func:`airlock.controller.watch.feed`, and
:func:`~airlock.controller.watch.register_cluster_feed` for the cluster state), so like the rest
of the controller it registers only ``@kopf.index`` and ``@kopf.on.event`` handlers, for which
kopf writes nothing onto the watched objects (no finalizers, no annotations): uninstalling
Airlock never leaves a Pod that cannot be deleted. Index handlers are used for every upsert
because kopf runs them over every initial listing before any other handler: the first
``on.event`` call therefore means the index is complete, and only then does the first pass run
(so nothing is reported, or garbage-collected, from a half-listed cluster). Deletions arrive
through ``on.event``.

Kinds whose CRD is absent (Kubeflow, KServe, Ray, Argo, Volcano, JobSet, the PolicyReport CRD)
are skipped by kopf with one warning naming them, and watched as soon as their CRD is installed
(the controller's kopf settings keep scanning CRDs).

One writer only: when the controller runs with peering, the task asks ``leading`` before each
pass; a standby replica evaluates nothing, writes nothing and exports no audit series.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client

from airlock.controller import reports as _reports
from airlock.controller.audit import (
    AUDITED_RESOURCES,
    Auditor,
    PassResult,
    clear_metrics,
    publish_metrics,
)
from airlock.controller.isolation import (
    GROUP as NP_GROUP,
)
from airlock.controller.isolation import (
    NETWORK_POLICY_NAME,
    IsolationReconciler,
)
from airlock.controller.isolation import (
    PLURAL as NP_PLURAL,
)
from airlock.controller.isolation import (
    VERSION as NP_VERSION,
)
from airlock.controller.kube import CRD_VERSION, Kube, api_client
from airlock.controller.reports import ReportWriter
from airlock.controller.watch import Watched, feed, names, register_cluster_feed
from airlock.detectors import FingerprintKey, redact
from airlock.errors import AirlockError, KubeError
from airlock.model import API_GROUP

__all__ = ["Compliance", "ComplianceSettings", "register_compliance"]

_log = logging.getLogger(__name__)

LeaderCheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class ComplianceSettings:
    """What the compliance side needs; :meth:`from_controller` reads it off the controller's."""

    policy_name: str = "default"
    """The BaselinePolicy in force (the same one admission follows)."""

    kubeconfig: str | None = None
    """Kubeconfig path for the writes; None is in-cluster (as for the rest of the controller)."""

    audit_interval: float = 300.0
    """Seconds between full passes. Changes are re-evaluated within ``debounce`` of their
    watch event anyway; the full pass catches what events cannot say (time passing, a missed
    event) and bounds how stale ``airlock_audit_last_success_timestamp_seconds`` gets. Five
    minutes keeps a 10,000-pod cluster's audit under 2 % of a core."""

    debounce: float = 1.0
    """Seconds to gather a burst of watch events (a rollout, the initial listing) into one pass."""

    step: int = 250
    """Objects evaluated between two yields to the event loop (about 25 ms of work), so the
    metrics endpoint and kopf's watches stay responsive during a long pass."""

    metrics_namespace_label: bool = True
    """Export ``airlock_audit_violations`` per namespace. Turn off on very large clusters: the
    series are then summed over namespaces and exported with ``namespace=""``."""

    reports: bool = True
    """Write PolicyReports (when the CRD is installed)."""

    report_passes: bool = False
    """Also list compliant workloads (``pass``) in PolicyReports; off to keep etcd small."""

    report_max_results: int = _reports.DEFAULT_MAX_RESULTS
    """Cap of results per PolicyReport (etcd objects are limited to about 1.5 MB)."""

    isolation: bool = True
    """Let the controller manage NetworkPolicies when the policy says ``isolation: enforce``;
    False leaves them to the admin whatever the policy says (the audit still reports)."""

    fingerprint_key_file: str | None = None
    """The installation's fingerprint key (the webhook's too): findings in reports and metrics
    messages carry the fingerprints admission gave. None: unkeyed."""

    @classmethod
    def from_controller(cls, settings: object) -> ComplianceSettings:
        """Take every field the controller's settings have, defaults for the others."""
        d = cls()
        return cls(
            policy_name=str(getattr(settings, "policy_name", d.policy_name)),
            kubeconfig=getattr(settings, "kubeconfig", d.kubeconfig),
            audit_interval=float(getattr(settings, "audit_interval", d.audit_interval)),
            debounce=float(getattr(settings, "audit_debounce", d.debounce)),
            step=int(getattr(settings, "audit_step", d.step)),
            metrics_namespace_label=bool(
                getattr(settings, "metrics_namespace_label", d.metrics_namespace_label)
            ),
            reports=bool(getattr(settings, "policy_reports", d.reports)),
            report_passes=bool(getattr(settings, "policy_report_passes", d.report_passes)),
            report_max_results=int(
                getattr(settings, "policy_report_max_results", d.report_max_results)
            ),
            isolation=bool(getattr(settings, "manage_isolation", d.isolation)),
            fingerprint_key_file=getattr(settings, "fingerprint_key_file", None) or None,
        )


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


class Compliance:
    """The audit's state and its task. Build one, :meth:`register` it, let kopf run it."""

    def __init__(
        self,
        settings: ComplianceSettings,
        *,
        kube: Kube | None = None,
        leading: LeaderCheck | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owner: Callable[[], Mapping[str, Any] | None] = lambda: None,
    ) -> None:
        """``owner`` gives the owner reference of what the controller creates (reports and
        NetworkPolicies), read at each write. ``kube`` is the controller's seam to the API
        server (every read and write goes through it; tests pass one on an in-memory API);
        without it the compliance side makes a client of its own."""
        self.settings = settings
        self._own_api: client.ApiClient | None = None
        if kube is None:
            self._own_api = api_client(settings.kubeconfig)
            kube = Kube(self._own_api)
        self.kube = kube
        self.leading = leading
        self.clock = clock
        key = None
        if settings.fingerprint_key_file:
            key = FingerprintKey.read(settings.fingerprint_key_file)
        self.auditor = Auditor(settings.policy_name, clock=clock, fingerprint_key=key)
        self.reports = ReportWriter(
            kube,
            policy_name=settings.policy_name,
            include_passes=settings.report_passes,
            max_results=settings.report_max_results,
            owner=owner,
        )
        self.isolation = IsolationReconciler(kube, owner=owner)
        self.synced = asyncio.Event()
        self.last_pass: PassResult | None = None
        self.passes = 0
        self._terminating: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._isolation_dirty = True
        self._published = False
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    # -- feeding (called by the kopf handlers) ---------------------------------------------------

    def poke(self) -> None:
        """Wake the task: something was fed to the auditor outside the handlers."""
        if self._wake is not None:
            self._wake.set()

    def mark_synced(self) -> None:
        """Every initial listing is in the index: passes may start (the first is full)."""
        if not self.synced.is_set():
            self.auditor.mark_isolation_known()
            self.synced.set()
            _log.info("audit index loaded: %d objects", len(self.auditor))
            self.poke()

    def register(self, registry: kopf.OperatorRegistry) -> None:
        """Add every handler to ``registry`` (a fresh one, never kopf's global registry).

        The cluster state comes through the same feeder as the webhook's
        (:func:`~airlock.controller.watch.register_cluster_feed`); the audited workloads,
        isolation NetworkPolicies and Airlock's PolicyReports through :func:`feed` as well.
        """
        auditor = self.auditor
        register_cluster_feed(registry, _ComplianceFeed(self), prefix="compliance-")

        for res in AUDITED_RESOURCES:
            feed(
                registry,
                Watched(res.group, res.version, res.plural, exact=True),
                ident=f"audit-{res.id}",
                upsert=self._upsert,
                delete=self._delete,
                synced=self.mark_synced,
            )

        def is_isolation_policy(name: str | None, **_: Any) -> bool:
            return name == NETWORK_POLICY_NAME

        def network_policy(body: kopf.Body) -> None:
            auditor.set_isolated(names(body)[0], True)
            if self.isolation.observe(body):
                self._isolation_dirty = True
            self.poke()

        def network_policy_deleted(body: kopf.Body) -> None:
            ns = names(body)[0]
            auditor.set_isolated(ns, False)
            self.isolation.forget(ns)
            self._isolation_dirty = True
            self.poke()

        feed(
            registry,
            Watched(NP_GROUP, NP_VERSION, NP_PLURAL),
            ident="compliance-networkpolicy",
            upsert=network_policy,
            delete=network_policy_deleted,
            synced=self.mark_synced,
            when=is_isolation_policy,
        )

        def is_our_report(name: str | None, **_: Any) -> bool:
            return name == _reports.REPORT_NAME

        def report(body: kopf.Body) -> None:
            if self.reports.observe(body):
                self.poke()

        def report_deleted(body: kopf.Body) -> None:
            if self.reports.forget(names(body)[0]):
                self.poke()

        feed(
            registry,
            Watched(_reports.GROUP, _reports.VERSION, _reports.PLURAL),
            ident="compliance-policyreport",
            upsert=report,
            delete=report_deleted,
            synced=self.mark_synced,
            when=is_our_report,
        )

        @kopf.on.startup(id="compliance-start", registry=registry)
        async def start(**_: Any) -> None:
            self.start()

        @kopf.on.cleanup(id="compliance-stop", registry=registry)
        async def stop(**_: Any) -> None:
            await self.stop()

    def _upsert(self, body: kopf.Body) -> None:
        if self.auditor.upsert(body):
            self.poke()

    def _delete(self, body: kopf.Body) -> None:
        self.auditor.delete(str(_meta(body).get("uid") or ""))
        self.poke()

    # -- the task --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start :meth:`run` as a task of the running loop (kopf's startup handler calls it)."""
        if self._task is None or self._task.done():
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self.run(self._stop), name="airlock audit")

    async def stop(self) -> None:
        """Stop the task started by :meth:`start`, and close the API client if it is ours."""
        if self._stop is not None:
            self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10.0)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self._own_api is not None:
            self._own_api.close()  # type: ignore[no-untyped-call]
            self._own_api = None

    async def run(self, stop: asyncio.Event) -> None:
        """Evaluate on change, fully every ``audit_interval``; write results; until ``stop``."""
        loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        settings = self.settings
        next_full = 0.0  # the first pass (once synced) is a full one
        while not stop.is_set():
            if not self.synced.is_set():
                wake.clear()  # _mark_synced sets it again
                await _wait(wake, stop, 1.0)
                continue
            now_loop = loop.time()
            timeout = next_full - now_loop
            expiry = self.auditor.next_expiry()
            if expiry is not None:
                due = (expiry - self.clock()).total_seconds() + 0.05
                if due <= 0:
                    self.auditor.request_full_pass()  # an exception lapsed: judge again
                timeout = min(timeout, due)
            full_due = timeout <= 0
            if not (full_due or self.auditor.pending or self._isolation_dirty):
                wake.clear()  # nothing pending was checked just above; a later poke sets it
                await _wait(wake, stop, timeout)
                continue
            if not full_due:
                await _wait(stop, stop, settings.debounce)  # gather the burst
                if stop.is_set():
                    break
            wake.clear()
            if self.leading is not None and not await self._leading():
                if self._published:
                    clear_metrics()
                    self._published = False
                self.auditor.request_full_pass()  # everything again once leading
                await _wait(stop, stop, min(settings.debounce * 5, 10.0))
                continue
            try:
                await self.run_once(full=full_due)
            except Exception as exc:  # the loop must survive anything one pass does
                # Airlock's own errors say what failed in words it chose (redacted all the
                # same); another exception's text may quote an object's values: its type only
                said = redact(str(exc)) if isinstance(exc, AirlockError) else "(text withheld)"
                _log.error(
                    "audit pass failed (%s: %s); retrying\n%s",
                    type(exc).__name__,
                    said,
                    "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
                )
                await _wait(stop, stop, 5.0)
                continue
            if self.last_pass is not None and self.last_pass.full:
                next_full = loop.time() + settings.audit_interval

    async def _leading(self) -> bool:
        assert self.leading is not None
        try:
            return await self.leading()
        except Exception:  # not knowing means not writing
            return False

    async def run_once(self, *, full: bool = False) -> PassResult:
        """One pass (full, or of what changed) and everything that follows from it."""
        auditor = self.auditor
        auditor.begin(full=full)
        while not auditor.step(self.settings.step):
            await asyncio.sleep(0)
        result = auditor.finish()
        self.last_pass = result
        self.passes += 1
        publish_metrics(
            result.summary, namespace_label=self.settings.metrics_namespace_label, result=result
        )
        self._published = True
        if result.full:
            _log.info(
                "audit: %d workloads evaluated in %.2f s; %s",
                result.evaluated,
                result.duration,
                ", ".join(f"{e} {r:.0%}" for e, r in result.summary.compliance.items()),
            )
        if self.settings.reports:
            await self._sync_reports(result)
        isolation_due, self._isolation_dirty = self._isolation_dirty or result.full, False
        if self.settings.isolation and isolation_due:
            await self.isolation.reconcile(
                auditor.policy, auditor.namespaces, terminating=frozenset(self._terminating)
            )
        if result.full:
            await self._write_last_audit(result)
        return result

    async def _sync_reports(self, result: PassResult) -> None:
        writer = self.reports
        recheck = result.full or not writer.available
        if recheck and not await writer.check_available():
            return
        namespaces = set(result.changed_namespaces)
        if result.full:
            namespaces |= self.auditor.audited_namespaces() | writer.present
        await writer.sync(namespaces, self.auditor.results, result.summary.time)

    async def _write_last_audit(self, result: PassResult) -> None:
        body = {"status": {"lastAudit": result.summary.last_audit()}}
        kube = self.kube
        try:
            await kube.call(
                kube.custom.patch_cluster_custom_object_status,
                API_GROUP,
                CRD_VERSION,
                "baselinepolicies",
                self.settings.policy_name,
                body,
                _content_type="application/merge-patch+json",
            )
        except KubeError as exc:
            if exc.status != 404:  # no BaselinePolicy object: nothing is in force, all audits
                _log.warning("cannot record lastAudit: %s", exc)


class _ComplianceFeed:
    """The compliance side's :class:`~airlock.controller.watch.ClusterFeed`: the auditor's
    cluster state, plus what follows from it (terminating namespaces, isolation, reports)."""

    def __init__(self, compliance: Compliance) -> None:
        self.c = compliance

    def synced(self) -> None:
        self.c.mark_synced()

    def namespace(self, body: Mapping[str, Any]) -> None:
        c = self.c
        meta = _meta(body)
        name = str(meta.get("name") or "")
        phase = (body.get("status") or {}).get("phase")
        if phase == "Terminating" or meta.get("deletionTimestamp"):
            c._terminating.add(name)
        else:
            c._terminating.discard(name)
        if c.auditor.set_namespace(name, meta.get("labels") or {}):
            c._isolation_dirty = True
            c.poke()

    def namespace_deleted(self, body: Mapping[str, Any]) -> None:
        c = self.c
        name = names(body)[1]
        c._terminating.discard(name)
        c.auditor.delete_namespace(name)
        c.isolation.forget(name)
        c.reports.forget(name)
        c.poke()

    def policy(self, body: Mapping[str, Any]) -> None:
        if self.c.auditor.set_policy(body):
            self.c._isolation_dirty = True
            self.c.poke()

    def policy_deleted(self, body: Mapping[str, Any]) -> None:
        if self.c.auditor.delete_policy(names(body)[1]):
            self.c._isolation_dirty = True
            self.c.poke()

    def exception(self, body: Mapping[str, Any]) -> None:
        self.c.auditor.set_exception(body)
        self.c.poke()

    def exception_deleted(self, body: Mapping[str, Any]) -> None:
        meta = _meta(body)
        self.c.auditor.delete_exception(str(meta.get("namespace")), str(meta.get("name")))
        self.c.poke()

    def rbac(self, body: Mapping[str, Any]) -> None:
        self.c.auditor.set_rbac(body)
        self.c.poke()

    def rbac_deleted(self, body: Mapping[str, Any]) -> None:
        self.c.auditor.delete_rbac(body)
        self.c.poke()


async def _wait(event: asyncio.Event, stop: asyncio.Event, timeout: float) -> None:
    """Until ``event`` or ``stop`` is set, or ``timeout`` seconds (at most an hour) pass."""
    if event.is_set() or stop.is_set():
        await asyncio.sleep(0)  # always yield: callers loop on this
        return
    waiters = {asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())}
    try:
        await asyncio.wait(
            waiters, timeout=max(0.0, min(timeout, 3600.0)), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def register_compliance(
    registry: kopf.OperatorRegistry,
    settings: object,
    *,
    kube: Kube | None = None,
    leading: LeaderCheck | None = None,
    owner: Callable[[], Mapping[str, Any] | None] = lambda: None,
) -> Compliance:
    """Register the audit, metrics, PolicyReport and isolation handlers on ``registry``.

    ``settings`` is the controller's :class:`~airlock.controller.settings.ControllerSettings`
    (fields read: ``policy_name``, ``kubeconfig``, ``audit_interval``,
    ``metrics_namespace_label``; absent ones take :class:`ComplianceSettings` defaults) or a
    :class:`ComplianceSettings`. ``leading`` is the controller's peering check; None (standalone)
    means always leading. The returned :class:`Compliance` is for tests and introspection; kopf's
    startup and cleanup handlers run and stop its task.
    """
    resolved = (
        settings
        if isinstance(settings, ComplianceSettings)
        else ComplianceSettings.from_controller(settings)
    )
    compliance = Compliance(resolved, kube=kube, leading=leading, owner=owner)
    compliance.register(registry)
    return compliance
