"""The webhook's picture of the cluster: :class:`~airlock.cluster.ClusterState` plus metrics.

The rules for what is in force (a valid policy, the last valid generation, the one recorded in
``status.inForce``, or audit everywhere when there is none) live in :mod:`airlock.cluster`, so
the webhook, the audit and the controller follow one policy the same way. This class adds what
only the webhook exports: ``airlock_policy_info`` (the generation in force; absent when no
policy is) and ``airlock_policy_load_errors_total`` (once per refused generation).

Readiness requires the initial listing of the policy, the namespaces *and* the exceptions:
without namespaces every workload would be judged in the default environment, and without
exceptions an approved waiver would be ignored (a spurious denial).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from airlock import metrics
from airlock.cluster import SYNC_KINDS, ClusterState, SyncKind, utcnow
from airlock.detectors import FingerprintKey
from airlock.errors import PolicyError

__all__ = ["SYNC_KINDS", "StateStore", "SyncKind"]


class StateStore(ClusterState):
    """The cluster state the webhook reads on every request (``context``), with its metrics.

    ``set_policy`` and ``set_exception`` return the object's validation error (None when it was
    adopted), for the watch handlers' logs. With a ``fingerprint_key`` (the installation's, from
    ``--fingerprint-key-file``), the policy every request is judged by keys its fingerprints
    (see :class:`~airlock.cluster.ClusterState`).
    """

    def __init__(
        self,
        policy_name: str = "default",
        *,
        required: Iterable[SyncKind] = ("policy", "namespaces", "exceptions"),
        clock: Callable[[], datetime] = utcnow,
        fingerprint_key: FingerprintKey | None = None,
    ) -> None:
        super().__init__(
            policy_name, required=required, clock=clock, fingerprint_key=fingerprint_key
        )

    def set_policy(self, obj: Mapping[str, Any]) -> PolicyError | None:
        """Observe a BaselinePolicy; its validation error, or None when it validates (or is
        another policy than the followed one)."""
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        if meta.get("name") != self.policy_name:
            return None
        error = super().set_policy(obj)
        metrics.show_policy(self.policy_name, self.in_force.generation)
        if self.tracker.new_refusal:
            metrics.POLICY_LOAD_ERRORS.inc()
        return error

    def delete_policy(self, name: str | None = None) -> None:
        super().delete_policy(name)
        if name is None or name == self.policy_name:
            metrics.show_policy(self.policy_name, self.in_force.generation)

    @property
    def policy_generation(self) -> str | None:
        """``metadata.generation`` of the policy in force; None when no policy is."""
        generation = self.in_force.generation
        return None if generation is None else str(generation)
