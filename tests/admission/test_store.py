"""StateStore: last valid policy stays, exceptions stop waiving exactly at expiry, readiness."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from airlock import metrics
from airlock.admission import StateStore
from airlock.engine import evaluate

from tests.admission.conftest import POLICY, loaded_store
from tests.support.objects import clean_pod, policy_exception


def test_without_a_policy_object_nothing_is_denied_and_every_rule_audits() -> None:
    store = StateStore()
    ctx = store.context
    assert list(ctx.policy.environments) == ["default"]
    verdict = evaluate(clean_pod("anywhere", "x") | {"metadata": {"name": "x"}}, ctx)
    assert verdict.environment == "default"
    assert verdict.enforced == ()
    assert {f.rule for f in verdict.findings} == {"owner-label-missing"}
    assert {f.action.value for f in verdict.findings} == {"audit"}
    assert not ctx.policy.spec.mutations.secure_defaults  # nothing is patched either
    assert store.policy_generation is None
    store.set_policy(
        {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "BaselinePolicy",
            "metadata": {"name": "default", "generation": 1},
            "spec": {},
        }
    )
    assert store.policy_generation == "1"
    store.delete_policy("default")
    assert (
        metrics.REGISTRY.get_sample_value(
            "airlock_policy_info", {"policy": "default", "generation": "1"}
        )
        is None
    )


def test_invalid_policy_keeps_the_last_valid_one_and_records_the_error() -> None:
    store = loaded_store()
    errors_before = metrics.REGISTRY.get_sample_value("airlock_policy_load_errors_total") or 0.0
    ctx_before = store.context
    bad = copy.deepcopy(POLICY)
    bad["metadata"]["generation"] = 4
    bad["spec"]["environments"][1]["mode"] = "strict"
    error = store.set_policy(bad)
    assert error is not None
    assert error.errors[0][0] == "spec.environments[1].mode"
    assert store.policy_error is error
    assert store.context is ctx_before  # nothing changed, nothing rebuilt
    assert store.context.environment_of("ml-prod").mode.value == "enforce"
    assert (
        metrics.REGISTRY.get_sample_value("airlock_policy_load_errors_total") == errors_before + 1
    )
    assert (
        metrics.REGISTRY.get_sample_value(
            "airlock_policy_info", {"policy": "default", "generation": "3"}
        )
        == 1.0
    )


def test_only_the_followed_policy_is_adopted() -> None:
    store = loaded_store()
    other = copy.deepcopy(POLICY)
    other["metadata"] = {"name": "experimental", "generation": 1}
    other["spec"]["environments"] = [{"name": "everything", "mode": "off"}]
    assert store.set_policy(other) is None
    assert "prod" in store.context.policy.environments
    store.delete_policy("experimental")
    assert "prod" in store.context.policy.environments
    store.delete_policy("default")
    assert list(store.context.policy.environments) == ["default"]


def test_namespace_labels_drive_the_environment_and_changes_rebuild_the_context() -> None:
    store = loaded_store()
    first = store.context
    assert first.environment_of("ml-prod").name == "prod"
    assert store.context is first  # cached
    same = {
        "kubernetes.io/metadata.name": "ml-prod",
        "airlock.dev/environment": "prod",
        "airlock.dev/owner": "team-ml",
    }
    store.set_namespace("ml-prod", same)
    assert store.context is first  # same labels (a resync): no rebuild
    store.set_namespace("ml-prod", {"airlock.dev/environment": "dev"})
    assert store.context is not first
    assert store.context.environment_of("ml-prod").name == "dev"
    store.delete_namespace("ml-prod")
    assert store.context.environment_of("ml-prod").name == "dev"  # the policy's default


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_an_exception_stops_waiving_exactly_at_its_expiry() -> None:
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    clock = Clock(start)
    store = loaded_store(store=StateStore(clock=clock))
    exc = policy_exception(
        annotations={"airlock.dev/created-by": "alice", "airlock.dev/approved-by": "bob"},
        created=start - dt.timedelta(days=1),
    )
    expires = start + dt.timedelta(hours=2)
    exc["spec"]["expires"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert store.set_exception(exc) is None
    pod = clean_pod("ml-prod", "legacy-app")
    pod["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = False

    def run_as_root_exempted() -> bool:
        findings = [f for f in evaluate(pod, store.context).findings if f.rule == "run-as-root"]
        assert findings
        return all(f.exempted_by == "ml-prod/legacy-root" for f in findings)

    assert run_as_root_exempted()
    clock.now = expires - dt.timedelta(microseconds=1)
    assert run_as_root_exempted()
    clock.now = expires
    assert not run_as_root_exempted()


def test_unapproved_and_invalid_exceptions_waive_nothing() -> None:
    store = loaded_store()
    pending = policy_exception(annotations={"airlock.dev/created-by": "alice"})
    assert store.set_exception(pending) is None
    assert store.context.exceptions == {}
    state, why = store.exception_state("ml-prod", "legacy-root")
    assert state.value == "PendingApproval"
    assert "alice" in why
    broken = policy_exception(name="broken", rules=["no-such-rule"])
    error = store.set_exception(broken)
    assert error is not None
    assert ("ml-prod", "broken") in store.exception_errors
    assert store.exception_state("ml-prod", "broken")[0].value == "Invalid"
    store.delete_exception("ml-prod", "broken")
    assert ("ml-prod", "broken") not in store.exception_errors


def test_readiness_needs_every_required_listing() -> None:
    store = loaded_store(synced=False)
    assert not store.ready
    assert store.pending_sync == ["exceptions", "namespaces", "policy"]
    store.mark_synced("policy")
    store.mark_synced("namespaces")
    assert not store.ready
    store.mark_synced("exceptions")
    assert store.ready
    relaxed = StateStore(required=("policy",))
    relaxed.mark_synced("policy")
    assert relaxed.ready
    with pytest.raises(ValueError, match="unknown sync kind"):
        store.mark_synced("pods")  # type: ignore[arg-type]


def test_isolation_is_unknown_until_network_policies_are_synced() -> None:
    store = loaded_store()
    store.set_isolation("ml-prod", True)
    assert store.context.isolated_namespaces is None
    store.mark_synced("networkpolicies")
    assert store.context.isolated_namespaces == frozenset({"ml-prod"})
    store.set_isolation("ml-prod", False)
    assert store.context.isolated_namespaces == frozenset()
