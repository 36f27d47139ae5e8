"""Render Airlock's ValidatingWebhookConfiguration and MutatingWebhookConfiguration.

One function builds both objects for the chart's tests, ``manifests/`` and the controller (which
patches ``caBundle`` when it rotates the CA). The groups, and why they differ:

``pods.validate.airlock.dev``
    Pods, CREATE and UPDATE, ``failurePolicy: Fail``, 5 s: every workload ends up as pods, so
    this is the check that must not be skipped when the webhook is down.
``workloads.validate.airlock.dev``
    Pod controllers and AI kinds: ``Ignore``. They give early, precise answers (the user sees the
    denial at ``kubectl apply`` rather than in a ReplicaSet event) but the pod check behind them
    stays closed, so an outage must not block every Deployment rollout.
``configmaps.validate.airlock.dev`` / ``policies.validate.airlock.dev``
    ConfigMaps (plaintext credentials) and Airlock's own CRDs: ``Ignore``.
``rbac.validate.airlock.dev``
    RoleBindings, ClusterRoleBindings and ClusterRoles (bindings across environments, workload
    ServiceAccounts with cluster-admin power): ``Ignore``. The workloads running as such an
    account are judged again at their own admission, and an outage must never block the RBAC
    that controllers and operators write all the time.
``pods.mutate.airlock.dev`` / ``exceptions.mutate.airlock.dev``
    Secure defaults on Pod CREATE (and digest pins of ephemeral containers) and the
    creator/approver annotations of PolicyExceptions.
``workloads.mutate.airlock.dev``
    Digest pins (``mutations.pinImageDigests``) of pod controllers and AI kinds: ``Ignore``;
    without pinning in the policy the answer is an empty admission.

Every webhook excludes the namespaces named in ``excluded_namespaces`` and Airlock's own
namespace by the immutable ``kubernetes.io/metadata.name`` label (a namespace cannot relabel
itself into or out of the exclusion). Cluster-scoped objects (BaselinePolicy, cluster-wide AI
templates) are not subject to ``namespaceSelector``, as the API defines.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml

__all__ = [
    "DEFAULT_GROUPS",
    "MUTATING_WEBHOOKS",
    "RBAC_RULES",
    "VALIDATING_WEBHOOKS",
    "WORKLOAD_RULES",
    "WebhookGroup",
    "render_webhook_configurations",
    "to_yaml",
    "write_webhook_configurations",
]

FailurePolicy = Literal["Fail", "Ignore"]

_CU: Final = ("CREATE", "UPDATE")

# (apiGroups, resources) of every pod controller and AI kind the engine finds pod specs in.
WORKLOAD_RULES: Final[tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = (
    (("",), ("replicationcontrollers", "podtemplates")),
    (("apps",), ("deployments", "statefulsets", "daemonsets", "replicasets")),
    (("batch",), ("jobs", "cronjobs")),
    (
        ("kubeflow.org",),
        (
            "pytorchjobs",
            "tfjobs",
            "mpijobs",
            "xgboostjobs",
            "paddlejobs",
            "jaxjobs",
            "mxjobs",
            "notebooks",
        ),
    ),
    (("trainer.kubeflow.org",), ("trainjobs", "trainingruntimes", "clustertrainingruntimes")),
    (("jobset.x-k8s.io",), ("jobsets",)),
    (
        ("serving.kserve.io",),
        (
            "inferenceservices",
            "servingruntimes",
            "clusterservingruntimes",
            "trainedmodels",
            "llminferenceservices",
            "llminferenceserviceconfigs",
        ),
    ),
    (("ray.io",), ("rayclusters", "rayjobs", "rayservices", "raycronjobs")),
    (
        ("argoproj.io",),
        ("workflows", "workflowtemplates", "cronworkflows", "clusterworkflowtemplates"),
    ),
    (("batch.volcano.sh",), ("jobs",)),
)


# (apiGroups, resources) the RBAC rules judge (airlock.rbac).
RBAC_RULES: Final = (
    (("rbac.authorization.k8s.io",), ("rolebindings", "clusterrolebindings", "clusterroles")),
)


@dataclass(frozen=True, slots=True)
class WebhookGroup:
    """One webhook entry: what it matches and how the API server treats a failure or timeout."""

    name: str
    path: str
    rules: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...]
    # (apiGroups, resources, operations)
    failure_policy: FailurePolicy
    timeout_seconds: int
    match_conditions: tuple[tuple[str, str], ...] = ()  # (name, CEL expression)


# The fail-closed Pod webhook is only called when there is something to check: a CREATE, or an
# UPDATE that changes the spec. A label, annotation or finalizer change has nothing for the rules
# (the handler would only warn), and must keep working while Airlock is down: controllers remove
# finalizers from Pods (Job tracking) and relabel them all the time.
POD_SPEC_CHANGED: Final = (
    "create-or-spec-change",
    "request.operation == 'CREATE' || object.spec != oldObject.spec",
)

VALIDATING_WEBHOOKS: Final = (
    WebhookGroup(
        "pods.validate.airlock.dev",
        "/validate",
        ((("",), ("pods",), _CU),),
        "Fail",
        5,
        (POD_SPEC_CHANGED,),
    ),
    WebhookGroup(
        "workloads.validate.airlock.dev",
        "/validate",
        tuple((groups, resources, _CU) for groups, resources in WORKLOAD_RULES),
        "Ignore",
        5,
    ),
    WebhookGroup(
        "configmaps.validate.airlock.dev",
        "/validate",
        ((("",), ("configmaps",), _CU),),
        "Ignore",
        5,
    ),
    WebhookGroup(
        "policies.validate.airlock.dev",
        "/validate",
        ((("airlock.dev",), ("baselinepolicies", "policyexceptions"), _CU),),
        "Ignore",
        5,
    ),
    WebhookGroup(
        "rbac.validate.airlock.dev",
        "/validate",
        tuple((groups, resources, _CU) for groups, resources in RBAC_RULES),
        "Ignore",
        5,
    ),
)

MUTATING_WEBHOOKS: Final = (
    WebhookGroup(
        "pods.mutate.airlock.dev",
        "/mutate",
        (
            (("",), ("pods",), ("CREATE",)),
            (("",), ("pods/ephemeralcontainers",), ("UPDATE",)),
        ),
        "Ignore",
        5,
    ),
    WebhookGroup(
        "workloads.mutate.airlock.dev",
        "/mutate",
        tuple((groups, resources, _CU) for groups, resources in WORKLOAD_RULES),
        "Ignore",
        5,
    ),
    WebhookGroup(
        "exceptions.mutate.airlock.dev",
        "/mutate",
        ((("airlock.dev",), ("policyexceptions",), _CU),),
        "Ignore",
        5,
    ),
)

DEFAULT_GROUPS: Final = {g.name: g for g in (*VALIDATING_WEBHOOKS, *MUTATING_WEBHOOKS)}


def _client_config(
    path: str,
    service: tuple[str, str, int] | None,
    url: str | None,
    ca_bundle: bytes,
) -> dict[str, Any]:
    config: dict[str, Any]
    if service is not None:
        namespace, name, port = service
        config = {"service": {"namespace": namespace, "name": name, "path": path, "port": port}}
    else:
        config = {"url": (url or "").rstrip("/") + path}
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode("ascii")
    return config


def _webhook(
    group: WebhookGroup,
    *,
    client_config: dict[str, Any],
    excluded: Sequence[str],
    failure_policy: FailurePolicy,
    timeout: int,
    mutating: bool,
) -> dict[str, Any]:
    hook: dict[str, Any] = {
        "name": group.name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "timeoutSeconds": timeout,
        "matchPolicy": "Equivalent",
        "clientConfig": client_config,
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": list(excluded),
                }
            ]
        },
        "rules": [
            {
                "apiGroups": list(groups),
                "apiVersions": ["*"],
                "resources": list(resources),
                "operations": list(operations),
                "scope": "*",
            }
            for groups, resources, operations in group.rules
        ],
    }
    if group.match_conditions:
        hook["matchConditions"] = [
            {"name": name, "expression": expression} for name, expression in group.match_conditions
        ]
    if mutating:
        hook["reinvocationPolicy"] = "Never"
    return hook


def render_webhook_configurations(
    *,
    name: str = "airlock",
    service: tuple[str, str, int] | None = None,
    url: str | None = None,
    ca_bundle: bytes = b"",
    airlock_namespace: str = "airlock-system",
    excluded_namespaces: Sequence[str] = ("kube-system", "kube-public", "kube-node-lease"),
    failure_policies: Mapping[str, FailurePolicy] | None = None,
    timeouts: Mapping[str, int] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The ValidatingWebhookConfiguration and MutatingWebhookConfiguration, in that order.

    Exactly one of ``service`` (namespace, name, port) and ``url`` (``https://host:port``, the
    path is appended) says where the API server sends reviews. ``ca_bundle`` is the PEM of the CA
    that signed the serving certificate (empty when something else, such as cert-manager's CA
    injector, fills it). ``failure_policies`` and ``timeouts`` override the defaults per webhook
    name (``pods.validate.airlock.dev`` …). Raises ``ValueError`` on an unknown webhook name or
    a timeout outside 1..30 s (the API server's range).
    """
    if (service is None) == (url is None):
        raise ValueError("give exactly one of service and url")
    if url is not None and not url.startswith("https://"):
        raise ValueError("the API server only calls webhooks over https://")
    failure_policies = dict(failure_policies or {})
    timeouts = dict(timeouts or {})
    unknown = (set(failure_policies) | set(timeouts)) - set(DEFAULT_GROUPS)
    if unknown:
        raise ValueError(f"unknown webhook names: {', '.join(sorted(unknown))}")
    for hook, seconds in timeouts.items():
        if not 1 <= seconds <= 30:
            raise ValueError(f"timeout of {hook} must be between 1 and 30 seconds")
    excluded = sorted({*excluded_namespaces, airlock_namespace})
    meta: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/name": "airlock", **(labels or {})},
    }
    out: list[dict[str, Any]] = []
    for kind, groups, mutating in (
        ("ValidatingWebhookConfiguration", VALIDATING_WEBHOOKS, False),
        ("MutatingWebhookConfiguration", MUTATING_WEBHOOKS, True),
    ):
        out.append(
            {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {**meta, "labels": dict(meta["labels"])},
                "webhooks": [
                    _webhook(
                        g,
                        client_config=_client_config(g.path, service, url, ca_bundle),
                        excluded=excluded,
                        failure_policy=failure_policies.get(g.name, g.failure_policy),
                        timeout=timeouts.get(g.name, g.timeout_seconds),
                        mutating=mutating,
                    )
                    for g in groups
                ],
            }
        )
    return out


def to_yaml(objects: Sequence[Mapping[str, Any]]) -> str:
    """Multi-document YAML, keys in the order written (the order people read them in)."""
    return yaml.safe_dump_all(
        [dict(o) for o in objects], sort_keys=False, default_flow_style=False, explicit_start=True
    )


def write_webhook_configurations(path: Path | str, **kwargs: Any) -> None:
    """Render (see :func:`render_webhook_configurations`) and write to ``path`` ("-" = stdout)."""
    text = to_yaml(render_webhook_configurations(**kwargs))
    if str(path) == "-":
        sys.stdout.write(text)
    else:
        Path(path).write_text(text, encoding="utf-8")
