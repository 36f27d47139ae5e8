"""Builders for the objects unit tests evaluate: a clean, hardened pod and ways to spoil it."""

from __future__ import annotations

from typing import Any

DIGEST = "sha256:" + "a" * 64
CLEAN_IMAGE = f"registry.corp.example/prod/model-server:1.4.2@{DIGEST}"


def clean_container(name: str = "main", image: str = CLEAN_IMAGE) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def clean_pod(namespace: str = "team-a", name: str = "p") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"airlock.dev/owner": "ml"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [clean_container()],
        },
    }


def deployment(pod: dict[str, Any], name: str = "d") -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": meta.get("labels", {}),
        },
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod["spec"]},
        },
    }
