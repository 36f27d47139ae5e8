"""Builders for the objects tests evaluate: a clean, hardened pod and ways to spoil it.

The one copy of the test builders; :mod:`tests.support.objects` builds the fuller objects the
admission tests send on top of these.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
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


def apply_patch(
    obj: dict[str, Any], ops: Sequence[dict[str, Any]], *, fill_only: bool = False
) -> dict[str, Any]:
    """A minimal RFC 6902 applier (add, replace, remove), strict about missing parents.

    ``fill_only`` also fails an ``add`` onto an existing key: Airlock's mutations promise to
    fill only what is unset."""
    doc = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                assert not (fill_only and last in parent), f"add over existing {op['path']}"
                parent[last] = op["value"]
        elif op["op"] == "replace":
            if isinstance(parent, list):
                parent[int(last)] = op["value"]
            else:
                assert last in parent, op
                parent[last] = op["value"]
        elif op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise AssertionError(f"unexpected op {op}")
    return doc
