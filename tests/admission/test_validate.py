"""POST /validate over TLS: denials, warnings, audit, kinds, dry runs, updates and deletes."""

from __future__ import annotations

import copy
import json

from airlock import metrics

from tests.admission.conftest import ServerFactory, ServerThread, admission_review
from tests.support.objects import (
    SECRET_FRAGMENTS,
    clean_pod,
    configmap,
    deployment,
    leaky_pod,
    pytorchjob,
)


def _lines(answer: dict) -> list[str]:
    return answer["response"]["status"]["message"].splitlines()


def _assert_no_secret(answer: dict) -> None:
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in answer["_raw"]


def test_enforced_findings_deny_with_every_violation_listed(webhook: ServerThread) -> None:
    answer = webhook.post_review("/validate", admission_review(leaky_pod("ml-prod")))
    resp = answer["response"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403
    assert resp["status"]["reason"] == "Forbidden"
    lines = _lines(answer)
    n = len(lines) - 1
    assert lines[0] == f"airlock denied Pod ml-prod/trainer (environment prod): {n} violations"
    env_secret = [ln for ln in lines if ln.startswith("[plaintext-secret-env]")]
    assert [ln.split(":")[0] for ln in env_secret] == [
        "[plaintext-secret-env] spec.containers[0].env[0].value",
        "[plaintext-secret-env] spec.containers[0].env[1].value",
        "[plaintext-secret-env] spec.containers[0].env[2].value",
    ]
    assert all(" — fix: " in ln for ln in lines[1:])
    assert "[REDACTED Hugging Face token" in env_secret[0]
    assert any(ln.startswith("[image-tag-latest] spec.containers[0].image: ") for ln in lines)
    assert any(
        ln.startswith("[image-registry-not-allowed] spec.containers[0].image") for ln in lines
    )
    _assert_no_secret(answer)


def test_deployment_and_pytorchjob_are_denied_at_their_template_paths(
    webhook: ServerThread,
) -> None:
    dep = webhook.post_review("/validate", admission_review(deployment(leaky_pod("ml-prod"))))
    lines = _lines(dep)
    assert lines[0].startswith("airlock denied Deployment ml-prod/trainer (environment prod): ")
    assert (
        "[plaintext-secret-env] spec.template.spec.containers[0].env[1].value: "
        "env AWS_ACCESS_KEY_ID holds a plaintext AWS access key id"
    ) in "\n".join(lines)
    job = webhook.post_review("/validate", admission_review(pytorchjob(leaky_pod("ml-prod"))))
    text = job["response"]["status"]["message"]
    assert text.startswith("airlock denied PyTorchJob ml-prod/finetune (environment prod)")
    for role in ("Master", "Worker"):
        assert (
            f"[plaintext-secret-env] spec.pytorchReplicaSpecs.{role}.template.spec."
            "containers[0].env[0].value"
        ) in text
    _assert_no_secret(dep)
    _assert_no_secret(job)


def test_warn_mode_admits_with_one_warning_per_finding(webhook: ServerThread) -> None:
    answer = webhook.post_review("/validate", admission_review(leaky_pod("ml-dev")))
    resp = answer["response"]
    assert resp["allowed"] is True
    assert "status" not in resp
    warnings = resp["warnings"]
    assert all(len(w) <= 256 for w in warnings)
    assert all(w.startswith("airlock [") for w in warnings)
    assert any(
        w.startswith("airlock [plaintext-secret-env] spec.containers[0].env[2].value: env TLS_KEY")
        for w in warnings
    )
    assert any(
        w.startswith("airlock [image-tag-latest] spec.containers[0].image") for w in warnings
    )
    _assert_no_secret(answer)


def test_audit_mode_admits_silently_and_counts_rule_results(webhook: ServerThread) -> None:
    def sample(rule: str, result: str) -> float:
        labels = {"rule": rule, "environment": "staging", "result": result, "source": "admission"}
        return metrics.REGISTRY.get_sample_value("airlock_rule_results_total", labels) or 0.0

    before = sample("plaintext-secret-env", "fail")
    answer = webhook.post_review("/validate", admission_review(leaky_pod("ml-staging")))
    assert answer["response"] == {"uid": answer["response"]["uid"], "allowed": True}
    # three leaking variables, one rule result per request
    assert sample("plaintext-secret-env", "fail") == before + 1


def test_clean_pod_is_allowed_without_warnings(webhook: ServerThread) -> None:
    answer = webhook.post_review("/validate", admission_review(clean_pod("ml-prod")))
    assert answer["response"] == {"uid": answer["response"]["uid"], "allowed": True}


def test_namespace_comes_from_the_request_when_the_manifest_has_none(
    webhook: ServerThread,
) -> None:
    pod = leaky_pod("ml-prod")
    review = admission_review(pod)
    del review["request"]["object"]["metadata"]["namespace"]
    answer = webhook.post_review("/validate", review)
    assert _lines(answer)[0].startswith("airlock denied Pod ml-prod/trainer (environment prod)")


def test_configmap_with_a_credential_is_denied_in_prod(webhook: ServerThread) -> None:
    from tests.support.objects import FAKE_HF_TOKEN

    cm = configmap("ml-prod", {"HF_TOKEN": FAKE_HF_TOKEN, "epochs": "3"})
    answer = webhook.post_review("/validate", admission_review(cm))
    lines = _lines(answer)
    assert lines[0] == (
        "airlock denied ConfigMap ml-prod/trainer-config (environment prod): 1 violation"
    )
    assert lines[1].startswith("[plaintext-secret-configmap] data.HF_TOKEN: ")
    _assert_no_secret(answer)


def test_excluded_namespace_is_allowed(webhook: ServerThread) -> None:
    answer = webhook.post_review("/validate", admission_review(leaky_pod("kube-system")))
    assert answer["response"]["allowed"] is True
    assert "warnings" not in answer["response"]


def test_delete_is_allowed_without_evaluation(webhook: ServerThread) -> None:
    review = admission_review(None, operation="DELETE", old=leaky_pod("ml-prod"))
    answer = webhook.post_review("/validate", review)
    assert answer["response"] == {"uid": review["request"]["uid"], "allowed": True}


def test_dry_run_gets_the_same_verdict_but_no_rule_results(webhook: ServerThread) -> None:
    labels = {
        "rule": "plaintext-secret-env",
        "environment": "prod",
        "result": "fail",
        "source": "admission",
    }
    req_labels = {"kind": "Pod", "operation": "CREATE", "decision": "denied", "environment": "prod"}
    before = metrics.REGISTRY.get_sample_value("airlock_rule_results_total", labels) or 0.0
    req_before = (
        metrics.REGISTRY.get_sample_value("airlock_admission_requests_total", req_labels) or 0.0
    )
    real = webhook.post_review("/validate", admission_review(leaky_pod("ml-prod")))
    dry = webhook.post_review("/validate", admission_review(leaky_pod("ml-prod"), dry_run=True))
    assert dry["response"]["status"] == real["response"]["status"]
    after = metrics.REGISTRY.get_sample_value("airlock_rule_results_total", labels)
    assert after == before + 1  # the real request only
    assert (
        metrics.REGISTRY.get_sample_value("airlock_admission_requests_total", req_labels)
        == req_before + 2
    )


def test_denial_message_is_capped_with_a_pointer_to_the_scan(webhook: ServerThread) -> None:
    pod = leaky_pod("ml-prod")
    base = pod["spec"]["containers"][0]
    pod["spec"]["containers"] = []
    for i in range(20):
        c = copy.deepcopy(base)
        c["name"] = f"c{i}"
        pod["spec"]["containers"].append(c)
    answer = webhook.post_review("/validate", admission_review(pod))
    message = answer["response"]["status"]["message"]
    lines = message.splitlines()
    total = int(lines[0].rsplit(": ", 1)[1].split()[0])
    assert total > 100
    assert len(lines) <= 32
    assert len(message.encode()) <= 4096 + 200
    shown = len(lines) - 2
    assert lines[-1] == (f"… and {total - shown} more (run `airlock scan` for the full list)")
    _assert_no_secret(answer)


def test_warnings_are_capped(webhook: ServerThread) -> None:
    pod = leaky_pod("ml-dev")
    base = pod["spec"]["containers"][0]
    pod["spec"]["containers"] = [dict(copy.deepcopy(base), name=f"c{i}") for i in range(20)]
    answer = webhook.post_review("/validate", admission_review(pod))
    warnings = answer["response"]["warnings"]
    assert len(warnings) <= 50
    assert sum(len(w) for w in warnings) <= 4096
    assert warnings[-1].startswith("airlock: and ")
    assert warnings[-1].endswith("more (run `airlock scan` for the full list)")


def test_metadata_only_update_is_warned_not_denied(webhook: ServerThread) -> None:
    old = leaky_pod("ml-prod")
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["release"] = "canary"
    answer = webhook.post_review("/validate", admission_review(new, operation="UPDATE", old=old))
    resp = answer["response"]
    assert resp["allowed"] is True
    assert resp["warnings"][0].startswith("airlock: this update changes only metadata")
    assert any(w.startswith("airlock [plaintext-secret-env]") for w in resp["warnings"])
    changed = copy.deepcopy(old)
    changed["spec"]["containers"][0]["image"] = "pytorch/pytorch:2.5.0"
    answer = webhook.post_review(
        "/validate", admission_review(changed, operation="UPDATE", old=old)
    )
    assert answer["response"]["allowed"] is False


def test_metadata_only_update_can_be_enforced(make_server: ServerFactory) -> None:
    srv = make_server(enforce_on_metadata_update=True)
    old = leaky_pod("ml-prod")
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["release"] = "canary"
    answer = srv.post_review("/validate", admission_review(new, operation="UPDATE", old=old))
    assert answer["response"]["allowed"] is False


def test_exempted_findings_do_not_deny(make_server: ServerFactory) -> None:
    from tests.admission.conftest import loaded_store
    from tests.support.objects import policy_exception

    store = loaded_store()
    exc = policy_exception(
        "ml-prod",
        "legacy-root",
        rules=["run-as-root"],
        annotations={
            "airlock.dev/created-by": "alice@corp.example",
            "airlock.dev/approved-by": "bob@corp.example",
        },
    )
    assert store.set_exception(exc) is None
    srv = make_server(store=store)
    pod = clean_pod("ml-prod", "legacy-app")
    pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0
    answer = srv.post_review("/validate", admission_review(pod))
    assert answer["response"]["allowed"] is True
    other = copy.deepcopy(pod)
    other["metadata"]["name"] = "new-app"  # not matched by the exception's names
    answer = srv.post_review("/validate", admission_review(other))
    assert answer["response"]["allowed"] is False
    assert "[run-as-root]" in answer["response"]["status"]["message"]
    labels = {"rule": "run-as-root", "environment": "prod", "result": "exempted"}
    assert (
        metrics.REGISTRY.get_sample_value(
            "airlock_rule_results_total", {**labels, "source": "admission"}
        )
        or 0
    ) >= 1


def test_every_answer_echoes_the_uid(webhook: ServerThread) -> None:
    for obj in (leaky_pod("ml-prod"), leaky_pod("ml-dev"), clean_pod("ml-prod")):
        review = admission_review(obj, uid="e5b8c1d2-7777-4000-8000-000000000042")
        answer = webhook.post_review("/validate", review)
        assert answer["response"]["uid"] == "e5b8c1d2-7777-4000-8000-000000000042"
        json.dumps(answer)  # plain JSON all the way down
