"""The webhook's in-memory picture of the cluster, kept current by watches, read on every request.

Writers (kopf watch handlers, or tests) call the ``set_*``/``delete_*`` methods; readers take
:attr:`StateStore.context`, an immutable :class:`~airlock.state.EvalContext`. A change only marks
the context stale; the next reader builds a new one (copy-on-write), so a burst of watch events
costs one rebuild and a request never sees a half-applied change. Everything runs on one asyncio
loop: no locks, no awaits inside a method.

Choices worth knowing:

* **No BaselinePolicy at all** (never created, or deleted): the store uses the policy of an empty
  spec, one environment ``default`` in ``enforce`` mode with every rule on. The design calls the
  empty spec a useful policy; failing safe beats admitting everything because a manifest was
  missed. The chart installs a ``default`` policy, so this only shows when an admin removes it.
* **Invalid BaselinePolicy**: the last valid one stays in force; the error is kept in
  :attr:`StateStore.policy_error` (for status and logs) and counted in
  ``airlock_policy_load_errors_total``; ``airlock_policy_info`` keeps naming the generation in
  force.
* **Exceptions expire on time**: the context is also rebuilt when the clock passes the next
  expiry among the active exceptions, so a waiver stops at its ``expires`` instant and not at the
  next unrelated watch event.
* **Readiness** requires the initial listing of the policy, the namespaces *and* the exceptions:
  without namespaces every workload would be judged in the default environment, and without
  exceptions an approved waiver would be ignored (a spurious denial).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, Literal

from airlock import metrics
from airlock.errors import PolicyError
from airlock.model import ExceptionRecord, ExceptionState, load_policy
from airlock.state import CompiledPolicy, EvalContext, default_policy

__all__ = ["SYNC_KINDS", "StateStore", "SyncKind"]

SyncKind = Literal["policy", "namespaces", "exceptions", "networkpolicies"]
SYNC_KINDS: Final[frozenset[str]] = frozenset(
    {"policy", "namespaces", "exceptions", "networkpolicies"}
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


class StateStore:
    """Policy, exceptions, namespace labels and isolation state, with a cached evaluation context.

    ``policy_name`` is the BaselinePolicy that is followed; set_policy ignores any other.
    ``required`` names the initial listings that must be marked synced before :attr:`ready`.
    ``clock`` exists for tests of expiry (the default is the wall clock, in UTC).
    """

    def __init__(
        self,
        policy_name: str = "default",
        *,
        required: Iterable[SyncKind] = ("policy", "namespaces", "exceptions"),
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.policy_name = policy_name
        self._required = frozenset(required)
        unknown = self._required - SYNC_KINDS
        if unknown:
            raise ValueError(f"unknown sync kinds: {sorted(unknown)}")
        self._clock = clock
        self._policy: CompiledPolicy = default_policy()
        self._policy_generation: str | None = None  # None: the built-in empty-spec policy
        self._policy_error: PolicyError | None = None
        self._namespaces: dict[str, Mapping[str, str]] = {}
        self._exceptions: dict[tuple[str, str], ExceptionRecord] = {}
        self._exception_errors: dict[tuple[str, str], PolicyError] = {}
        self._isolated: set[str] = set()
        self._synced: set[str] = set()
        self._context: EvalContext | None = None
        self._next_expiry: datetime | None = None

    # -- policy ---------------------------------------------------------------------------------

    def set_policy(self, obj: Mapping[str, Any]) -> PolicyError | None:
        """Adopt a BaselinePolicy object; return its validation error instead of raising.

        An object with another name than :attr:`policy_name` is ignored (returns None). On error
        the previous policy stays in force.
        """
        meta = _meta(obj)
        if meta.get("name") != self.policy_name:
            return None
        try:
            spec = load_policy(obj)
        except PolicyError as exc:
            self._policy_error = exc
            metrics.POLICY_LOAD_ERRORS.inc()
            return exc
        self._policy = CompiledPolicy.from_spec(spec)
        self._policy_error = None
        generation = meta.get("generation")
        self._policy_generation = str(generation) if isinstance(generation, int) else "0"
        self._set_policy_info()
        self._invalidate()
        return None

    def delete_policy(self, name: str | None = None) -> None:
        """The followed policy was deleted: fall back to the empty-spec policy (see module doc)."""
        if name is not None and name != self.policy_name:
            return
        self._policy = default_policy()
        self._policy_generation = None
        self._policy_error = None
        self._set_policy_info()
        self._invalidate()

    def _set_policy_info(self) -> None:
        metrics.POLICY_INFO.clear()
        if self._policy_generation is not None:
            metrics.POLICY_INFO.labels(self.policy_name, self._policy_generation).set(1)

    @property
    def policy(self) -> CompiledPolicy:
        return self._policy

    @property
    def policy_generation(self) -> str | None:
        """``metadata.generation`` of the policy in force; None for the built-in default."""
        return self._policy_generation

    @property
    def policy_error(self) -> PolicyError | None:
        """Why the latest version of the followed policy was refused (None when it was adopted)."""
        return self._policy_error

    # -- namespaces -----------------------------------------------------------------------------

    def set_namespace(self, name: str, labels: Mapping[str, str] | None) -> None:
        new = MappingProxyType({str(k): str(v) for k, v in (labels or {}).items()})
        if self._namespaces.get(name) == new:
            return  # resyncs and status-only updates: nothing to rebuild
        self._namespaces[name] = new
        self._invalidate()

    def delete_namespace(self, name: str) -> None:
        if self._namespaces.pop(name, None) is not None:
            self._invalidate()
        self._isolated.discard(name)

    # -- exceptions -----------------------------------------------------------------------------

    def set_exception(self, obj: Mapping[str, Any]) -> PolicyError | None:
        """Adopt a PolicyException object; an invalid one is kept out and its error returned."""
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
        """The store's clock (UTC); the handler checks exception windows against it."""
        return self._clock()

    def _invalidate(self) -> None:
        self._context = None

    @property
    def context(self) -> EvalContext:
        """The current evaluation context; rebuilt after a change or when an exception expires."""
        now = self._clock()
        ctx = self._context
        if ctx is not None and (self._next_expiry is None or now < self._next_expiry):
            return ctx
        return self._rebuild(now)

    def _rebuild(self, now: datetime) -> EvalContext:
        settings = self._policy.spec.exceptions
        records = tuple(self._exceptions.values())
        ctx = EvalContext.build(
            self._policy,
            namespace_labels=self._namespaces,
            exceptions=records,
            now=now,
            isolated_namespaces=(
                frozenset(self._isolated) if "networkpolicies" in self._synced else None
            ),
        )
        # Only an active exception changes state with time (to Expired); pending and invalid
        # ones stay as they are until an edit, which invalidates anyway.
        expiries = [
            r.spec.expires
            for r in records
            if r.spec.expires > now and r.state(now, settings) is ExceptionState.ACTIVE
        ]
        self._next_expiry = min(expiries) if expiries else None
        self._context = ctx
        return ctx

    def exception_state(
        self, namespace: str, name: str, now: datetime | None = None
    ) -> tuple[ExceptionState, str]:
        """State and explanation of one exception as the webhook applies it right now."""
        key = (namespace, name)
        if key in self._exception_errors:
            return ExceptionState.INVALID, str(self._exception_errors[key])
        record = self._exceptions.get(key)
        if record is None:
            raise KeyError(key)
        return record.status(now or self._clock(), self._policy.spec.exceptions)
