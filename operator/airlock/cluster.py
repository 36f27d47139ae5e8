"""One picture of the cluster, for every process that judges workloads: pure, no I/O.

The webhook (:class:`airlock.admission.store.StateStore`), the background audit
(:class:`airlock.controller.audit.Auditor`) and the controller's exception lifecycle all follow
the same BaselinePolicy, namespaces, PolicyExceptions and isolation state through this class,
so the rules for what is in force are written once and every replica, every restart, gives one
answer.

What is in force (DESIGN.md, "What is in force when the policy is missing or broken"):

* **The followed policy is valid**: its spec (``source="policy"``).
* **Its current generation is invalid** (it landed while the webhook was down): the last valid
  generation this process saw stays in force (``"last-valid"``). A process that starts while
  the stored policy is invalid has seen none, so it reads the one the controller recorded in
  ``status.inForce`` (``"recorded"``): the same spec its peers kept.
* **No valid generation at all, or no policy** (never created, or deleted): nothing is denied or
  patched; every rule runs in ``audit`` in one environment ``default`` (``"absent"``). Deleting
  the policy must never turn a cluster into enforce-everything.
* An **empty spec** is a policy like any other: one environment ``default`` in ``enforce``.

Writers call the ``set_*``/``delete_*`` methods (watch handlers, tests); :attr:`version` grows
with every change to what evaluation reads, so a caller can tell whether its call changed
anything. Readers take :attr:`ClusterState.context`, an immutable
:class:`~airlock.state.EvalContext` cached until the next change or the next exception expiry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Literal

from airlock.errors import PolicyError
from airlock.findings import Action
from airlock.model import (
    Environment,
    ExceptionRecord,
    ExceptionState,
    Mutations,
    PolicySpec,
    load_policy,
)
from airlock.rbac import Binding, RolePowers, is_rbac, read_binding, role_powers
from airlock.state import CompiledPolicy, EvalContext, PolicyKeyer

if TYPE_CHECKING:
    from airlock.detectors import FingerprintKey

__all__ = [
    "ABSENT_POLICY",
    "IN_FORCE_STATUS_KEY",
    "SYNC_KINDS",
    "ClusterState",
    "PolicyInForce",
    "PolicySource",
    "PolicyTracker",
    "SyncKind",
]

SyncKind = Literal["policy", "namespaces", "exceptions", "networkpolicies"]
SYNC_KINDS: Final[frozenset[str]] = frozenset(
    {"policy", "namespaces", "exceptions", "networkpolicies"}
)
PolicySource = Literal["policy", "last-valid", "recorded", "absent"]

IN_FORCE_STATUS_KEY: Final = "inForce"
"""``status.inForce`` of a BaselinePolicy: ``{"generation": N, "spec": {...}}``, the last valid
generation, written by the controller and read by processes that start while the stored
generation is invalid."""

ABSENT_SPEC: Final = PolicySpec(
    environments=[Environment(name="default", mode=Action.AUDIT)],
    mutations=Mutations(secure_defaults=False, inherit_owner_label=False, pin_image_digests=False),
)


@dataclass(frozen=True, slots=True)
class PolicyInForce:
    """The policy every verdict is computed against, and where it came from."""

    spec: PolicySpec
    compiled: CompiledPolicy
    source: PolicySource
    generation: int | None = None
    """``metadata.generation`` of the generation in force; None when no policy is."""


ABSENT_POLICY: Final = PolicyInForce(ABSENT_SPEC, CompiledPolicy.from_spec(ABSENT_SPEC), "absent")


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _generation(obj: Mapping[str, Any]) -> int:
    value = _meta(obj).get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def recorded_in_force(obj: Mapping[str, Any]) -> tuple[int, PolicySpec] | None:
    """The last valid generation the controller recorded in ``status.inForce``, if usable."""
    status = obj.get("status")
    record = status.get(IN_FORCE_STATUS_KEY) if isinstance(status, Mapping) else None
    if not isinstance(record, Mapping):
        return None
    generation, spec = record.get("generation"), record.get("spec")
    if not isinstance(generation, int) or not isinstance(spec, Mapping):
        return None
    try:
        return generation, load_policy(spec)  # a bare spec
    except PolicyError:
        return None


class PolicyTracker:
    """Follows one BaselinePolicy by name and decides what is in force (see the module doc)."""

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._in_force = ABSENT_POLICY
        self._error: PolicyError | None = None
        self._refused: set[tuple[str, int]] = set()  # (uid, generation) refused so far
        self.new_refusal = False
        """Whether the last :meth:`observe` refused a generation not refused before: count and
        log a refusal once, not once per status write."""

    @property
    def in_force(self) -> PolicyInForce:
        return self._in_force

    @property
    def error(self) -> PolicyError | None:
        """Why the current generation of the followed policy was refused (None if it was not)."""
        return self._error

    def observe(self, obj: Mapping[str, Any]) -> bool:
        """A version of a BaselinePolicy; True when the spec in force changed."""
        self.new_refusal = False
        meta = _meta(obj)
        if meta.get("name") != self.name:
            return False
        generation = _generation(obj)
        try:
            spec = load_policy(obj)
        except PolicyError as exc:
            self._error = exc
            key = (str(meta.get("uid") or ""), generation)
            self.new_refusal = key not in self._refused
            self._refused.add(key)
            if self._in_force.source != "absent":
                if self._in_force.source == "policy":
                    return self._adopt(self._in_force.spec, "last-valid", self._in_force.generation)
                return False
            recorded = recorded_in_force(obj)
            if recorded is None:
                return False
            return self._adopt(recorded[1], "recorded", recorded[0])
        self._error = None
        return self._adopt(spec, "policy", generation)

    def forget(self, name: str | None = None) -> bool:
        """The followed policy was deleted: nothing is in force any more (audit only)."""
        if name is not None and name != self.name:
            return False
        self._error = None
        self._refused.clear()
        self.new_refusal = False
        changed = self._in_force is not ABSENT_POLICY
        self._in_force = ABSENT_POLICY
        return changed

    def _adopt(self, spec: PolicySpec, source: PolicySource, generation: int | None) -> bool:
        current = self._in_force
        if current.spec == spec and current.generation == generation and current.source == source:
            return False
        compiled = current.compiled if current.spec == spec else CompiledPolicy.from_spec(spec)
        self._in_force = PolicyInForce(spec, compiled, source, generation)
        return current.spec != spec


def _rbac_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = _meta(obj)
    kind = obj.get("kind")
    ns = meta.get("namespace") if kind == "RoleBinding" else ""
    return str(kind or ""), str(ns or ""), str(meta.get("name") or "")


def utcnow() -> datetime:
    """The default clock of the cluster state: now, in UTC."""
    return datetime.now(UTC)


class ClusterState:
    """Policy, namespaces, exceptions and isolation, with a cached evaluation context.

    ``required`` names the initial listings that must be marked synced before :attr:`ready`.
    ``clock`` exists for tests of expiry (the default is the wall clock, in UTC). With a
    ``fingerprint_key`` (the installation's, from ``--fingerprint-key-file``) the policy in force
    keys the fingerprints of detected credentials. Not thread-safe: one event loop writes and
    reads it.
    """

    def __init__(
        self,
        policy_name: str = "default",
        *,
        required: Iterable[SyncKind] = ("policy", "namespaces", "exceptions"),
        clock: Callable[[], datetime] = utcnow,
        fingerprint_key: FingerprintKey | None = None,
    ) -> None:
        self.tracker = PolicyTracker(policy_name)
        self._keyer = PolicyKeyer(fingerprint_key)
        self._required = frozenset(required)
        unknown = self._required - SYNC_KINDS
        if unknown:
            raise ValueError(f"unknown sync kinds: {sorted(unknown)}")
        self._clock = clock
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._exceptions: dict[tuple[str, str], ExceptionRecord] = {}
        self._exception_errors: dict[tuple[str, str], PolicyError] = {}
        self._isolated: set[str] = set()
        # workload-relevant RBAC only: bindings with ServiceAccount subjects, dangerous roles
        self._bindings: dict[tuple[str, str, str], Binding] = {}
        self._roles: dict[str, RolePowers] = {}
        self._synced: set[str] = set()
        self._context: EvalContext | None = None
        self._next_expiry: datetime | None = None
        self._version = 0

    @property
    def version(self) -> int:
        """Grows with every change to what evaluation reads (compare before and after a call)."""
        return self._version

    @property
    def policy_name(self) -> str:
        return self.tracker.name

    # -- policy ---------------------------------------------------------------------------------

    def set_policy(self, obj: Mapping[str, Any]) -> PolicyError | None:
        """Observe a BaselinePolicy; its validation error, None if it validates (or is another
        policy than the followed one)."""
        if self.tracker.observe(obj):
            self._invalidate()
        meta = _meta(obj)
        return self.tracker.error if meta.get("name") == self.policy_name else None

    def delete_policy(self, name: str | None = None) -> None:
        if self.tracker.forget(name):
            self._invalidate()

    @property
    def in_force(self) -> PolicyInForce:
        return self.tracker.in_force

    @property
    def policy(self) -> CompiledPolicy:
        """The compiled policy in force (keyed, when the state has a fingerprint key)."""
        return self._keyer(self.tracker.in_force.compiled)

    @property
    def spec(self) -> PolicySpec:
        return self.tracker.in_force.spec

    @property
    def policy_error(self) -> PolicyError | None:
        return self.tracker.error

    # -- namespaces -----------------------------------------------------------------------------

    def set_namespace(self, name: str, labels: Mapping[str, str] | None) -> None:
        new = MappingProxyType({str(k): str(v) for k, v in (labels or {}).items()})
        if self._namespaces.get(name) == new:
            return  # resyncs and status-only updates: nothing to rebuild
        self._namespaces[name] = new
        self._invalidate()

    def delete_namespace(self, name: str) -> None:
        if name in self._isolated:
            self._isolated.discard(name)
            self._invalidate()
        if self._namespaces.pop(name, None) is not None:
            self._invalidate()

    @property
    def namespaces(self) -> Mapping[str, Mapping[str, str]]:
        return MappingProxyType(self._namespaces)

    # -- exceptions -----------------------------------------------------------------------------

    def set_exception(self, obj: Mapping[str, Any]) -> PolicyError | None:
        """Observe a PolicyException; an invalid one waives nothing and its error is returned
        (and kept for status and logs)."""
        meta = _meta(obj)
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        try:
            record = ExceptionRecord.from_object(obj)
        except PolicyError as exc:
            self._exception_errors[key] = exc
            if self._exceptions.pop(key, None) is not None:
                self._invalidate()
            return exc
        self._exception_errors.pop(key, None)
        if self._exceptions.get(key) != record:
            self._exceptions[key] = record
            self._invalidate()
        return None

    def delete_exception(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._exception_errors.pop(key, None)
        if self._exceptions.pop(key, None) is not None:
            self._invalidate()

    @property
    def exceptions(self) -> Mapping[tuple[str, str], ExceptionRecord]:
        """Every valid exception, whatever its state, by (namespace, name)."""
        return MappingProxyType(self._exceptions)

    @property
    def exception_errors(self) -> Mapping[tuple[str, str], PolicyError]:
        return MappingProxyType(self._exception_errors)

    def exception_state(
        self, namespace: str, name: str, now: datetime | None = None
    ) -> tuple[ExceptionState, str]:
        """State and explanation of one exception as it applies right now."""
        key = (namespace, name)
        if key in self._exception_errors:
            return ExceptionState.INVALID, str(self._exception_errors[key])
        record = self._exceptions.get(key)
        if record is None:
            raise KeyError(key)
        return record.status(now or self._clock(), self.spec.exceptions)

    def next_expiry(self, now: datetime | None = None) -> datetime | None:
        """When the next active exception expires (its workloads must be judged again then)."""
        moment = now or self._clock()
        settings = self.spec.exceptions
        times = [
            r.spec.expires
            for r in self._exceptions.values()
            if r.spec.expires > moment and r.state(moment, settings) is ExceptionState.ACTIVE
        ]
        return min(times) if times else None

    # -- network isolation ----------------------------------------------------------------------

    def set_isolation(self, namespace: str, present: bool) -> None:
        """Whether ``namespace`` has the environment isolation NetworkPolicy.

        Until ``mark_synced("networkpolicies")`` the context reports isolation as unknown, so
        ``network-isolation-missing`` never fires on a half-listed cluster.
        """
        before = namespace in self._isolated
        if present:
            self._isolated.add(namespace)
        else:
            self._isolated.discard(namespace)
        if before != present:
            self._invalidate()

    @property
    def isolation_known(self) -> bool:
        return "networkpolicies" in self._synced

    @property
    def isolated_namespaces(self) -> frozenset[str]:
        return frozenset(self._isolated)

    # -- RBAC: RoleBindings, ClusterRoleBindings, ClusterRoles ---------------------------------

    def set_rbac(self, obj: Mapping[str, Any]) -> None:
        """Observe a RoleBinding, ClusterRoleBinding or ClusterRole (anything else is ignored).

        Only what the rules read is kept (:mod:`airlock.rbac`): a binding's ServiceAccount
        subjects and role, a ClusterRole's dangerous powers. A binding without such subjects and
        a harmless role are dropped, so the webhook holds a few entries, not the cluster's RBAC.
        """
        if not is_rbac(obj):
            return
        key = _rbac_key(obj)
        if key[0] == "ClusterRole":
            powers = role_powers(obj)
            if self._roles.get(key[2], RolePowers()) == powers:
                return
            if powers:
                self._roles[key[2]] = powers
            else:
                del self._roles[key[2]]
            self._invalidate()
            return
        binding = read_binding(obj)
        if binding is None or not binding.subjects:
            if self._bindings.pop(key, None) is not None:
                self._invalidate()
            return
        if self._bindings.get(key) != binding:
            self._bindings[key] = binding
            self._invalidate()

    def delete_rbac(self, obj: Mapping[str, Any]) -> None:
        if not is_rbac(obj):
            return
        key = _rbac_key(obj)
        gone = (
            self._roles.pop(key[2], None)
            if key[0] == "ClusterRole"
            else self._bindings.pop(key, None)
        )
        if gone is not None:
            self._invalidate()

    def binding(self, obj: Mapping[str, Any]) -> Binding | None:
        """What is kept of the binding ``obj`` names (by kind, namespace and name)."""
        return self._bindings.get(_rbac_key(obj))

    @property
    def bindings(self) -> Mapping[tuple[str, str, str], Binding]:
        return MappingProxyType(self._bindings)

    @property
    def cluster_roles(self) -> Mapping[str, RolePowers]:
        """The ClusterRoles with dangerous powers, by name."""
        return MappingProxyType(self._roles)

    # -- sync and readiness ---------------------------------------------------------------------

    def mark_synced(self, what: SyncKind) -> None:
        """The initial listing of ``what`` has been fully delivered."""
        if what not in SYNC_KINDS:
            raise ValueError(f"unknown sync kind {what!r}")
        if what not in self._synced:
            self._synced.add(what)
            self._invalidate()

    @property
    def ready(self) -> bool:
        return self._required <= self._synced

    @property
    def pending_sync(self) -> list[str]:
        """The initial listings still awaited before :attr:`ready` (for /readyz and logs)."""
        return sorted(self._required - self._synced)

    # -- the evaluation context -----------------------------------------------------------------

    def now(self) -> datetime:
        """The state's clock (UTC)."""
        return self._clock()

    def _invalidate(self) -> None:
        self._context = None
        self._version += 1

    @property
    def context(self) -> EvalContext:
        """The current evaluation context; rebuilt after a change or when an exception expires
        (only an active exception changes state with time), never half-updated."""
        moment = self._clock()
        ctx = self._context
        if ctx is not None and (self._next_expiry is None or moment < self._next_expiry):
            return ctx
        ctx = self.context_at(moment)
        self._next_expiry = self.next_expiry(moment)
        self._context = ctx
        return ctx

    def context_at(
        self,
        now: datetime | None = None,
        *,
        credential_configmaps: Mapping[tuple[str, str], frozenset[str]] | None = None,
    ) -> EvalContext:
        """A fresh evaluation context at ``now`` (the audit adds its credential ConfigMaps)."""
        return self._build(now or self._clock(), credential_configmaps)

    def _build(
        self,
        now: datetime,
        credential_configmaps: Mapping[tuple[str, str], frozenset[str]] | None,
    ) -> EvalContext:
        return EvalContext.build(
            self.policy,
            namespace_labels=self._namespaces,
            exceptions=tuple(self._exceptions.values()),
            now=now,
            isolated_namespaces=frozenset(self._isolated) if self.isolation_known else None,
            credential_configmaps=credential_configmaps,
            bindings=self._bindings.values(),
            cluster_roles=self._roles,
        )
