"""Plaintext credentials in env values, command lines, ConfigMaps, annotations and free text.

Messages carry only the detector's redacted form (credential kind + fingerprint), never the value.

``plaintext-secret-configmap`` covers configuration that is not a container's: ConfigMap
``data`` and ``binaryData`` (decoded when it is text), the annotations of every object (except
``kubectl.kubernetes.io/last-applied-configuration``, a copy of the object whose fields the
other rules already read), and the free text of Airlock's own objects (a PolicyException's
``reason`` and ``owner``, a BaselinePolicy's strings).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Any

from airlock.catalog import API_VERSION, OWN_KINDS
from airlock.detectors import Detection
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
from airlock.rules.podsec import pod_annotations
from airlock.workloads import Workload, json_path

_REFS = ("CIS 5.4.1", "NIST SP 800-190 4.1.4", "NSA/CISA Kubernetes Hardening: secrets")

PLAINTEXT_SECRET_ENV = RuleInfo(
    id="plaintext-secret-env",
    family="secrets",
    severity=Severity.CRITICAL,
    title="Plaintext credential in an environment variable",
    reason=(
        "an environment variable holds a literal credential: a provider's token format (over "
        "300 formats, checksums verified where they have one), a private key or a URL with a "
        "password under any name; or, under a credential-like name (DB_PASSWORD, HF_TOKEN, "
        "OPENAI_API_KEY), a value that could be one. Not reported there: references ($(VAR), "
        "${VAR}, {{ .Values.x }}, vault:, arn:...:secretsmanager:), paths, URLs without a "
        "password, code, placeholders (changeme, <token>) and the name of the Secret that "
        "holds it"
    ),
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
    reason=(
        "a command or argument holds a literal credential: a provider's token format anywhere "
        "in it, the value of a credential-named flag (--password=..., --token ...) or variable "
        "(DB_PASSWORD=...), a client's password flag (mysql -p..., sshpass -p, redis-cli -a, "
        "smbclient -U user%...), or a random-looking argument that no flag "
        "names as an identifier or digest"
    ),
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
    title="Plaintext credential in a ConfigMap, an annotation or free text",
    reason="a ConfigMap value, an annotation or a free-text field holds a credential",
    fix="move the value into a Secret and mount or reference the Secret instead",
    rationale=(
        "ConfigMaps are meant for non-confidential configuration: RBAC commonly grants wide read "
        "access to them, they are not encrypted at rest and tools print them freely. "
        "Annotations and the text of policy objects are read by even more people and tools."
    ),
    references=_REFS,
)


def check_env(wl: Workload, scope: Scope) -> Iterator[Hit]:
    detectors = scope.ctx.policy.detectors
    for _pod, c in containers(wl):
        entries = scope.literal_env(c)
        found = detectors.check_envs(entries) if entries else None
        if not found:
            scope.clean_env.add(id(c.container))
        else:
            names = {i: name for i, name, _value in entries}
            for i, det in found:
                yield Hit(
                    f"{c.path}.env[{i}].value",
                    f"env {names[i]} holds a plaintext {det.kind} {det.redacted()}",
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


CONFIGMAP_RULE_ID = PLAINTEXT_SECRET_CONFIGMAP.id

# A copy of the whole object: its env values and args are already read where they live.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Free text of a BaselinePolicy: every string of its spec except these (regexes and names that
# describe credentials, not credentials).
_POLICY_SKIP = frozenset({"allowValues", "extraCredentialNames"})
_MAX_TEXT_DEPTH = 12


def _describe(found: list[Detection]) -> str:
    kinds = ", ".join(f"{d.kind} {d.redacted()}" for d in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return f"{kinds}{more}"


def _binary_text(value: str) -> str | None:
    """A binaryData value decoded, when it is UTF-8 text (binary files hold no text to read)."""
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _configmap_texts(obj: Mapping[str, object]) -> Iterator[tuple[str, str, str]]:
    for key, value in mapping(obj.get("data")).items():
        if isinstance(key, str) and isinstance(value, str) and value:
            yield key, "data", value
    for key, value in mapping(obj.get("binaryData")).items():
        if isinstance(key, str) and isinstance(value, str) and value:
            text = _binary_text(value)
            if text:
                yield key, "binaryData", text


# Annotations read by a secrets integration: their values are where the secret is kept (a Vault
# path, a role, a template) or which Secrets to watch, and their names are the integration's
# ("agent-inject-secret-<file name>"): the value is still searched for credential formats, the
# name is not taken as evidence.
_INTEGRATION_PREFIXES = (
    "vault.hashicorp.com/",  # Vault Agent Injector
    "vault.security.banzaicloud.io/",  # Bank-Vaults
    "secret.reloader.stakater.com/",  # Reloader
    "reloader.stakater.com/",
)


_OWN_METADATA = ("metadata",)  # a Pod's own: read as the object's annotations


def _annotation_hits(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """The object's own annotations, and those of the pods it templates (a Deployment's
    ``spec.template.metadata``: every Pod it creates carries them)."""
    yield from _annotations_at(wl.annotations, "metadata", "annotation", scope)
    if wl.kind == "CronJob":  # the Jobs it creates carry its job template's annotations
        job = mapping(mapping(mapping(wl.obj.get("spec")).get("jobTemplate")).get("metadata"))
        annotations = mapping(job.get("annotations"))
        if annotations:
            where = "spec.jobTemplate.metadata"
            yield from _annotations_at(annotations, where, "job template annotation", scope)
    for pod in wl.pod_specs:
        ptr = pod.metadata_pointer
        if ptr is not None and ptr != _OWN_METADATA:
            annotations = pod_annotations(wl, pod)
            if annotations:
                where = json_path(ptr)
                yield from _annotations_at(annotations, where, "pod template annotation", scope)


def _annotations_at(
    annotations: Mapping[str, Any], where: str, what: str, scope: Scope
) -> Iterator[Hit]:
    detectors = scope.ctx.policy.detectors
    for key, value in annotations.items():
        if key == LAST_APPLIED or not value or not isinstance(value, str):
            continue
        name = "" if key.startswith(_INTEGRATION_PREFIXES) else key
        found = detectors.check_text(name, value)
        if found:
            yield Hit(
                f'{where}.annotations["{key}"]',
                f"{what} {key!r} holds a plaintext {_describe(found)}",
            )


def _strings(node: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > _MAX_TEXT_DEPTH:
        return
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, Mapping):
        for k, v in node.items():
            if isinstance(k, str) and k not in _POLICY_SKIP:
                yield from _strings(v, f"{path}.{k}", depth + 1)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]", depth + 1)


def _free_text_hits(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """A PolicyException's ``reason`` and ``owner``; every string of a BaselinePolicy spec."""
    spec = mapping(wl.obj.get("spec"))
    if wl.kind == "PolicyException":
        texts: Iterator[tuple[str, str]] = (
            (f"spec.{k}", v) for k in ("reason", "owner") if isinstance(v := spec.get(k), str)
        )
    else:
        texts = _strings(spec, "spec")
    detectors = scope.ctx.policy.detectors
    for path, text in texts:
        found = detectors.check_text(path.rpartition(".")[2], text) if text else []
        if found:
            yield Hit(path, f"{path} holds a plaintext {_describe(found)}")


def check_configmap(wl: Workload, scope: Scope) -> Iterator[Hit]:
    yield from _annotation_hits(wl, scope)
    if wl.kind in OWN_KINDS and wl.api_version == API_VERSION:
        yield from _free_text_hits(wl, scope)
        return
    if wl.kind == "ConfigMap" and wl.api_version == "v1":
        detectors = scope.ctx.policy.detectors
        for key, field, text in _configmap_texts(wl.obj):
            found = detectors.check_text(key, text)
            if found:
                scope.credential_keys.add(key)
                path = data_path(key, field)
                yield Hit(path, f"ConfigMap key {key!r} holds a plaintext {_describe(found)}")
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
