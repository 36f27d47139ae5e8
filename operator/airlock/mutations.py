"""Safe defaults applied at admission: fill what is unset, never override what is written.

Every change is a JSON Patch (RFC 6902) operation plus a sentence the webhook returns as an
admission warning, so nothing is changed behind the user's back. Pure: image digests come already
resolved in the context (the admission layer does the registry I/O).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airlock.images import InvalidImageReference, parse_image
from airlock.records import record
from airlock.state import EvalContext
from airlock.workloads import ContainerView, PodSpecView, Pointer, discover, json_path, json_pointer

__all__ = ["Patch", "mutate", "pin_images"]

_RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


@record(frozen=True)
class Patch:
    ops: tuple[dict[str, Any], ...]  # JSON Patch operations, in application order
    changes: tuple[str, ...]  # one human sentence per change

    def __bool__(self) -> bool:
        return bool(self.ops)


class _Builder:
    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.changes: list[str] = []

    def add(self, pointer: Pointer, value: Any, change: str) -> None:
        self.ops.append({"op": "add", "path": json_pointer(pointer), "value": value})
        self.changes.append(change)

    def replace(self, pointer: Pointer, value: Any, change: str) -> None:
        self.ops.append({"op": "replace", "path": json_pointer(pointer), "value": value})
        self.changes.append(change)

    def fill(self, base: Pointer, existing: Any, key: str, wanted: Mapping[str, Any]) -> None:
        """Add the ``wanted`` keys missing under ``base/key``, creating ``key`` if absent."""
        target = (*base, key)
        if not isinstance(existing, Mapping):
            self.add(target, dict(wanted), _describe(target, wanted))
            return
        for k, v in wanted.items():
            if k not in existing:
                self.add((*target, k), v, _describe((*target, k), v))


def _describe(pointer: Pointer, value: Any) -> str:
    return f"airlock set {json_path(pointer)} = {_show(value)} (unset before)"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def mutate(obj: Mapping[str, Any], ctx: EvalContext) -> Patch:
    """The patch that brings ``obj`` to the policy's safe defaults (empty when nothing to do)."""
    wl = discover(obj)
    ns = wl.namespace
    policy = ctx.policy
    if ns is not None and ns in policy.excluded_namespaces:
        return Patch((), ())
    switches = policy.spec.mutations
    b = _Builder()
    if switches.secure_defaults:
        for pod in wl.pod_specs:
            if pod.standard and pod.complete:
                _secure_pod(pod, b)
    if switches.inherit_owner_label and wl.pod_specs:
        _inherit_owner(obj, ctx, ns, b)
    if switches.pin_image_digests:
        _pin_all(wl.pod_specs, ctx, b)
    return Patch(tuple(b.ops), tuple(b.changes))


def pin_images(
    obj: Mapping[str, Any], ctx: EvalContext, *, groups: frozenset[str] | None = None
) -> Patch:
    """Only the digest pins of ``obj`` (for kinds whose pod specs get no other defaults at
    admission: controllers and AI kinds, whose pods get them when they are created).
    ``groups``: only containers of these groups (``ephemeralContainers`` of a running Pod)."""
    wl = discover(obj)
    ns = wl.namespace
    if (ns is not None and ns in ctx.policy.excluded_namespaces) or not (
        ctx.policy.spec.mutations.pin_image_digests
    ):
        return Patch((), ())
    b = _Builder()
    _pin_all(wl.pod_specs, ctx, b, groups)
    return Patch(tuple(b.ops), tuple(b.changes))


def _pin_all(
    pods: Sequence[PodSpecView],
    ctx: EvalContext,
    b: _Builder,
    groups: frozenset[str] | None = None,
) -> None:
    # every container of every pod spec found, init and ephemeral included: the pointer to
    # each image is exact whatever the kind's layout
    if ctx.image_digests:
        for pod in pods:
            for c in pod.containers:
                if groups is None or c.group in groups:
                    _pin(c, ctx.image_digests, b)


def _secure_pod(pod: PodSpecView, b: _Builder) -> None:
    spec = pod.spec
    if "automountServiceAccountToken" not in spec:
        pointer = (*pod.pointer, "automountServiceAccountToken")
        b.add(pointer, False, _describe(pointer, False))
    pod_sc = spec.get("securityContext")
    containers_set_seccomp = any(
        isinstance(c.container.get("securityContext"), Mapping)
        and "seccompProfile" in c.container["securityContext"]
        for c in pod.containers
    )
    pod_has_seccomp = isinstance(pod_sc, Mapping) and "seccompProfile" in pod_sc
    if not pod_has_seccomp and not containers_set_seccomp:
        b.fill(pod.pointer, pod_sc, "securityContext", {"seccompProfile": dict(_RUNTIME_DEFAULT)})
    for c in pod.containers:
        if c.group in ("containers", "initContainers"):
            _secure_container(c, b)


def _secure_container(c: ContainerView, b: _Builder) -> None:
    sc = c.container.get("securityContext")
    sc_map: Mapping[str, Any] = sc if isinstance(sc, Mapping) else {}
    if sc_map.get("privileged") is True:
        return  # the API rejects these defaults on a privileged container; the rules report it
    caps = sc_map.get("capabilities")
    added = caps.get("add") if isinstance(caps, Mapping) else None
    sys_admin = isinstance(added, list) and "SYS_ADMIN" in added
    wanted: dict[str, Any] = {}
    # allowPrivilegeEscalation: false is invalid together with CAP_SYS_ADMIN: leave it to the rule
    if "allowPrivilegeEscalation" not in sc_map and not sys_admin:
        wanted["allowPrivilegeEscalation"] = False
    if caps is None:
        wanted["capabilities"] = {"drop": ["ALL"]}
    if wanted:
        b.fill(c.pointer, sc, "securityContext", wanted)
    if isinstance(caps, Mapping) and "drop" not in caps:
        pointer = (*c.pointer, "securityContext", "capabilities", "drop")
        b.add(pointer, ["ALL"], _describe(pointer, ["ALL"]))


def _inherit_owner(obj: Mapping[str, Any], ctx: EvalContext, ns: str | None, b: _Builder) -> None:
    label = ctx.policy.owner_label
    meta = obj.get("metadata")
    meta_map: Mapping[str, Any] = meta if isinstance(meta, Mapping) else {}
    if meta_map.get("ownerReferences"):
        return
    labels = meta_map.get("labels")
    if isinstance(labels, Mapping) and labels.get(label):
        return
    owner = ctx.labels_of(ns).get(label)
    if not owner:
        return
    if isinstance(labels, Mapping):
        pointer: Pointer = ("metadata", "labels", label)
        b.add(pointer, owner, f"airlock set label {label}={owner}, inherited from namespace {ns}")
    elif isinstance(meta, Mapping):
        b.add(
            ("metadata", "labels"),
            {label: owner},
            f"airlock set label {label}={owner}, inherited from namespace {ns}",
        )


def _pin(c: ContainerView, digests: Mapping[str, str], b: _Builder) -> None:
    image = c.container.get("image")
    if not isinstance(image, str) or image not in digests:
        return
    try:
        ref = parse_image(image)
    except InvalidImageReference:
        return
    if ref.pinned:
        return
    digest = digests[image]
    base = image.split("@", 1)[0]
    pinned = f"{base}@{digest}"
    pointer = (*c.pointer, "image")
    b.replace(pointer, pinned, f"airlock pinned {json_path(pointer)} to {ref.name}@{digest}")
