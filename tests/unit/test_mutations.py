"""Mutations fill only what is unset, report every change, and yield valid JSON patches."""

from __future__ import annotations

from typing import Any

from airlock.engine import evaluate, mutate, pin_images
from airlock.model import load_policy
from airlock.state import EvalContext

from tests.support.builders import DIGEST, apply_patch, clean_pod, deployment


def bare_pod(namespace: str = "team-a") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {
            "containers": [{"name": "a", "image": "x:1"}],
            "initContainers": [{"name": "i", "image": "x:1", "securityContext": {"runAsUser": 5}}],
        },
    }


def test_secure_defaults_fill_unset_fields_and_report_each() -> None:
    ctx = EvalContext.build()
    pod = bare_pod()
    patch = mutate(pod, ctx)
    out = apply_patch(pod, patch.ops, fill_only=True)
    spec = out["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert spec["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    # an existing securityContext keeps its fields and gains only the missing ones
    assert spec["initContainers"][0]["securityContext"] == {
        "runAsUser": 5,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert len(patch.changes) == len(patch.ops)
    assert any("spec.containers[0].securityContext" in c for c in patch.changes)
    # after mutation the mutable hardening rules are satisfied
    rules = {f.rule for f in evaluate(out, ctx).findings}
    assert not rules & {
        "privilege-escalation",
        "seccomp-unconfined",
        "service-account-token-automount",
    }


def test_explicit_values_are_never_overridden() -> None:
    pod = bare_pod()
    pod["spec"]["automountServiceAccountToken"] = True
    pod["spec"]["containers"][0]["securityContext"] = {
        "allowPrivilegeEscalation": True,
        "capabilities": {"add": ["NET_ADMIN"]},
        "seccompProfile": {"type": "Unconfined"},
    }
    patch = mutate(pod, EvalContext.build())
    paths = [op["path"] for op in patch.ops]
    assert "/spec/automountServiceAccountToken" not in paths
    assert "/spec/containers/0/securityContext/allowPrivilegeEscalation" not in paths
    # a container chose its seccomp profile: no pod-level default is added behind it
    assert "/spec/securityContext" not in paths
    assert "/spec/containers/0/securityContext/capabilities/drop" in paths


def test_privileged_and_sys_admin_containers_are_left_alone() -> None:
    pod = bare_pod()
    pod["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    pod["spec"]["initContainers"][0]["securityContext"] = {"capabilities": {"add": ["SYS_ADMIN"]}}
    paths = [op["path"] for op in mutate(pod, EvalContext.build()).ops]
    assert not any(p.startswith("/spec/containers/0/") for p in paths)
    assert "/spec/initContainers/0/securityContext/allowPrivilegeEscalation" not in paths


def test_deployment_template_is_patched_at_template_paths() -> None:
    d = deployment(bare_pod())
    paths = [op["path"] for op in mutate(d, EvalContext.build()).ops]
    assert "/spec/template/spec/automountServiceAccountToken" in paths
    assert "/spec/template/spec/containers/0/securityContext" in paths


def test_owner_label_inherited_from_namespace() -> None:
    ctx = EvalContext.build(namespace_labels={"team-a": {"airlock.dev/owner": "vision"}})
    pod = bare_pod()
    patch = mutate(pod, ctx)
    out = apply_patch(pod, patch.ops, fill_only=True)
    assert out["metadata"]["labels"] == {"airlock.dev/owner": "vision"}
    assert any("inherited from namespace team-a" in c for c in patch.changes)
    pod["metadata"]["labels"] = {"app": "x"}
    out = apply_patch(pod, mutate(pod, ctx).ops, fill_only=True)
    assert out["metadata"]["labels"] == {"app": "x", "airlock.dev/owner": "vision"}


def test_pin_digest_uses_resolved_digests_only_when_enabled() -> None:
    pod = clean_pod()
    pod["spec"]["containers"][0]["image"] = "registry.corp.example/prod/x:1.0"
    digests = {"registry.corp.example/prod/x:1.0": DIGEST}
    off = EvalContext.build(image_digests=digests)
    assert mutate(pod, off).ops == ()
    on = EvalContext.build(
        load_policy({"mutations": {"pinImageDigests": True}}), image_digests=digests
    )
    patch = mutate(pod, on)
    assert patch.ops == (
        {
            "op": "replace",
            "path": "/spec/containers/0/image",
            "value": f"registry.corp.example/prod/x:1.0@{DIGEST}",
        },
    )


def test_pin_images_pins_every_container_group_of_any_kind_and_nothing_else() -> None:
    tagged = "registry.corp.example/prod/x:1.0"
    pod = clean_pod()
    pod["spec"]["containers"][0]["image"] = tagged
    pod["spec"]["initContainers"] = [{"name": "i", "image": tagged}]
    pod["spec"]["ephemeralContainers"] = [{"name": "dbg", "image": tagged}]
    on = EvalContext.build(
        load_policy({"mutations": {"pinImageDigests": True}}), image_digests={tagged: DIGEST}
    )
    patch = pin_images(deployment(pod), on)
    base = "/spec/template/spec"
    assert [op["path"] for op in patch.ops] == [
        f"{base}/containers/0/image",
        f"{base}/initContainers/0/image",
        f"{base}/ephemeralContainers/0/image",
    ]
    assert {op["value"] for op in patch.ops} == {f"{tagged}@{DIGEST}"}
    assert patch.changes[1] == (
        f"airlock pinned spec.template.spec.initContainers[0].image to "
        f"registry.corp.example/prod/x@{DIGEST}"
    )
    off = EvalContext.build(image_digests={tagged: DIGEST})
    assert not pin_images(deployment(pod), off)


def test_switches_off_and_excluded_namespaces_mean_no_patch() -> None:
    off = EvalContext.build(
        load_policy({"mutations": {"secureDefaults": False, "inheritOwnerLabel": False}})
    )
    assert not mutate(bare_pod(), off)
    assert not mutate(bare_pod("kube-system"), EvalContext.build())
