"""Environment isolation: one NetworkPolicy per labelled namespace, admitting only its environment.

With ``isolation: enforce`` the controller keeps, in every namespace that carries the environment
label (and is not excluded), a NetworkPolicy named ``airlock-environment-isolation``: it selects
every pod of the namespace and admits ingress only from namespaces of the same environment, of
environments declared able to reach it (``reachableEnvironments``), and from the policy's
``isolationAllowedNamespaces`` (monitoring, ingress controllers), matched by the immutable
``kubernetes.io/metadata.name`` label.

Ownership is the ``app.kubernetes.io/managed-by: airlock`` label. The controller never edits or
deletes a NetworkPolicy without it, even one with the same name (an admin's hand-made one is
left alone and still counts as isolation for the audit). Its own are repaired when edited by
hand (the whole ``spec`` is put back with a JSON patch, so fields added by someone else go too)
and removed when they are no longer wanted: isolation set to ``audit`` or ``off``, the namespace
unlabelled or excluded. So ``audit`` means exactly "report, touch nothing": the NetworkPolicies
exist only while the policy says ``enforce``.

:func:`desired_network_policy` and :func:`plan_isolation` are pure; :class:`IsolationReconciler`
applies a plan through the controller's Kubernetes seam (:class:`~airlock.controller.kube.Kube`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from airlock.controller.kube import Kube
from airlock.errors import KubeError
from airlock.model import PolicySpec

__all__ = [
    "MANAGED_BY",
    "MANAGED_BY_LABEL",
    "NETWORK_POLICY_NAME",
    "IsolationPlan",
    "IsolationReconciler",
    "ObservedNetworkPolicy",
    "desired_network_policy",
    "plan_isolation",
]

_log = logging.getLogger(__name__)

NETWORK_POLICY_NAME: Final = "airlock-environment-isolation"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "airlock"
NAME_LABEL: Final = "kubernetes.io/metadata.name"
GROUP: Final = "networking.k8s.io"
VERSION: Final = "v1"
PLURAL: Final = "networkpolicies"


def desired_network_policy(
    namespace: str,
    environment: str,
    label_key: str,
    allowed_namespaces: Sequence[str],
    *,
    reachable_from: Sequence[str] = (),
) -> dict[str, Any]:
    """The isolation NetworkPolicy of ``namespace`` (environment ``environment``).

    ``reachable_from`` names other environments whose ``reachableEnvironments`` include this
    one: their namespaces are admitted too, so declaring a reach in the policy keeps working
    once isolation is enforced.
    """
    environments = [environment, *sorted(set(reachable_from) - {environment})]
    same_env: dict[str, Any]
    if len(environments) == 1:
        same_env = {"matchLabels": {label_key: environment}}
    else:
        same_env = {
            "matchExpressions": [{"key": label_key, "operator": "In", "values": environments}]
        }
    peers: list[dict[str, Any]] = [{"namespaceSelector": same_env}]
    allowed = sorted(set(allowed_namespaces))
    if allowed:
        peers.append(
            {
                "namespaceSelector": {
                    "matchExpressions": [{"key": NAME_LABEL, "operator": "In", "values": allowed}]
                }
            }
        )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": NETWORK_POLICY_NAME,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers}],
        },
    }


@dataclass(frozen=True, slots=True)
class ObservedNetworkPolicy:
    """A NetworkPolicy named ``airlock-environment-isolation`` as the watch last saw it."""

    namespace: str
    managed: bool  # carries app.kubernetes.io/managed-by: airlock
    spec: Mapping[str, Any]

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> ObservedNetworkPolicy:
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        labels = meta.get("labels")
        labels = labels if isinstance(labels, Mapping) else {}
        spec = obj.get("spec")
        return cls(
            namespace=str(meta.get("namespace") or ""),
            managed=labels.get(MANAGED_BY_LABEL) == MANAGED_BY,
            spec=_plain(spec) if isinstance(spec, Mapping) else {},
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class IsolationPlan:
    """What to change: NetworkPolicies to create, specs to put back, namespaces to clean."""

    create: tuple[dict[str, Any], ...] = ()
    repair: tuple[dict[str, Any], ...] = ()
    delete: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.create or self.repair or self.delete)


def plan_isolation(
    spec: PolicySpec,
    namespaces: Mapping[str, Mapping[str, str]],
    observed: Mapping[str, ObservedNetworkPolicy],
    *,
    terminating: frozenset[str] = frozenset(),
) -> IsolationPlan:
    """Compare the NetworkPolicies the policy wants with those the watch sees.

    Wanted: with ``isolation: enforce``, one per namespace whose environment label names a
    declared environment, except excluded and terminating namespaces. Foreign NetworkPolicies
    (without the managed-by label) are never in the plan.
    """
    wanted: dict[str, dict[str, Any]] = {}
    if spec.isolation == "enforce":
        declared = {env.name for env in spec.environments}
        reach: dict[str, list[str]] = {}
        for env in spec.environments:
            for target in env.reachable_environments:
                reach.setdefault(target, []).append(env.name)
        excluded = set(spec.excluded_namespaces)
        for ns, labels in namespaces.items():
            env_name = labels.get(spec.environment_label)
            if not env_name or env_name not in declared or ns in excluded or ns in terminating:
                continue
            wanted[ns] = desired_network_policy(
                ns,
                env_name,
                spec.environment_label,
                spec.isolation_allowed_namespaces,
                reachable_from=reach.get(env_name, ()),
            )
    create: list[dict[str, Any]] = []
    repair: list[dict[str, Any]] = []
    for ns, body in sorted(wanted.items()):
        seen = observed.get(ns)
        if seen is None:
            create.append(body)
        elif seen.managed and dict(seen.spec) != body["spec"]:
            repair.append(body)
    delete = tuple(sorted(ns for ns, seen in observed.items() if seen.managed and ns not in wanted))
    return IsolationPlan(tuple(create), tuple(repair), delete)


@dataclass
class IsolationReconciler:
    """Keeps the cluster's isolation NetworkPolicies equal to the plan; fed by a watch."""

    kube: Kube
    observed: dict[str, ObservedNetworkPolicy] = field(default_factory=dict)
    owner: Callable[[], Mapping[str, Any] | None] = lambda: None
    """The owner reference put on every NetworkPolicy created (see ReportWriter.owner)."""

    def observe(self, obj: Mapping[str, Any]) -> bool:
        """Record a watched NetworkPolicy named ``airlock-environment-isolation``.

        True when it differs from what was known (the caller then reconciles: a hand edit of
        one of ours is put back).
        """
        seen = ObservedNetworkPolicy.from_object(obj)
        if not seen.namespace:
            return False
        if self.observed.get(seen.namespace) == seen:
            return False
        self.observed[seen.namespace] = seen
        return True

    def forget(self, namespace: str) -> bool:
        return self.observed.pop(namespace, None) is not None

    async def reconcile(
        self,
        spec: PolicySpec,
        namespaces: Mapping[str, Mapping[str, str]],
        *,
        terminating: frozenset[str] = frozenset(),
    ) -> IsolationPlan:
        """Apply the plan; failures are logged and retried at the next reconcile."""
        plan = plan_isolation(spec, namespaces, self.observed, terminating=terminating)
        owner = self.owner()
        for wanted in plan.create:
            ns = wanted["metadata"]["namespace"]
            body = wanted
            if owner is not None:
                body = {**wanted, "metadata": {**wanted["metadata"], "ownerReferences": [owner]}}
            result = await self._call(
                "create",
                ns,
                self.kube.custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                PLURAL,
                body,
            )
            if result is not None:
                self.observe(result)
                _log.info("created NetworkPolicy %s/%s", ns, NETWORK_POLICY_NAME)
        for body in plan.repair:
            ns = body["metadata"]["namespace"]
            result = await self._call(
                "repair",
                ns,
                self.kube.custom.patch_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                PLURAL,
                NETWORK_POLICY_NAME,
                [{"op": "replace", "path": "/spec", "value": body["spec"]}],
                _content_type="application/json-patch+json",
            )
            if result is not None:
                self.observe(result)
                _log.warning(
                    "NetworkPolicy %s/%s was changed by hand; its spec was put back",
                    ns,
                    NETWORK_POLICY_NAME,
                )
        for ns in plan.delete:
            done = await self._call(
                "delete",
                ns,
                self.kube.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                PLURAL,
                NETWORK_POLICY_NAME,
            )
            if done is not None:
                self.forget(ns)
                _log.info("removed NetworkPolicy %s/%s", ns, NETWORK_POLICY_NAME)
        return plan

    async def _call(self, what: str, namespace: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One API call through the seam; None when it failed (logged), the answer otherwise."""
        try:
            result = await self.kube.call(fn, *args, **kwargs)
        except KubeError as exc:
            if what == "delete" and exc.status == 404:
                return {}
            if what == "create" and exc.status == 409:
                return None  # someone else's (or ours, not yet seen): the watch will tell
            if exc.status == 403 and what == "create":
                # typically a namespace being deleted
                _log.debug("cannot create NetworkPolicy in %s: HTTP 403", namespace)
                return None
            _log.warning(
                "NetworkPolicy %s/%s: %s failed: %s", namespace, NETWORK_POLICY_NAME, what, exc
            )
            return None
        return result if isinstance(result, Mapping) else {}
