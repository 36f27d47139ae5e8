"""What the Pod Security Standards rules share: the profile in force and the pod's fields.

Every PSS control is judged at the level and version of the object's environment
(:class:`~airlock.state.PodSecurityProfile`), as Pod Security Admission judges a namespace by its
``enforce`` and ``enforce-version`` labels. Controls visit every container of a pod: ``containers``,
``initContainers`` and ``ephemeralContainers`` (and the AI kinds' extra container lists).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from airlock.compilecache import regex
from airlock.rules.base import Scope, mapping
from airlock.state import PodSecurityProfile
from airlock.workloads import ContainerView, PodSpecView, Workload

__all__ = [
    "allowed",
    "capabilities_shown",
    "complete",
    "container_name",
    "container_sc",
    "pod_annotations",
    "pod_field",
    "pod_sc",
    "profile",
    "restricted_since",
    "shown",
    "user_namespaced",
    "windows",
    "windows_exempt",
]

# Windows pods are exempt from the Linux-only restricted controls from this version on.
WINDOWS_EXEMPT_SINCE = 25


# What a message may quote: a word (Unconfined, spc_t) or a dotted name (kernel.msgmax, a host)
_WORD = regex(r"[A-Za-z][A-Za-z_]{0,63}")
_DOTTED = regex(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63}){1,8}")


def shown(value: Any) -> str:
    """A manifest value as a message may show it: a word or a dotted name quoted
    (``'Unconfined'``, ``'kernel.msgmax'``), anything else only by its shape. Messages reach
    denials, reports and logs, and a manifest may hold anything where a profile name belongs."""
    if isinstance(value, str):
        if _WORD.fullmatch(value) or _DOTTED.fullmatch(value):
            return repr(value)
        return f"a value of {len(value)} characters"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return f"a {type(value).__name__}"


_CAPABILITY = regex(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def capabilities_shown(names: list[str]) -> str:
    """Capability names as a message lists them (``SYS_ADMIN, NET_RAW``); a string that is no
    such name is described like any other manifest value (see :func:`shown`)."""
    return ", ".join(n if _CAPABILITY.fullmatch(n) else shown(n) for n in names)


def allowed(value: Any, values: frozenset[str]) -> bool:
    """``value`` is one of ``values`` (manifests are untrusted: it may be a list or a map)."""
    return isinstance(value, str) and value in values


def profile(scope: Scope) -> PodSecurityProfile:
    return scope.env.pod_security


def restricted_since(scope: Scope, minor: int) -> bool:
    """True when the environment is judged at restricted level by a standard of 1.``minor``+."""
    pss = scope.env.pod_security
    return pss.restricted and pss.minor >= minor


def complete(wl: Workload) -> Iterator[PodSpecView]:
    """Pod specs whose whole pod is here: a missing setting in a fragment proves nothing."""
    for pod in wl.pod_specs:
        if pod.complete:
            yield pod


def container_sc(c: ContainerView) -> Mapping[str, Any]:
    return mapping(c.container.get("securityContext"))


def container_name(c: ContainerView) -> str:
    name = c.container.get("name")
    return name if isinstance(name, str) else "?"


def pod_field(pod: PodSpecView, key: str) -> Any:
    """A pod-level field as it applies (Argo templates inherit workflow-level defaults)."""
    found = pod.effective(key)
    return None if found is None else found[1]


def pod_sc(pod: PodSpecView) -> Mapping[str, Any]:
    return mapping(pod_field(pod, "securityContext"))


def windows(pod: PodSpecView) -> bool:
    """A pod that declares ``os.name: windows``."""
    return mapping(pod.spec.get("os")).get("name") == "windows"


def windows_exempt(pod: PodSpecView, scope: Scope) -> bool:
    """Windows pods skip the Linux-only restricted controls in standards 1.25 and later."""
    return scope.env.pod_security.minor >= WINDOWS_EXEMPT_SINCE and windows(pod)


def user_namespaced(pod: PodSpecView) -> bool:
    """The pod runs in its own user namespace (``hostUsers: false``)."""
    return pod_field(pod, "hostUsers") is False


def pod_annotations(wl: Workload, pod: PodSpecView) -> Mapping[str, Any]:
    """The annotations of the pod that ``pod`` describes (a template's, or the Pod's own)."""
    ptr = pod.metadata_pointer
    if ptr is None:
        return {}
    node: Any = wl.obj
    for key in ptr:
        if isinstance(key, int):
            node = node[key] if isinstance(node, list) and -len(node) <= key < len(node) else None
        else:
            node = mapping(node).get(key)
        if node is None:
            return {}
    return mapping(mapping(node).get("annotations"))
