"""Environment isolation: the desired NetworkPolicy, the plan, and the reconciler's writes."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from airlock.controller.isolation import (
    IsolationReconciler,
    ObservedNetworkPolicy,
    desired_network_policy,
    plan_isolation,
)
from airlock.controller.kube import Kube
from airlock.model import PolicySpec, load_policy

from tests.support.kube import FakeApi

LABEL = "airlock.dev/environment"
NPS = "networkpolicies"


def policy(isolation: str, **extra: Any) -> PolicySpec:
    return load_policy(
        {
            "environments": [
                {"name": "dev", "mode": "warn"},
                {"name": "staging", "mode": "enforce", "reachableEnvironments": ["prod"]},
                {"name": "prod", "mode": "enforce"},
            ],
            "isolation": isolation,
            "isolationAllowedNamespaces": ["monitoring", "ingress-nginx"],
            **extra,
        }
    )


NAMESPACES = {
    "ml-prod": {LABEL: "prod"},
    "ml-dev": {LABEL: "dev"},
    "ml-staging": {LABEL: "staging"},
    "scratch": {},  # unlabelled: nothing to isolate from
    "odd": {LABEL: "qa"},  # names no declared environment
    "kube-system": {LABEL: "prod"},  # excluded by the policy
}


def test_desired_policy_admits_its_environment_and_the_allowed_namespaces() -> None:
    np = desired_network_policy("ml-dev", "dev", LABEL, ["monitoring", "ingress-nginx"])
    assert np == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": "airlock-environment-isolation",
            "namespace": "ml-dev",
            "labels": {"app.kubernetes.io/managed-by": "airlock"},
        },
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {LABEL: "dev"}}},
                        {
                            "namespaceSelector": {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.io/metadata.name",
                                        "operator": "In",
                                        "values": ["ingress-nginx", "monitoring"],
                                    }
                                ]
                            }
                        },
                    ]
                }
            ],
        },
    }


def test_desired_policy_without_allowed_namespaces_and_with_reachers() -> None:
    alone = desired_network_policy("a", "dev", LABEL, [])
    assert alone["spec"]["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {LABEL: "dev"}}}]}
    ]
    reached = desired_network_policy("p", "prod", LABEL, [], reachable_from=["staging"])
    assert reached["spec"]["ingress"][0]["from"] == [
        {
            "namespaceSelector": {
                "matchExpressions": [
                    {"key": LABEL, "operator": "In", "values": ["prod", "staging"]}
                ]
            }
        }
    ]


def test_enforce_plans_one_policy_per_labelled_namespace() -> None:
    plan = plan_isolation(policy("enforce"), NAMESPACES, {}, terminating=frozenset({"ml-dev"}))
    made = {np["metadata"]["namespace"]: np for np in plan.create}
    assert set(made) == {"ml-prod", "ml-staging"}
    # staging declares it may reach prod, so prod admits staging's namespaces
    prod_from = made["ml-prod"]["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
    assert prod_from == {
        "matchExpressions": [{"key": LABEL, "operator": "In", "values": ["prod", "staging"]}]
    }
    assert made["ml-staging"]["spec"]["ingress"][0]["from"][0]["namespaceSelector"] == {
        "matchLabels": {LABEL: "staging"}
    }
    assert plan.repair == ()
    assert plan.delete == ()


def observed(
    ns: str, env: str, *, managed: bool = True, edit: bool = False
) -> ObservedNetworkPolicy:
    body = desired_network_policy(ns, env, LABEL, ["ingress-nginx", "monitoring"])
    spec = copy.deepcopy(body["spec"])
    if edit:
        spec["podSelector"] = {"matchLabels": {"app": "only-this"}}
    return ObservedNetworkPolicy(ns, managed, spec)


def test_hand_edits_of_ours_are_repaired_and_foreign_ones_left_alone() -> None:
    seen = {
        "ml-prod": observed("ml-prod", "prod", edit=True),
        "ml-dev": observed("ml-dev", "dev", managed=False, edit=True),
        "ml-staging": observed("ml-staging", "staging"),
    }
    spec = policy("enforce")
    plan = plan_isolation(spec, {"ml-dev": NAMESPACES["ml-dev"], **NAMESPACES}, seen)
    assert [np["metadata"]["namespace"] for np in plan.repair] == ["ml-prod"]
    assert plan.repair[0]["spec"]["podSelector"] == {}
    assert plan.create == ()
    assert plan.delete == ()


def test_audit_and_off_remove_only_ours() -> None:
    seen = {
        "ml-prod": observed("ml-prod", "prod"),
        "ml-dev": observed("ml-dev", "dev", managed=False),
    }
    for mode in ("audit", "off"):
        plan = plan_isolation(policy(mode), NAMESPACES, seen)
        assert plan.delete == ("ml-prod",)
        assert plan.create == ()
    # a namespace that lost its label loses our policy too, even under enforce
    plan = plan_isolation(policy("enforce"), {"ml-prod": {}}, seen)
    assert plan.delete == ("ml-prod",)


def test_reconciler_creates_repairs_and_deletes_through_the_api() -> None:
    api = FakeApi()
    rec = IsolationReconciler(Kube(custom=api))
    spec = policy("enforce")
    namespaces = {"ml-prod": {LABEL: "prod"}, "ml-dev": {LABEL: "dev"}}
    plan = asyncio.run(rec.reconcile(spec, namespaces))
    assert len(plan.create) == 2
    assert set(rec.observed) == {"ml-prod", "ml-dev"}
    assert {k[1] for k in api.objects if k[0] == NPS} == {"ml-prod", "ml-dev"}
    # nothing changed: nothing to do
    assert not asyncio.run(rec.reconcile(spec, namespaces))

    # a hand edit arrives through the watch, and is put back
    key = (NPS, "ml-prod", "airlock-environment-isolation")
    edited = copy.deepcopy(api.objects[key])
    edited["spec"]["ingress"] = []
    api.objects[key] = edited
    assert rec.observe(edited)
    plan = asyncio.run(rec.reconcile(spec, namespaces))
    assert [np["metadata"]["namespace"] for np in plan.repair] == ["ml-prod"]
    assert api.objects[key]["spec"] == plan.repair[0]["spec"]

    # a foreign policy of the same name elsewhere is never touched
    foreign = desired_network_policy("team-x", "dev", LABEL, [])
    foreign["metadata"]["labels"] = {"owner": "admin"}
    api.objects[(NPS, "team-x", "airlock-environment-isolation")] = foreign
    assert rec.observe(foreign)

    # isolation turned off: ours go, the foreign one stays
    plan = asyncio.run(rec.reconcile(policy("off"), {**namespaces, "team-x": {LABEL: "dev"}}))
    assert plan.delete == ("ml-dev", "ml-prod")
    assert [k[1] for k in api.objects if k[0] == NPS] == ["team-x"]
    assert [v for v, ns, _ in api.calls if ns == "team-x"] == []
