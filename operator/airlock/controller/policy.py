"""BaselinePolicy status: validate every policy and say so in ``status``, exactly.

The controller only *reports*: the webhook keeps the last valid policy in memory on its own
(:class:`airlock.admission.store.StateStore`), and the admission check on BaselinePolicy refuses
invalid ones up front. A policy that lands anyway (webhook down, ``failurePolicy: Ignore``)
gets ``Ready=False`` with every failing field path, and a Warning Event.

The controller also keeps the selected policy's spec in memory (:class:`PolicyCache`), because a
PolicyException's state depends on the policy's ``exceptions`` settings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from airlock import metrics
from airlock.cluster import IN_FORCE_STATUS_KEY, PolicyTracker
from airlock.controller._status import (
    condition,
    generation_of,
    previous_status,
    status_patch,
    truncate,
)
from airlock.controller.kube import CRD_VERSION
from airlock.errors import PolicyError
from airlock.model import API_GROUP, PolicySpec, load_policy

__all__ = ["PolicyCache", "policy_status", "register_policy_handlers"]

_log = logging.getLogger(__name__)

PLURAL = "baselinepolicies"


def policy_status(obj: Mapping[str, Any], now: datetime, *, active: bool = True) -> dict[str, Any]:
    """The ``status`` a BaselinePolicy should have (the keys the controller owns).

    ``Ready`` says whether this generation validates (reason ``Valid``/``Invalid``, the message
    lists every failing field path). ``Active`` says whether it is the policy in force: a
    policy with another name than the selected one never is, and an invalid generation of the
    selected policy leaves the previous valid generation (``activeGeneration``) in force.
    """
    generation = generation_of(obj)
    previous = previous_status(obj)
    recorded = previous.get(IN_FORCE_STATUS_KEY)
    recorded = recorded if isinstance(recorded, Mapping) else None
    prior_active = previous.get("activeGeneration")
    prior_active = prior_active if isinstance(prior_active, int) else None
    try:
        spec = load_policy(obj)
    except PolicyError as exc:
        ready = condition(
            "Ready",
            False,
            "Invalid",
            str(exc),
            now=now,
            generation=generation,
            previous=previous,
        )
        active_generation = prior_active
        record = recorded if active else None  # the last valid generation stays recorded
        environments = previous.get("environments")
        environments = environments if isinstance(environments, int) else None
        if not active:
            in_force = (False, "NotSelected", _not_selected())
        elif prior_active is not None:
            in_force = (
                True,
                "PreviousGenerationInForce",
                f"generation {prior_active} stays in force until the errors are fixed",
            )
        else:
            in_force = (
                False,
                "NoValidGeneration",
                "no generation of this policy has been valid: nothing is denied or patched, "
                "every rule audits",
            )
    else:
        names = [env.name for env in spec.environments]
        ready = condition(
            "Ready",
            True,
            "Valid",
            f"valid: {len(names)} environment(s): {', '.join(names)}",
            now=now,
            generation=generation,
            previous=previous,
        )
        active_generation = generation if active else prior_active
        # What a webhook replica that starts while a later generation is invalid reads, so it
        # applies the same policy as its peers (airlock.cluster).
        record = (
            {"generation": generation, "spec": _plain(obj.get("spec") or {})} if active else None
        )
        environments = len(names)
        if active:
            in_force = (True, "InForce", f"generation {generation} is in force")
        else:
            in_force = (False, "NotSelected", _not_selected())
    ok, reason, message = in_force
    return {
        "observedGeneration": generation,
        "activeGeneration": active_generation,
        IN_FORCE_STATUS_KEY: record,
        "environments": environments,
        "conditions": [
            ready,
            condition(
                "Active", ok, reason, message, now=now, generation=generation, previous=previous
            ),
        ],
    }


def _plain(value: Any) -> Any:
    """kopf's read-only views as plain JSON values."""
    return json.loads(json.dumps(value, default=dict))


def _not_selected() -> str:
    return (
        "not the policy in force: Airlock enforces the BaselinePolicy named by its "
        "--policy-name setting"
    )


class PolicyCache:
    """The followed policy as the controller applies it to PolicyExceptions: the same
    :class:`~airlock.cluster.PolicyTracker` rules as the webhook and the audit (the last valid
    generation, the recorded one, or audit everywhere when there is none), plus the
    controller's own ``airlock_policy_info`` and ``airlock_policy_load_errors_total``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tracker = PolicyTracker(name)

    @property
    def spec(self) -> PolicySpec:
        return self.tracker.in_force.spec

    @property
    def generation(self) -> int | None:
        return self.tracker.in_force.generation

    def observe(self, obj: Mapping[str, Any]) -> bool:
        """Take a new version of a BaselinePolicy; True when the spec in force changed."""
        meta = obj.get("metadata") or {}
        if meta.get("name") != self.name:
            return False
        changed = self.tracker.observe(obj)
        if self.tracker.new_refusal:  # each bad generation once, not once per event
            metrics.POLICY_LOAD_ERRORS.inc()
        metrics.show_policy(self.name, self.generation)
        return changed

    def forget(self, name: str) -> bool:
        """The named policy was deleted; True when that changed the spec in force."""
        if name != self.name:
            return False
        changed = self.tracker.forget(name)
        metrics.show_policy(self.name, None)
        return changed


def register_policy_handlers(
    registry: kopf.OperatorRegistry,
    cache: PolicyCache,
    *,
    on_change: Callable[[], None],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """BaselinePolicy handlers of the controller: keep ``cache`` current and write status.

    The cache is fed by an *index* handler on purpose: kopf runs every index handler over the
    initial listing of every indexed resource before it calls any other handler, so the
    PolicyException handlers never see a policy that is not loaded yet.
    """

    @kopf.index(API_GROUP, CRD_VERSION, PLURAL, id="policy-cache", registry=registry)
    async def policy_cache(body: kopf.Body, **_: Any) -> None:
        if cache.observe(body):
            on_change()

    @kopf.on.event(API_GROUP, CRD_VERSION, PLURAL, id="policy-status", registry=registry)
    async def policy_status_writer(
        type: str | None,
        body: kopf.Body,
        patch: kopf.Patch,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
        **_: Any,
    ) -> None:
        name = str(body.get("metadata", {}).get("name") or "")
        if type == "DELETED":
            if cache.forget(name):
                on_change()
            return
        desired = policy_status(body, clock(), active=name == cache.name)
        changes = status_patch(previous_status(body), desired)
        if not changes:
            return
        patch["status"] = changes
        ready = desired["conditions"][0]
        if ready["status"] == "False" and "conditions" in changes:
            # A Warning Event (kubectl describe) as well as the status: the admin who applied
            # it with the webhook down should hear about it where they look.
            logger.warning("BaselinePolicy %s is invalid: %s", name, ready["message"])
            kopf.warn(body, reason="InvalidPolicy", message=truncate(ready["message"], 1024))
        else:
            _log.info("BaselinePolicy %s: %s", name, ready["message"])
