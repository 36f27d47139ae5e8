"""Objects the admission tests send as the API server would: full workloads (uid, defaults filled
in), ConfigMaps, Airlock's CRDs, and fake credentials. Built on :mod:`tests.support.builders`.

The credentials are fakes in the providers' formats, assembled at import so that no
credential-shaped literal sits in the repository; the PEM key is generated fresh.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import builders

DIGEST = "sha256:" + "4e" * 32
CLEAN_IMAGE = f"registry.corp.example/prod/model-server:1.4.2@{DIGEST}"

FAKE_HF_TOKEN = "hf_" + "kQ7vT2xLm9RbN4" + "pZc8WdYs3HfJ1gAe6U"
FAKE_AWS_KEY_ID = "AKIA" + "Q4TZ7XW2" + "LM5RB6NP"
FAKE_PEM_KEY = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    .decode()
)
# The distinctive middle of each secret: none of these may appear in any response.
SECRET_FRAGMENTS = (
    FAKE_HF_TOKEN,
    FAKE_HF_TOKEN[3:20],
    FAKE_AWS_KEY_ID,
    FAKE_AWS_KEY_ID[4:],
    FAKE_PEM_KEY.splitlines()[1][:40],
)


def clean_container(name: str = "main", image: str = CLEAN_IMAGE) -> dict[str, Any]:
    """The hardened container of :mod:`tests.support.builders`, with this module's image."""
    return builders.clean_container(name, image)


def clean_pod(namespace: str = "ml-prod", name: str = "server") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "9d6a3c1e-1111-4000-8000-00000000abcd",
            "creationTimestamp": None,
            "labels": {"airlock.dev/owner": "team-ml", "app": name},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [clean_container()],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
        },
    }


def leaky_pod(namespace: str = "ml-prod", name: str = "trainer") -> dict[str, Any]:
    """A pod with three plaintext credentials, an unpinned image and no hardening."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": "trainer",
                    "image": "pytorch/pytorch:latest",
                    "args": ["--epochs=3"],
                    "env": [
                        {"name": "HF_TOKEN", "value": FAKE_HF_TOKEN},
                        {"name": "AWS_ACCESS_KEY_ID", "value": FAKE_AWS_KEY_ID},
                        {"name": "TLS_KEY", "value": FAKE_PEM_KEY},
                        {"name": "EPOCHS", "value": "3"},
                    ],
                }
            ]
        },
    }


def unhardened_pod(namespace: str = "ml-prod", name: str = "notebook") -> dict[str, Any]:
    """A pod whose only problems are ones the secure-defaults mutation fixes."""
    pod = clean_pod(namespace, name)
    del pod["spec"]["automountServiceAccountToken"]
    del pod["spec"]["securityContext"]
    sc = pod["spec"]["containers"][0]["securityContext"]
    del sc["allowPrivilegeEscalation"]
    del sc["capabilities"]
    return pod


def deployment(pod: dict[str, Any], name: str = "trainer") -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": meta["labels"]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": copy.deepcopy(pod["spec"]),
            },
        },
    }


def pytorchjob(pod: dict[str, Any], name: str = "finetune") -> dict[str, Any]:
    meta = pod["metadata"]
    template = {"metadata": {"labels": {"app": name}}, "spec": copy.deepcopy(pod["spec"])}
    for c in template["spec"]["containers"]:
        c["name"] = "pytorch"
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": meta["labels"]},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template},
                "Worker": {
                    "replicas": 4,
                    "restartPolicy": "OnFailure",
                    "template": copy.deepcopy(template),
                },
            }
        },
    }


def configmap(namespace: str, data: dict[str, str], name: str = "trainer-config") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"airlock.dev/owner": "team-ml"},
        },
        "data": data,
    }


def policy_exception(
    namespace: str = "ml-prod",
    name: str = "legacy-root",
    *,
    days: float = 10,
    rules: list[str] | None = None,
    annotations: dict[str, str] | None = None,
    created: dt.datetime | None = None,
) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations is not None:
        meta["annotations"] = dict(annotations)
    if created is not None:
        meta["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
        meta["uid"] = "5b0c2f7a-2222-4000-8000-00000000beef"
        meta["resourceVersion"] = "4711"
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": meta,
        "spec": {
            "rules": rules or ["run-as-root"],
            "match": {"kinds": ["Pod"], "names": ["legacy-*"]},
            "expires": (now + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "owner": "team-ml",
            "reason": "vendor image runs as root until the 2.0 release",
        },
    }
