"""What is in force when the policy is missing or broken: one answer on every replica, every
restart (airlock.cluster, used by the webhook, the audit and the controller alike)."""

from __future__ import annotations

import copy
from typing import Any

from airlock.cluster import ClusterState, PolicyTracker
from airlock.engine import evaluate

POLICY: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "BaselinePolicy",
    "metadata": {"name": "default", "uid": "u1", "generation": 3},
    "spec": {
        "defaultEnvironment": "dev",
        "environments": [
            {"name": "dev", "mode": "warn"},
            {"name": "prod", "mode": "enforce"},
        ],
    },
}


def privileged_pod(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace, "labels": {"airlock.dev/owner": "t"}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "registry.corp.example/app:1.0",
                    "securityContext": {"privileged": True},
                }
            ]
        },
    }


def state(*policies: dict[str, Any]) -> ClusterState:
    s = ClusterState("default")
    s.set_namespace("ml-dev", {"airlock.dev/environment": "dev"})
    s.set_namespace("ml-prod", {"airlock.dev/environment": "prod"})
    for p in policies:
        s.set_policy(p)
    return s


def actions(s: ClusterState, namespace: str) -> set[str]:
    verdict = evaluate(privileged_pod(namespace), s.context)
    return {f.action.value for f in verdict.findings if f.rule == "privileged-container"}


def invalid(generation: int, *, in_force: dict[str, Any] | None = None) -> dict[str, Any]:
    bad = copy.deepcopy(POLICY)
    bad["metadata"]["generation"] = generation
    bad["spec"]["environments"][1]["mode"] = "strict"
    if in_force is not None:
        bad["status"] = {"inForce": in_force}
    return bad


def test_a_valid_policy_is_in_force() -> None:
    s = state(POLICY)
    assert s.in_force.source == "policy"
    assert s.in_force.generation == 3
    assert actions(s, "ml-dev") == {"warn"}
    assert actions(s, "ml-prod") == {"enforce"}


def test_deleting_the_policy_leaves_warn_namespaces_admitting_and_denies_nothing() -> None:
    s = state(POLICY)
    s.delete_policy("default")
    assert s.in_force.source == "absent"
    assert actions(s, "ml-dev") == {"audit"}
    assert actions(s, "ml-prod") == {"audit"}  # never enforce-everything
    assert evaluate(privileged_pod("ml-prod"), s.context).enforced == ()


def test_an_invalid_generation_keeps_the_last_valid_one() -> None:
    s = state(POLICY, invalid(4))
    assert s.in_force.source == "last-valid"
    assert s.in_force.generation == 3
    assert s.policy_error is not None
    assert s.policy_error.errors[0][0] == "spec.environments[1].mode"
    assert actions(s, "ml-prod") == {"enforce"}


def test_a_fresh_process_reads_the_recorded_generation_and_agrees_with_its_peer() -> None:
    recorded = {"generation": 3, "spec": copy.deepcopy(POLICY["spec"])}
    peer = state(POLICY, invalid(4, in_force=recorded))  # saw 3, then 4
    fresh = state(invalid(4, in_force=recorded))  # restarted after 4 landed
    assert fresh.in_force.source == "recorded"
    assert fresh.in_force.generation == peer.in_force.generation == 3
    assert fresh.spec == peer.spec
    for ns in ("ml-dev", "ml-prod"):
        assert actions(fresh, ns) == actions(peer, ns)


def test_a_policy_never_valid_means_audit_until_one_is() -> None:
    s = state(invalid(1))
    assert s.in_force.source == "absent"
    assert actions(s, "ml-prod") == {"audit"}
    good = copy.deepcopy(POLICY)
    good["metadata"]["generation"] = 2
    s.set_policy(good)
    assert s.in_force.source == "policy"
    assert actions(s, "ml-prod") == {"enforce"}


def test_an_unusable_record_is_ignored() -> None:
    for record in ({"generation": 3, "spec": {"environments": "nope"}}, {"spec": {}}, "x"):
        s = state(invalid(4, in_force=record))  # type: ignore[arg-type]
        assert s.in_force.source == "absent"


def test_the_record_is_read_again_when_the_controller_writes_it() -> None:
    tracker = PolicyTracker("default")
    assert not tracker.observe(invalid(4))
    assert tracker.in_force.source == "absent"
    # the same generation, now with the controller's status
    recorded = {"generation": 3, "spec": copy.deepcopy(POLICY["spec"])}
    assert tracker.observe(invalid(4, in_force=recorded))
    assert tracker.in_force.source == "recorded"


def test_an_empty_spec_is_an_explicit_choice_enforce_everything() -> None:
    s = state(
        {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "BaselinePolicy",
            "metadata": {"name": "default", "generation": 1},
            "spec": {},
        }
    )
    assert s.in_force.source == "policy"
    assert actions(s, "ml-dev") == {"enforce"}


def test_other_policies_are_ignored_and_the_version_tells_what_changed() -> None:
    s = state(POLICY)
    before = s.version
    other = copy.deepcopy(POLICY)
    other["metadata"]["name"] = "experimental"
    assert s.set_policy(other) is None
    s.delete_policy("experimental")
    s.set_namespace("ml-dev", {"airlock.dev/environment": "dev"})  # a resync
    assert s.version == before
    s.set_namespace("ml-dev", {"airlock.dev/environment": "prod"})
    assert s.version > before
