"""POST /mutate over TLS: secure defaults on Pod CREATE, nothing else patched."""

from __future__ import annotations

import base64
import json

from airlock.engine import evaluate

from tests.admission.conftest import ServerThread, admission_review, loaded_store
from tests.support.builders import apply_patch
from tests.support.objects import (
    SECRET_FRAGMENTS,
    deployment,
    leaky_pod,
    unhardened_pod,
)


def _ops(answer: dict) -> list[dict]:
    resp = answer["response"]
    assert resp["patchType"] == "JSONPatch"
    return json.loads(base64.b64decode(resp["patch"]))


def test_pod_create_gets_secure_defaults_that_apply_and_fix_the_findings(
    webhook: ServerThread,
) -> None:
    pod = unhardened_pod("ml-prod")
    ctx = loaded_store().context
    before = {f.rule for f in evaluate(pod, ctx).enforced}
    assert {"privilege-escalation", "seccomp-unconfined", "dangerous-capabilities"} <= before
    answer = webhook.post_review("/mutate", admission_review(pod))
    resp = answer["response"]
    assert resp["allowed"] is True
    ops = _ops(answer)
    assert {"op": "add", "path": "/spec/automountServiceAccountToken", "value": False} in ops
    patched = apply_patch(pod, ops)
    after = evaluate(patched, ctx)
    assert after.enforced == ()
    # one warning per change, each saying what was set
    assert len(resp["warnings"]) == len(ops)
    assert (
        "airlock set spec.automountServiceAccountToken = false (unset before)" in resp["warnings"]
    )


def test_mutation_inherits_the_owner_label_from_the_namespace(webhook: ServerThread) -> None:
    pod = unhardened_pod("ml-prod")
    del pod["metadata"]["labels"]["airlock.dev/owner"]
    ops = _ops(webhook.post_review("/mutate", admission_review(pod)))
    patched = apply_patch(pod, ops)
    assert patched["metadata"]["labels"]["airlock.dev/owner"] == "team-ml"


def test_mutation_never_echoes_secrets(webhook: ServerThread) -> None:
    answer = webhook.post_review("/mutate", admission_review(leaky_pod("ml-prod")))
    raw = answer["_raw"] + base64.b64decode(answer["response"]["patch"]).decode()
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in raw


def test_only_pod_create_is_patched(webhook: ServerThread) -> None:
    pod = unhardened_pod("ml-prod")
    update = webhook.post_review("/mutate", admission_review(pod, operation="UPDATE", old=pod))
    assert update["response"] == {"uid": update["response"]["uid"], "allowed": True}
    dep = webhook.post_review("/mutate", admission_review(deployment(pod)))
    assert dep["response"] == {"uid": dep["response"]["uid"], "allowed": True}


def test_mutation_skips_excluded_namespaces(webhook: ServerThread) -> None:
    answer = webhook.post_review("/mutate", admission_review(unhardened_pod("kube-system")))
    assert "patch" not in answer["response"]


def test_dry_run_mutation_returns_the_same_patch(webhook: ServerThread) -> None:
    pod = unhardened_pod("ml-prod")
    real = webhook.post_review("/mutate", admission_review(pod))
    dry = webhook.post_review("/mutate", admission_review(pod, dry_run=True))
    assert _ops(real) == _ops(dry)
