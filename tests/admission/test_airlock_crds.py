"""Airlock's own resources at admission: BaselinePolicy validation, PolicyException four-eyes."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from typing import Any

from airlock.admission import FOUR_EYES_MESSAGE

from tests.admission.conftest import POLICY, ServerThread, admission_review
from tests.support.builders import apply_patch
from tests.support.objects import policy_exception

ALICE = "alice@corp.example"
BOB = "bob@corp.example"
CREATED_BY = "airlock.dev/created-by"
APPROVED_BY = "airlock.dev/approved-by"
APPROVE = "airlock.dev/approve"


def _policy(spec_changes: dict[str, Any] | None = None, name: str = "default") -> dict[str, Any]:
    obj = copy.deepcopy(POLICY)
    obj["metadata"] = {"name": name, "generation": 4}
    obj["spec"].update(spec_changes or {})
    return obj


def test_invalid_baseline_policy_is_denied_with_every_field_path(webhook: ServerThread) -> None:
    bad = _policy(
        {
            "environments": [
                {"name": "dev", "mode": "warn"},
                {"name": "prod", "mode": "enforced"},
            ],
            "rules": {"image-tag-lastest": "audit"},
        }
    )
    answer = webhook.post_review("/validate", admission_review(bad))
    resp = answer["response"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 422
    assert resp["status"]["reason"] == "Invalid"
    lines = resp["status"]["message"].splitlines()
    assert lines[0] == "airlock denied BaselinePolicy default: invalid policy, 2 errors"
    assert lines[1].startswith("spec.environments[1].mode: ")
    assert lines[2].startswith("spec.rules.image-tag-lastest: unknown rule id 'image-tag-lastest'")
    assert "did you mean 'image-tag-latest'" in lines[2]


def test_valid_baseline_policy_is_allowed_and_others_are_flagged(webhook: ServerThread) -> None:
    ok = webhook.post_review("/validate", admission_review(_policy()))
    assert ok["response"] == {"uid": ok["response"]["uid"], "allowed": True}
    other = webhook.post_review("/validate", admission_review(_policy(name="experimental")))
    assert other["response"]["allowed"] is True
    assert other["response"]["warnings"] == [
        "airlock follows only the BaselinePolicy named 'default'; 'experimental' has no effect"
    ]


def _mutate_then_validate(
    srv: ServerThread,
    obj: dict[str, Any],
    *,
    user: str,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Run the request through /mutate, apply the patch, then /validate, as the API server does."""
    mutated = srv.post_review(
        "/mutate", admission_review(obj, operation=operation, old=old, user=user)
    )["response"]
    assert mutated["allowed"] is True
    patched = obj
    if "patch" in mutated:
        patched = apply_patch(obj, json.loads(base64.b64decode(mutated["patch"])))
    validated = srv.post_review(
        "/validate", admission_review(patched, operation=operation, old=old, user=user)
    )["response"]
    return patched, validated, mutated.get("warnings", [])


