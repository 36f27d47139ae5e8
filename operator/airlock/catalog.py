"""The names every part of Airlock shares, without pydantic: API group, rule ids, policy defaults.

:mod:`airlock.model` validates policies with pydantic, which costs tens of milliseconds to import
and build; ``airlock scan`` without ``--policy`` and the engine's default policy need only these
constants, so they live here and the model takes its defaults from them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_ENVIRONMENT_LABEL",
    "DEFAULT_EXCLUDED_NAMESPACES",
    "DEFAULT_OWNER_LABEL",
    "OWN_KINDS",
    "RULE_IDS",
]

API_GROUP: Final = "airlock.dev"
API_VERSION: Final = "airlock.dev/v1alpha1"
OWN_KINDS: Final = frozenset({"PolicyException", "BaselinePolicy"})  # Airlock's objects

DEFAULT_ENVIRONMENT: Final = "default"
DEFAULT_ENVIRONMENT_LABEL: Final = "airlock.dev/environment"
DEFAULT_OWNER_LABEL: Final = "airlock.dev/owner"
DEFAULT_EXCLUDED_NAMESPACES: Final = (
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "airlock-system",
)

RULE_IDS: Final[tuple[str, ...]] = (
    "plaintext-secret-env",
    "plaintext-secret-args",
    "plaintext-secret-configmap",
    "image-tag-latest",
    "image-digest-missing",
    "image-registry-not-allowed",
    "image-signature-unverified",
    "cross-env-service-reference",
    "cross-env-node-pool",
    "cross-env-model-source",
    "namespace-environment-missing",
    "network-isolation-missing",
    "cross-env-rbac-binding",
    "privileged-container",
    "host-namespaces",
    "host-path-volume",
    "privilege-escalation",
    "run-as-root",
    "dangerous-capabilities",
    "seccomp-unconfined",
    "service-account-token-automount",
    "writable-root-filesystem",
    "host-ports",
    "apparmor-profile",
    "selinux-options",
    "proc-mount",
    "unsafe-sysctls",
    "restricted-volume-types",
    "windows-host-process",
    "host-probes",
    "owner-label-missing",
    "workload-cluster-admin",
)
