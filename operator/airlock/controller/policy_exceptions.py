"""The PolicyException lifecycle: Active, PendingApproval, Expired, Invalid, in status and metrics.

The state is a pure function of the object, the selected policy's ``exceptions`` settings and
the clock (:func:`exception_status`, the same :meth:`ExceptionRecord.status` the webhook and the
CLI use). Because the clock is an input, something must re-evaluate when time passes: the
:class:`ExceptionLifecycle` task wakes at the earliest ``expires`` of the exceptions it knows
(so an exception turns Expired within a fraction of a second of its deadline), at least every
``sweep_interval`` (to refresh ``timeLeft``), and whenever kopf delivers a change or the policy
changes.

Why a task and not ``@kopf.timer``/``@kopf.daemon`` per object: kopf puts a finalizer on every
object with a timer or daemon, so uninstalling the controller would leave PolicyExceptions (and
their namespaces) undeletable. Here kopf only *observes* (``on.event``), and the lifecycle task is
the one writer of exception status. It writes only while this replica leads the kopf peering
(``leading``), because a standby replica's picture is frozen while kopf pauses it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import kopf

from airlock import metrics
from airlock.controller._status import (
    condition,
    generation_of,
    previous_status,
    rfc3339,
    status_patch,
    truncate,
)
from airlock.controller.kube import CRD_VERSION
from airlock.controller.policy import PolicyCache
from airlock.errors import AirlockError, PolicyError, StatusWriteError
from airlock.model import (
    API_GROUP,
    APPROVED_BY_ANNOTATION,
    CREATED_BY_ANNOTATION,
    ExceptionRecord,
    ExceptionSettings,
    ExceptionState,
    PolicySpec,
)

__all__ = [
    "ExceptionLifecycle",
    "StatusWriteError",
    "exception_status",
    "register_exception_handlers",
    "time_left",
]

_log = logging.getLogger(__name__)

PLURAL: Final = "policyexceptions"
_MESSAGE_LIMIT: Final = 1024  # status.message maxLength in the CRD
_WAKE_SLACK: Final = 0.05  # seconds past an expiry, so the clock is surely past it on waking
_RETRY_DELAY: Final = 5.0  # seconds before retrying a failed status write

Key = tuple[str, str]
StatusWriter = Callable[[str, str, dict[str, Any]], Awaitable[Mapping[str, Any] | None]]
"""``(namespace, name, status_patch) -> updated object``, or None when the object is gone."""
Lister = Callable[[], Awaitable[Sequence[Mapping[str, Any]]]]
LeaderCheck = Callable[[], Awaitable[bool]]


def time_left(delta: timedelta) -> str:
    """Human time to expiry, coarse enough that it changes at most once a minute: ``12d 3h``."""
    seconds = int(delta.total_seconds())
    if seconds <= 0:
        return "expired"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return "<1m"


def _annotation(obj: Mapping[str, Any], key: str) -> str | None:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    value = annotations.get(key) if isinstance(annotations, Mapping) else None
    return value if isinstance(value, str) and value else None


_DEFAULT_SETTINGS: Final = ExceptionSettings()


def exception_status(
    obj: Mapping[str, Any], policy_spec: PolicySpec | None, now: datetime
) -> dict[str, Any]:
    """The ``status`` a PolicyException should have at ``now`` under ``policy_spec``.

    ``policy_spec`` None means no valid policy is known: the built-in defaults apply (90 days,
    approval required), as in the webhook. An object whose spec does not validate is
    ``Invalid`` with the error's field paths; one whose window exceeds ``exceptions.maxDays`` is
    ``Invalid`` too (the webhook refuses both at admission and ignores them if they land).
    """
    settings = policy_spec.exceptions if policy_spec is not None else _DEFAULT_SETTINGS
    generation = generation_of(obj)
    previous = previous_status(obj)
    expires: datetime | None = None
    try:
        record = ExceptionRecord.from_object(obj)
    except PolicyError as exc:
        state, message = ExceptionState.INVALID, str(exc)
        created_by = _annotation(obj, CREATED_BY_ANNOTATION)
        approved_by = _annotation(obj, APPROVED_BY_ANNOTATION)
    else:
        state, message = record.status(now, settings)
        created_by, approved_by = record.created_by, record.approved_by
        expires = record.spec.expires
    message = truncate(message, _MESSAGE_LIMIT)
    return {
        "state": state.value,
        "message": message,
        "createdBy": created_by,
        "approvedBy": approved_by,
        "expires": rfc3339(expires) if expires is not None else None,
        "timeLeft": time_left(expires - now) if expires is not None else None,
        "observedGeneration": generation,
        "conditions": [
            condition(
                "Active",
                state is ExceptionState.ACTIVE,
                state.value,
                message,
                now=now,
                generation=generation,
                previous=previous,
                message_limit=_MESSAGE_LIMIT,
            )
        ],
    }


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _resource_version(obj: Mapping[str, Any]) -> str | None:
    meta = obj.get("metadata")
    version = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return version if isinstance(version, str) else None


def _expiry(obj: Mapping[str, Any]) -> datetime | None:
    try:
        return ExceptionRecord.from_object(obj).spec.expires
    except PolicyError:
        return None


class ExceptionLifecycle:
    """Keeps every PolicyException's status and the exception metrics true as time passes.

    kopf feeds it (:meth:`observe`, :meth:`forget`); :meth:`run` is the one writer of status.
    """

    def __init__(
        self,
        policy: PolicyCache,
        *,
        write_status: StatusWriter,
        list_objects: Lister | None = None,
        leading: LeaderCheck | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sweep_interval: float = 60.0,
        resync_interval: float = 600.0,
    ) -> None:
        self._policy = policy
        self._write = write_status
        self._list = list_objects
        self._leading = leading
        self._clock = clock
        self._sweep_interval = sweep_interval
        self._resync_interval = resync_interval
        self._objects: dict[Key, dict[str, Any]] = {}
        self._versions: dict[Key, int] = {}  # bumped on every observe/forget
        # What was last written to each object, and its resourceVersion after the write. The
        # API server prunes status fields its CRD schema does not declare, so comparing with
        # the stored status alone could rewrite the same thing on every sweep.
        self._written: dict[Key, tuple[str | None, dict[str, Any]]] = {}
        self._counter = 0
        self._wake = asyncio.Event()

    # -- fed by kopf ----------------------------------------------------------------------------

    def observe(self, obj: Mapping[str, Any]) -> None:
        key = _key(obj)
        self._objects[key] = copy.deepcopy(dict(obj))
        self._bump(key)
        self._wake.set()

    def forget(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        self._objects.pop(key, None)
        self._written.pop(key, None)
        self._bump(key)
        self._wake.set()

    def wake(self) -> None:
        """Re-evaluate now (the policy's exception settings changed)."""
        self._wake.set()

    def _bump(self, key: Key) -> None:
        self._counter += 1
        self._versions[key] = self._counter

    @property
    def objects(self) -> Mapping[Key, Mapping[str, Any]]:
        return self._objects

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until ``stop`` is set (use :meth:`stop`, which also wakes the loop)."""
        loop = asyncio.get_running_loop()
        next_resync = loop.time() + self._resync_interval
        while not stop.is_set():
            self._wake.clear()
            if await self._is_leading():
                delay = await self.sweep()
                if self._list is not None and loop.time() >= next_resync:
                    next_resync = loop.time() + self._resync_interval
                    await self.resync()
            else:
                # A standby replica exports nothing: the leader's numbers are the truth, and
                # two replicas reporting would double every sum on a dashboard.
                metrics.EXCEPTIONS.clear()
                metrics.EXCEPTION_EXPIRY.clear()
                delay = self._sweep_interval
            await self._sleep(delay, stop)

    async def _sleep(self, delay: float, stop: asyncio.Event) -> None:
        """Sleep until woken, ``delay`` passes or ``stop`` is set (whoever sets it calls wake).

        No helper tasks on purpose: kopf treats every task created after it started as its own
        and, when stopping, waits 5 s for them before cancelling.
        """
        if stop.is_set():
            return
        timer = asyncio.get_running_loop().call_later(delay, self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    def stop(self, stop: asyncio.Event) -> None:
        """Set ``stop`` and wake :meth:`run` so it returns promptly."""
        stop.set()
        self._wake.set()

    async def _is_leading(self) -> bool:
        if self._leading is None:
            return True
        try:
            return await self._leading()
        except AirlockError as exc:
            _log.warning("cannot read the peering state, standing by: %s", exc)
            return False

    async def sweep(self) -> float:
        """Write every status that differs from what it should be now; update the metrics.

        Returns the seconds until the next moment a state changes by itself (an expiry), capped
        at the sweep interval.
        """
        now = self._clock()
        spec = self._policy.spec
        delay = self._sweep_interval
        for key, obj in list(self._objects.items()):
            desired = exception_status(obj, spec, now)
            if self._written.get(key) != (_resource_version(obj), desired):
                changes = status_patch(previous_status(obj), desired)
                if changes:
                    delay = min(delay, await self._write_one(key, changes, desired))
            if desired["state"] in (ExceptionState.ACTIVE.value, ExceptionState.PENDING.value):
                expires = _expiry(obj)
                if expires is not None and expires > now:
                    delay = min(delay, (expires - now).total_seconds() + _WAKE_SLACK)
        self._publish(now)
        return max(delay, 0.0)

    async def _write_one(self, key: Key, changes: dict[str, Any], desired: dict[str, Any]) -> float:
        version = self._versions.get(key)
        try:
            updated = await self._write(key[0], key[1], changes)
        except StatusWriteError as exc:
            _log.warning("status of PolicyException %s/%s not written: %s", *key, exc)
            return _RETRY_DELAY
        if self._versions.get(key) != version:
            return self._sweep_interval  # kopf delivered something newer meanwhile
        if updated is None:
            self._objects.pop(key, None)
            self._written.pop(key, None)
            self._bump(key)
        else:
            self._objects[key] = copy.deepcopy(dict(updated))
            self._written[key] = (_resource_version(updated), desired)
        return self._sweep_interval

    async def resync(self) -> None:
        """Drop objects that no longer exist but whose deletion kopf did not deliver to us."""
        if self._list is None:
            return
        started = self._counter
        try:
            present = {_key(obj) for obj in await self._list()}
        except StatusWriteError as exc:
            _log.warning("cannot list PolicyExceptions for a resync: %s", exc)
            return
        for key in list(self._objects):
            if key not in present and self._versions.get(key, 0) <= started:
                _log.info("PolicyException %s/%s is gone; forgetting it", *key)
                self._objects.pop(key, None)
                self._written.pop(key, None)
                self._bump(key)

    def _publish(self, now: datetime) -> None:
        spec = self._policy.spec
        counts = dict.fromkeys(ExceptionState, 0)
        metrics.EXCEPTION_EXPIRY.clear()
        for (namespace, name), obj in self._objects.items():
            try:
                record = ExceptionRecord.from_object(obj)
            except PolicyError:
                counts[ExceptionState.INVALID] += 1
                continue
            counts[record.state(now, spec.exceptions)] += 1
            metrics.EXCEPTION_EXPIRY.labels(namespace, name).set(record.spec.expires.timestamp())
        for state, count in counts.items():
            metrics.EXCEPTIONS.labels(state.value).set(count)


def register_exception_handlers(
    registry: kopf.OperatorRegistry, lifecycle: ExceptionLifecycle
) -> None:
    """PolicyException handlers of the controller: observe only, the lifecycle task writes."""

    @kopf.on.event(API_GROUP, CRD_VERSION, PLURAL, id="exception-observer", registry=registry)
    async def exception_observer(
        type: str | None,
        body: kopf.Body,
        **_: Any,
    ) -> None:
        if type == "DELETED":
            namespace, name = _key(body)
            lifecycle.forget(namespace, name)
        else:
            lifecycle.observe(body)
