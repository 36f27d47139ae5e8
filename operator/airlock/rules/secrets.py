"""Plaintext credentials in env values, command lines and ConfigMaps.

Messages carry only the detector's redacted form (credential kind + fingerprint), never the value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from airlock.findings import RuleInfo, Severity
from airlock.rules.base import (
    Hit,
    Rule,
    Scope,
    containers,
    data_path,
    mapping,
    sequence,
)
from airlock.workloads import Workload

_REFS = ("CIS 5.4.1", "NIST SP 800-190 4.1.4", "NSA/CISA Kubernetes Hardening: secrets")

PLAINTEXT_SECRET_ENV = RuleInfo(
    id="plaintext-secret-env",
    family="secrets",
    severity=Severity.CRITICAL,
    title="Plaintext credential in an environment variable",
    reason="an environment variable holds a literal credential",
    fix="store it in a Secret and reference it with env[].valueFrom.secretKeyRef",
    rationale=(
        "Literal env values are stored unencrypted in the object, shown by kubectl describe, "
        "copied into every ReplicaSet and Pod, and readable by anyone who can read the workload. "
        "A leaked model-hub or cloud token gives access to models, data and billing."
    ),
    references=_REFS,
)

PLAINTEXT_SECRET_ARGS = RuleInfo(
    id="plaintext-secret-args",
    family="secrets",
    severity=Severity.CRITICAL,
    title="Plaintext credential on the command line",
    reason="a command or argument holds a literal credential",
    fix="mount a Secret as a file (or env from secretKeyRef) and have the program read it there",
    rationale=(
        "Command lines are visible in the object, in `ps` on the node, in process listings of "
        "monitoring agents and in crash reports; they are never treated as secret."
    ),
    references=_REFS,
)

PLAINTEXT_SECRET_CONFIGMAP = RuleInfo(
    id="plaintext-secret-configmap",
    family="secrets",
    severity=Severity.HIGH,
    title="Plaintext credential in a ConfigMap",
    reason="a ConfigMap value holds a credential",
    fix="move the value into a Secret and mount or reference the Secret instead",
    rationale=(
        "ConfigMaps are meant for non-confidential configuration: RBAC commonly grants wide read "
        "access to them, they are not encrypted at rest and tools print them freely."
    ),
    references=_REFS,
)


def check_env(wl: Workload, scope: Scope) -> Iterator[Hit]:
    detectors = scope.ctx.policy.detectors
    for _pod, c in containers(wl):
        for i, name, value in scope.literal_env(c):
            det = detectors.check_env(name, value)
            if det is not None:
                yield Hit(
                    f"{c.path}.env[{i}].value",
                    f"env {name} holds a plaintext {det.kind} {det.redacted()}",
                )


def check_args(wl: Workload, scope: Scope) -> Iterator[Hit]:
    detectors = scope.ctx.policy.detectors
    for _pod, c in containers(wl):
        # one command line: `command: [mysql]` + `args: [-p…]` must be read together
        parts: list[tuple[str, int]] = []
        strings: list[str] = []
        for field in ("command", "args"):
            for i, a in enumerate(sequence(c.container.get(field))):
                parts.append((field, i))
                strings.append(a if isinstance(a, str) else "")
        if strings:
            for k, det in detectors.check_args(strings):
                field, i = parts[k]
                yield Hit(
                    f"{c.path}.{field}[{i}]",
                    f"{field}[{i}] holds a plaintext {det.kind} {det.redacted()}",
                )
        # Argo script templates carry a shell script in `source`
        source = c.container.get("source")
        if isinstance(source, str) and source:
            for _i, det in detectors.check_args([source]):
                yield Hit(
                    f"{c.path}.source", f"script holds a plaintext {det.kind} {det.redacted()}"
                )


def configmap_credentials(obj: Mapping[str, object], scope: Scope) -> Iterator[tuple[str, str]]:
    """``(key, redacted description)`` for each ConfigMap data entry holding a credential."""
    detectors = scope.ctx.policy.detectors
    for key, value in mapping(obj.get("data")).items():
        if isinstance(key, str) and isinstance(value, str) and value:
            found = detectors.check_text(key, value)
            if found:
                kinds = ", ".join(f"{d.kind} {d.redacted()}" for d in found[:3])
                more = f" and {len(found) - 3} more" if len(found) > 3 else ""
                yield key, f"{kinds}{more}"


def check_configmap(wl: Workload, scope: Scope) -> Iterator[Hit]:
    if wl.kind == "ConfigMap" and wl.api_version == "v1":
        for key, what in configmap_credentials(wl.obj, scope):
            yield Hit(data_path(key), f"ConfigMap key {key!r} holds a plaintext {what}")
        return
    flagged = scope.ctx.credential_configmaps
    if not flagged or scope.namespace is None:
        return
    ns = scope.namespace
    for _pod, c in containers(wl):
        for i, entry in enumerate(sequence(c.container.get("envFrom"))):
            ref = mapping(mapping(entry).get("configMapRef"))
            keys = flagged.get((ns, str(ref.get("name", ""))))
            if keys:
                yield Hit(
                    f"{c.path}.envFrom[{i}].configMapRef",
                    f"consumes ConfigMap {ref.get('name')} whose keys {sorted(keys)} hold "
                    "plaintext credentials",
                )
        for i, entry in enumerate(sequence(c.container.get("env"))):
            ref = mapping(mapping(mapping(entry).get("valueFrom")).get("configMapKeyRef"))
            keys = flagged.get((ns, str(ref.get("name", ""))))
            if keys and ref.get("key") in keys:
                yield Hit(
                    f"{c.path}.env[{i}].valueFrom.configMapKeyRef",
                    f"reads key {ref.get('key')!r} of ConfigMap {ref.get('name')}, which holds "
                    "a plaintext credential",
                )
    for pod in wl.pod_specs:
        for i, vol in enumerate(sequence(pod.spec.get("volumes"))):
            ref = mapping(mapping(vol).get("configMap"))
            keys = flagged.get((ns, str(ref.get("name", ""))))
            if keys:
                yield Hit(
                    f"{pod.path}.volumes[{i}].configMap",
                    f"mounts ConfigMap {ref.get('name')} whose keys {sorted(keys)} hold "
                    "plaintext credentials",
                )


RULES = (
    Rule(PLAINTEXT_SECRET_ENV, check_env),
    Rule(PLAINTEXT_SECRET_ARGS, check_args),
    Rule(PLAINTEXT_SECRET_CONFIGMAP, check_configmap),
)
