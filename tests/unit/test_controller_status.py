"""The controller's pure status computations: BaselinePolicy and PolicyException status."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from airlock.cluster import ClusterState
from airlock.controller import exception_status, policy_status, time_left
from airlock.controller._status import status_patch
from airlock.errors import PolicyError
from airlock.model import APPROVED_BY_ANNOTATION, CREATED_BY_ANNOTATION, load_policy

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def policy(spec: dict[str, Any], *, name: str = "default", generation: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "BaselinePolicy",
        "metadata": {"name": name, "generation": generation, "uid": "u-1"},
        "spec": spec,
    }


def exception(
    *,
    expires: datetime,
    created: datetime = NOW - timedelta(days=1),
    created_by: str | None = "alice",
    approved_by: str | None = None,
    generation: int = 2,
    rules: list[str] | None = None,
) -> dict[str, Any]:
    annotations: dict[str, str] = {}
    if created_by:
        annotations[CREATED_BY_ANNOTATION] = created_by
    if approved_by:
        annotations[APPROVED_BY_ANNOTATION] = approved_by
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {
            "name": "legacy-root",
            "namespace": "ml-prod",
            "generation": generation,
            "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "annotations": annotations,
        },
        "spec": {
            "rules": rules or ["run-as-root"],
            "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "owner": "vision-team",
            "reason": "base image writes to /root until the January rebuild",
        },
    }


def cond(status: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [c for c in status["conditions"] if c["type"] == kind]
    return found


# --- BaselinePolicy ------------------------------------------------------------------------------


def test_valid_policy_is_ready_and_active_with_observed_generation() -> None:
    spec = {"environments": [{"name": "dev", "mode": "warn"}, {"name": "prod"}]}
    status = policy_status(policy(spec, generation=7), NOW)

    assert status["observedGeneration"] == 7
    assert status["activeGeneration"] == 7
    assert status["environments"] == 2
    ready = cond(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Valid")
    assert ready["message"] == "valid: 2 environment(s): dev, prod"
    assert ready["observedGeneration"] == 7
    assert ready["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert (cond(status, "Active")["status"], cond(status, "Active")["reason"]) == (
        "True",
        "InForce",
    )


def test_invalid_policy_names_every_failing_field_path() -> None:
    spec = {
        "environments": [{"name": "Dev_1"}],
        "detectors": {"allowValues": ["(unclosed", ".*"]},
    }
    status = policy_status(policy(spec, generation=4), NOW)

    ready = cond(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "Invalid")
    message = ready["message"]
    # Exactly what load_policy says, so the CLI, the webhook and status agree word for word.
    with pytest.raises(PolicyError) as raised:
        load_policy(policy(spec))
    assert message == str(raised.value)
    for path in (
        "spec.detectors.allowValues[0]",
        "spec.detectors.allowValues[1]",
        "spec.environments[0].name",
    ):
        assert path in message
    assert status["observedGeneration"] == 4
    assert status["activeGeneration"] is None  # nothing valid was ever seen
    assert cond(status, "Active")["reason"] == "NoValidGeneration"


def test_invalid_generation_keeps_the_previous_one_in_force() -> None:
    good = policy({}, generation=5)
    good["status"] = policy_status(good, NOW)
    bad = copy.deepcopy(good)
    bad["metadata"]["generation"] = 6
    bad["spec"] = {"rules": {"run-as-rot": "audit"}}

    status = policy_status(bad, LATER)

    assert status["observedGeneration"] == 6
    assert status["activeGeneration"] == 5
    assert status["environments"] == 1
    assert "spec.rules" in cond(status, "Ready")["message"]
    assert "did you mean 'run-as-root'" in cond(status, "Ready")["message"]
    active = cond(status, "Active")
    assert (active["status"], active["reason"]) == ("True", "PreviousGenerationInForce")
    assert "generation 5" in active["message"]
    # Ready flipped True -> False: a new transition time; Active stayed True: the old one.
    assert cond(status, "Ready")["lastTransitionTime"] == "2026-03-01T12:05:00Z"
    assert active["lastTransitionTime"] == "2026-03-01T12:00:00Z"


def test_the_generation_in_force_is_recorded_for_replicas_that_start_later() -> None:
    spec = {"environments": [{"name": "dev", "mode": "warn"}, {"name": "prod"}]}
    good = policy(spec, generation=5)
    good["status"] = policy_status(good, NOW)
    assert good["status"]["inForce"] == {"generation": 5, "spec": spec}
    bad = copy.deepcopy(good)
    bad["metadata"]["generation"] = 6
    bad["spec"] = {"environments": [{"name": "dev", "mode": "strict"}]}
    kept = policy_status(bad, LATER)
    assert kept["inForce"] == {"generation": 5, "spec": spec}  # not the invalid one
    # a process that starts now (airlock.cluster) applies exactly that generation
    fresh = ClusterState("default")
    bad["status"] = kept
    fresh.set_policy(bad)
    assert (fresh.in_force.source, fresh.in_force.generation) == ("recorded", 5)
    assert fresh.spec == load_policy(policy(spec))
    other = policy(spec, name="staging-draft")
    assert policy_status(other, NOW, active=False)["inForce"] is None


def test_policy_with_another_name_is_never_active() -> None:
    status = policy_status(policy({}, name="staging-draft"), NOW, active=False)
    assert cond(status, "Ready")["status"] == "True"
    assert (cond(status, "Active")["status"], cond(status, "Active")["reason"]) == (
        "False",
        "NotSelected",
    )
    assert status["activeGeneration"] is None


def test_policy_status_is_a_fixed_point() -> None:
    # Writing the status and recomputing it later gives no patch: no write loop, no event loop.
    obj = policy({"detectors": {"allowValues": [".*"]}})
    obj["status"] = policy_status(obj, NOW)
    assert status_patch(obj["status"], policy_status(obj, LATER)) == {}


def test_status_patch_touches_only_differing_owned_keys() -> None:
    current = {"state": "Active", "approvedBy": "bob", "lastAudit": {"x": 1}}
    desired = {"state": "Expired", "approvedBy": None, "message": "m"}
    assert status_patch(current, desired) == {
        "state": "Expired",
        "approvedBy": None,  # merge-patch null: removed
        "message": "m",
    }


# --- PolicyException -----------------------------------------------------------------------------


def test_exception_without_approval_is_pending() -> None:
    obj = exception(expires=NOW + timedelta(days=12, hours=3, minutes=20))
    status = exception_status(obj, None, NOW)

    assert status["state"] == "PendingApproval"
    assert "someone other than alice" in status["message"]
    assert status["createdBy"] == "alice"
    assert status["approvedBy"] is None
    assert status["expires"] == "2026-03-13T15:20:00Z"
    assert status["timeLeft"] == "12d 3h"
    assert status["observedGeneration"] == 2
    active = cond(status, "Active")
    assert (active["status"], active["reason"]) == ("False", "PendingApproval")


def test_exception_approved_by_another_user_is_active() -> None:
    obj = exception(expires=NOW + timedelta(hours=5, minutes=7), approved_by="bob")
    status = exception_status(obj, None, NOW)

    assert status["state"] == "Active"
    assert status["approvedBy"] == "bob"
    assert status["timeLeft"] == "5h 7m"
    assert status["message"] == "active until 2026-03-01T17:07:00+00:00"
    assert (cond(status, "Active")["status"], cond(status, "Active")["reason"]) == (
        "True",
        "Active",
    )


def test_exception_approved_by_its_creator_stays_pending() -> None:
    obj = exception(expires=NOW + timedelta(days=1), approved_by="alice")
    status = exception_status(obj, None, NOW)
    assert status["state"] == "PendingApproval"
    assert "needs a second person" in status["message"]


def test_exception_past_its_expiry_is_expired() -> None:
    obj = exception(expires=NOW - timedelta(seconds=1), approved_by="bob")
    status = exception_status(obj, None, NOW)
    assert status["state"] == "Expired"
    assert status["timeLeft"] == "expired"
    assert cond(status, "Active")["status"] == "False"


def test_exception_window_beyond_policy_maximum_is_invalid() -> None:
    spec = load_policy(policy({"exceptions": {"maxDays": 7}}))
    obj = exception(expires=NOW + timedelta(days=10), created=NOW, approved_by="bob")

    status = exception_status(obj, spec, NOW)
    assert status["state"] == "Invalid"
    assert "more than 7 days" in status["message"]
    # The same object under the default policy (90 days) is fine.
    assert exception_status(obj, None, NOW)["state"] == "Active"


def test_exception_without_approval_requirement_is_active_without_approver() -> None:
    spec = load_policy(policy({"exceptions": {"requireApproval": False}}))
    obj = exception(expires=NOW + timedelta(days=2), created_by=None)
    assert exception_status(obj, spec, NOW)["state"] == "Active"
    assert exception_status(obj, None, NOW)["state"] == "PendingApproval"


def test_exception_with_invalid_spec_is_invalid_with_field_path() -> None:
    obj = exception(expires=NOW + timedelta(days=2), approved_by="bob", rules=["run-as-rot"])
    obj["spec"]["reason"] = "short"
    status = exception_status(obj, None, NOW)

    assert status["state"] == "Invalid"
    assert "spec.rules[0]" in status["message"]
    assert "spec.reason" in status["message"]
    assert status["expires"] is None
    assert status["timeLeft"] is None
    assert status["createdBy"] == "alice"
    assert status["approvedBy"] == "bob"


def test_exception_message_fits_the_crd_limit() -> None:
    obj = exception(expires=NOW + timedelta(days=2), rules=[f"not-a-rule-{i}" for i in range(21)])
    status = exception_status(obj, None, NOW)
    assert status["state"] == "Invalid"
    assert len(status["message"]) == 1024
    assert status["message"].endswith("…")


def test_exception_status_changes_only_when_time_left_ticks() -> None:
    obj = exception(expires=NOW + timedelta(days=3, minutes=30), approved_by="bob")
    obj["status"] = exception_status(obj, None, NOW)
    assert obj["status"]["timeLeft"] == "3d 0h"
    # Recomputing from what was written gives nothing to write: no write/watch-event loop.
    assert (
        status_patch(obj["status"], exception_status(obj, None, NOW + timedelta(minutes=29))) == {}
    )
    # Once the coarse countdown ticks, timeLeft is the only change.
    later = exception_status(obj, None, NOW + timedelta(minutes=31))
    assert status_patch(obj["status"], later) == {"timeLeft": "2d 23h"}


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(days=12, hours=3, minutes=59), "12d 3h"),
        (timedelta(days=1), "1d 0h"),
        (timedelta(hours=3, minutes=20, seconds=59), "3h 20m"),
        (timedelta(minutes=20, seconds=1), "20m"),
        (timedelta(seconds=59), "<1m"),
        (timedelta(0), "expired"),
        (timedelta(seconds=-5), "expired"),
    ],
)
def test_time_left(delta: timedelta, text: str) -> None:
    assert time_left(delta) == text