def _stored(obj: dict[str, Any]) -> dict[str, Any]:
    """The object as the API server stores it after admission."""
    stored = copy.deepcopy(obj)
    created = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    stored["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    stored["metadata"]["resourceVersion"] = "100"
    return stored


def test_creator_is_recorded_and_user_written_annotations_are_replaced(
    webhook: ServerThread,
) -> None:
    forged = policy_exception(annotations={CREATED_BY: "mallory", APPROVED_BY: "mallory"})
    patched, validated, warnings = _mutate_then_validate(webhook, forged, user=ALICE)
    assert validated["allowed"] is True
    assert patched["metadata"]["annotations"] == {CREATED_BY: ALICE}
    assert f"airlock set annotation {CREATED_BY}={ALICE}" in warnings
    assert f"airlock removed annotation {APPROVED_BY}" in warnings
    # without any annotations the map is created
    patched, validated, _ = _mutate_then_validate(webhook, policy_exception(), user=BOB)
    assert patched["metadata"]["annotations"] == {CREATED_BY: BOB}
    assert validated["allowed"] is True


def test_self_approval_is_denied(webhook: ServerThread) -> None:
    created, _, _ = _mutate_then_validate(webhook, policy_exception(), user=ALICE)
    old = _stored(created)
    update = copy.deepcopy(old)
    update["metadata"]["annotations"][APPROVE] = "true"
    _, validated, _ = _mutate_then_validate(
        webhook, update, user=ALICE, operation="UPDATE", old=old
    )
    assert validated["allowed"] is False
    assert validated["status"]["code"] == 403
    message = validated["status"]["message"]
    assert (
        message.splitlines()[0] == "airlock denied PolicyException ml-prod/legacy-root: 1 problem"
    )
    assert f'metadata.annotations["{APPROVE}"]: {FOUR_EYES_MESSAGE}' in message


def test_approval_by_someone_else_is_recorded(webhook: ServerThread) -> None:
    created, _, _ = _mutate_then_validate(webhook, policy_exception(), user=ALICE)
    old = _stored(created)
    update = copy.deepcopy(old)
    update["metadata"]["annotations"][APPROVE] = "true"
    patched, validated, warnings = _mutate_then_validate(
        webhook, update, user=BOB, operation="UPDATE", old=old
    )
    assert validated["allowed"] is True
    assert patched["metadata"]["annotations"] == {CREATED_BY: ALICE, APPROVED_BY: BOB}
    assert f"airlock set annotation {APPROVED_BY}={BOB}" in warnings
    # a later edit by anyone keeps both names unless the spec changes
    approved = _stored(patched)
    relabel = copy.deepcopy(approved)
    relabel["metadata"]["labels"] = {"team": "ml"}
    patched, validated, _ = _mutate_then_validate(
        webhook, relabel, user=ALICE, operation="UPDATE", old=approved
    )
    assert validated["allowed"] is True
    assert patched["metadata"]["annotations"] == {CREATED_BY: ALICE, APPROVED_BY: BOB}


def test_editing_the_spec_withdraws_the_approval(webhook: ServerThread) -> None:
    approved = _stored(policy_exception(annotations={CREATED_BY: ALICE, APPROVED_BY: BOB}))
    widened = copy.deepcopy(approved)
    widened["spec"]["rules"] = ["run-as-root", "privileged-container"]
    patched, validated, warnings = _mutate_then_validate(
        webhook, widened, user=ALICE, operation="UPDATE", old=approved
    )
    assert validated["allowed"] is True
    assert patched["metadata"]["annotations"] == {CREATED_BY: ALICE}
    assert f"airlock removed annotation {APPROVED_BY}" in warnings


def test_hand_written_managed_annotations_are_denied_when_mutation_was_skipped(
    webhook: ServerThread,
) -> None:
    old = _stored(policy_exception(annotations={CREATED_BY: ALICE}))
    forged = copy.deepcopy(old)
    forged["metadata"]["annotations"][APPROVED_BY] = "carol@corp.example"
    # straight to /validate, as if the mutating webhook had been skipped
    answer = webhook.post_review(
        "/validate", admission_review(forged, operation="UPDATE", old=old, user=ALICE)
    )["response"]
    assert answer["allowed"] is False
    assert (
        f'metadata.annotations["{APPROVED_BY}"]: is managed by Airlock'
        in answer["status"]["message"]
    )


def test_exception_window_is_checked_against_the_policy(webhook: ServerThread) -> None:
    too_long = policy_exception(days=45)  # the test policy allows 30
    _, answer, _ = _mutate_then_validate(webhook, too_long, user=ALICE)
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 422
    assert answer["status"]["message"].splitlines()[0].endswith(": 1 problem")
    line = answer["status"]["message"].splitlines()[1]
    assert line.startswith("spec.expires: must be at most 30 days after the exception's creation (")
    assert line.endswith("it is 45.0 days (the policy's exceptions.maxDays)")
    expired = policy_exception(days=-1)
    _, answer, _ = _mutate_then_validate(webhook, expired, user=ALICE)
    assert answer["allowed"] is False
    assert "spec.expires: " in answer["status"]["message"]
    assert "is in the past" in answer["status"]["message"]


def test_invalid_exception_spec_is_denied_with_field_paths(webhook: ServerThread) -> None:
    bad = policy_exception(rules=["run-as-rot"])
    bad["spec"]["reason"] = "short"
    _, answer, _ = _mutate_then_validate(webhook, bad, user=ALICE)
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 422
    message = answer["status"]["message"]
    assert "spec.rules[0]: unknown rule id 'run-as-rot'" in message
    assert "spec.reason: " in message
