"""RBAC as environment segregation: ``cross-env-rbac-binding`` and ``workload-cluster-admin``.

Each rule on the binding itself (positive, negative, reachable environments, the ServiceAccount
groups, ClusterRoleBindings), on ClusterRoles by who holds them, on workloads through the
cluster's facts, and the same answers through the cluster state, the audit and ``airlock scan``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock.cli import main
from airlock.cluster import ClusterState
from airlock.controller.audit import Auditor
from airlock.engine import evaluate
from airlock.findings import Action
from airlock.model import ExceptionRecord, load_policy
from airlock.rbac import EMPTY_FACTS, RolePowers, is_rbac, read_binding, role_powers
from airlock.rules import RULE_INFO
from airlock.state import EvalContext

from tests.support.builders import clean_pod, deployment

CROSS = "cross-env-rbac-binding"
ADMIN = "workload-cluster-admin"
RBAC_V1 = "rbac.authorization.k8s.io/v1"
ENV_LABEL = "airlock.dev/environment"

POLICY_SPEC: dict[str, Any] = {
    "defaultEnvironment": "dev",
    "environments": [
        {"name": "dev", "mode": "warn"},
        # staging and prod reach each other; sandbox may reach dev, not the other way round
        {"name": "staging", "mode": "enforce", "reachableEnvironments": ["prod"]},
        {"name": "prod", "mode": "enforce", "reachableEnvironments": ["staging"]},
        {"name": "sandbox", "mode": "audit", "reachableEnvironments": ["dev"]},
    ],
}
POLICY = load_policy(POLICY_SPEC)
POLICY_OBJECT: dict[str, Any] = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "BaselinePolicy",
    "metadata": {"name": "default", "generation": 1},
    "spec": POLICY_SPEC,
}
NS_ENV = {
    "ml-dev": "dev",
    "ml-staging": "staging",
    "ml-prod": "prod",
    "ml-sandbox": "sandbox",
}


# --- builders ------------------------------------------------------------------------------------


def sa(namespace: str | None, name: str = "trainer") -> dict[str, Any]:
    s = {"kind": "ServiceAccount", "name": name}
    if namespace is not None:
        s["namespace"] = namespace
    return s


def group(name: str) -> dict[str, Any]:
    return {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def user(name: str) -> dict[str, Any]:
    return {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}


def rolebinding(
    ns: str, subjects: list[dict[str, Any]], role: str = "view", name: str = "rb", **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_V1,
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": ns, **meta},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


def crb(
    subjects: list[dict[str, Any]], role: str = "view", name: str = "crb", **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_V1,
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, **meta},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    }


def cluster_role(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": RBAC_V1,
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": list(rules),
    }


def rule(
    verbs: list[str], resources: list[str], groups: list[str] | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "apiGroups": groups if groups is not None else [""],
        "resources": resources,
        "verbs": verbs,
        **kw,
    }


VIEW = cluster_role("view", rule(["get", "list", "watch"], ["pods", "services"]))


def ctx(*objs: dict[str, Any], **kw: Any) -> EvalContext:
    """A context knowing ``objs`` (bindings and ClusterRoles), as the cluster state builds it."""
    bindings = [b for o in objs if (b := read_binding(o)) is not None]
    roles = {
        o["metadata"]["name"]: p
        for o in objs
        if o["kind"] == "ClusterRole" and (p := role_powers(o))
    }
    return EvalContext.build(
        POLICY, namespace_env=NS_ENV, bindings=bindings, cluster_roles=roles, **kw
    )


def found(obj: dict[str, Any], context: EvalContext | None = None) -> set[tuple[str, str]]:
    """(rule, path) of the RBAC rules' findings on ``obj``."""
    verdict = evaluate(obj, context or ctx())
    return {(f.rule, f.path) for f in verdict.findings if f.rule in (CROSS, ADMIN)}


def messages(obj: dict[str, Any], context: EvalContext | None = None) -> list[str]:
    verdict = evaluate(obj, context or ctx())
    return [f.message for f in verdict.findings if f.rule in (CROSS, ADMIN)]


# --- the catalog ---------------------------------------------------------------------------------


def test_catalog_entries() -> None:
    cross, admin = RULE_INFO[CROSS], RULE_INFO[ADMIN]
    assert cross.family == "segregation"
    assert admin.family == "governance"
    for info in (cross, admin):
        assert all((info.reason, info.fix, info.rationale, info.references))


# --- cross-env-rbac-binding on RoleBindings ------------------------------------------------------


def test_rolebinding_granting_another_environments_account_fires_at_the_subject() -> None:
    rb = rolebinding("ml-prod", [sa("ml-prod", "server"), sa("ml-dev")])
    verdict = evaluate(rb, ctx())
    (f,) = [f for f in verdict.findings if f.rule == CROSS]
    assert (f.path, f.action, f.kind, f.namespace) == (
        "subjects[1]",
        Action.ENFORCE,
        "RoleBinding",
        "ml-prod",
    )
    assert f.message == (
        "ServiceAccount ml-dev/trainer of environment dev gets access in namespace ml-prod "
        "of environment prod"
    )
    assert f.fix == RULE_INFO[CROSS].fix
    # judged in the binding's environment: dev only warns
    assert evaluate(rolebinding("ml-dev", [sa("ml-prod")]), ctx()).findings[0].action is Action.WARN


@pytest.mark.parametrize(
    "subjects",
    [
        [sa("ml-prod")],  # the own environment
        [sa(None)],  # no namespace: an account of the binding's own namespace
        [sa("unknown-ns")],  # an environment nobody knows is not guessed
        [sa("kube-system", "metrics-server")],  # excluded namespaces are no environment
        [user("alice@example.com"), group("ml-engineers")],  # people, not workloads
        [group("system:authenticated")],
        [user("system:serviceaccount:ml-prod:server")],
        [sa("ml-staging")],  # staging may reach prod
    ],
)
def test_rolebinding_negative(subjects: list[dict[str, Any]]) -> None:
    assert found(rolebinding("ml-prod", subjects)) == set()


def test_reachable_environments_are_directional() -> None:
    # sandbox declares dev reachable: a sandbox account may act in dev ...
    assert found(rolebinding("ml-dev", [sa("ml-sandbox")])) == set()
    # ... but dev does not reach sandbox
    assert found(rolebinding("ml-sandbox", [sa("ml-dev")])) == {(CROSS, "subjects[0]")}


def test_namespace_rules_leave_rbac_objects_alone() -> None:
    # network isolation and the environment label are about a namespace's workloads
    context = EvalContext.build(
        POLICY,
        namespace_labels={"unlabelled": {}},
        isolated_namespaces=frozenset(),
    )
    for obj in (rolebinding("unlabelled", [sa(None)]), _pod("unlabelled")):
        rules = {f.rule for f in evaluate(obj, context).findings}
        expected = {"namespace-environment-missing"} if obj["kind"] == "Pod" else set()
        assert rules & {"namespace-environment-missing", "network-isolation-missing"} == expected


def test_rolebinding_in_an_excluded_namespace_is_not_judged() -> None:
    verdict = evaluate(rolebinding("kube-system", [sa("ml-dev")]), ctx())
    assert verdict.excluded
    assert verdict.findings == ()


def test_serviceaccount_groups_and_user_form_are_subjects() -> None:
    rb = rolebinding(
        "ml-prod",
        [
            group("system:serviceaccounts:ml-dev"),
            user("system:serviceaccount:ml-dev:trainer"),
            group("system:serviceaccounts"),
            group("system:serviceaccounts:ml-staging"),
        ],
    )
    assert found(rb) == {(CROSS, "subjects[0]"), (CROSS, "subjects[1]"), (CROSS, "subjects[2]")}
    text = messages(rb)
    assert "group system:serviceaccounts:ml-dev of environment dev gets access" in text[0]
    assert "ServiceAccount ml-dev/trainer of environment dev" in text[1]
    # every account of the cluster: the environments that may not reach prod are named
    assert "(every ServiceAccount, also of environment dev, sandbox)" in text[2]


def test_kubernetes_own_bindings_are_left_alone() -> None:
    bootstrap = {"labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}}
    everyone = [group("system:serviceaccounts")]
    assert found(crb(everyone, name="system:service-account-issuer-discovery")) == set()
    assert found(crb([*everyone, sa("ml-dev")], name="discovery", **bootstrap)) == set()
    # a binding that only borrows the prefix is judged like any other
    assert found(crb([sa("ml-dev")], role="cluster-admin", name="system:x", **bootstrap)) == set()
    assert found(crb([sa("ml-dev")], role="cluster-admin", name="system:x")) == {
        (ADMIN, "subjects[0]")
    }


# --- cross-env-rbac-binding on ClusterRoleBindings -----------------------------------------------


def test_cluster_binding_spanning_environments_fires_at_the_later_subject() -> None:
    binding = crb([sa("ml-dev"), sa("ml-dev", "other"), sa("ml-prod", "server")])
    assert found(binding) == {(CROSS, "subjects[2]")}
    assert messages(binding) == [
        "ServiceAccount ml-prod/server of environment prod shares this binding with "
        "ServiceAccount ml-dev/trainer of environment dev"
    ]
    # cluster-scoped: judged in the default environment (dev warns)
    assert evaluate(binding, ctx()).findings[0].action is Action.WARN


@pytest.mark.parametrize(
    ("subjects", "expected"),
    [
        ([sa("ml-dev"), sa("ml-dev", "b")], set()),  # one environment
        ([sa("ml-staging"), sa("ml-prod")], set()),  # reach each other both ways
        ([sa("ml-sandbox"), sa("ml-dev")], {(CROSS, "subjects[1]")}),  # one way only
        ([sa("ml-dev"), sa("unknown-ns"), sa("kube-system")], set()),
        ([sa("ml-dev"), group("system:serviceaccounts:ml-prod")], {(CROSS, "subjects[1]")}),
        ([sa("ml-prod"), group("system:serviceaccounts")], {(CROSS, "subjects[1]")}),
        ([user("bob"), sa("ml-prod")], set()),
    ],
)
def test_cluster_binding_spans(
    subjects: list[dict[str, Any]], expected: set[tuple[str, str]]
) -> None:
    assert found(crb(subjects)) == expected


# --- workload-cluster-admin on bindings ----------------------------------------------------------

ESCALATE = cluster_role(
    "escalator", rule(["escalate"], ["clusterroles"], ["rbac.authorization.k8s.io"])
)
RBAC_ADMIN = cluster_role(
    "rbac-admin", rule(["*"], ["roles", "rolebindings"], ["rbac.authorization.k8s.io"])
)
IMPERSONATE = cluster_role("impersonator", rule(["impersonate"], ["serviceaccounts"]))
SECRET_READER = cluster_role(
    "secret-reader", rule(["get"], ["pods"]), rule(["list", "watch"], ["secrets"])
)
ONE_SECRET = cluster_role("one-secret", rule(["get"], ["secrets"], resourceNames=["webhook-tls"]))
EVERYTHING = cluster_role("god", rule(["*"], ["*"], ["*"]))


def test_cluster_admin_for_a_workload_account() -> None:
    binding = crb([sa("ml-dev"), user("alice")], role="cluster-admin")
    verdict = evaluate(binding, ctx())  # cluster-admin is known without its object
    (f,) = [f for f in verdict.findings if f.rule == ADMIN]
    assert f.path == "subjects[0]"
    assert f.severity.value == "critical"
    assert f.message == (
        "ServiceAccount ml-dev/trainer gets ClusterRole cluster-admin: every verb on every "
        "resource, cluster-wide"
    )


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (ESCALATE, "escalate (grant permissions it does not hold)"),
        (RBAC_ADMIN, "escalate (grant permissions it does not hold), bind (bind any role)"),
        (IMPERSONATE, "impersonate (act as other users and ServiceAccounts)"),
        (SECRET_READER, "read of Secrets"),
        (EVERYTHING, "every verb on every resource"),
    ],
)
def test_dangerous_cluster_roles_bound_cluster_wide(role: dict[str, Any], expected: str) -> None:
    binding = crb([sa("ml-prod")], role=role["metadata"]["name"])
    assert found(binding, ctx(role)) == {(ADMIN, "subjects[0]")}
    assert messages(binding, ctx(role)) == [
        f"ServiceAccount ml-prod/trainer gets ClusterRole {role['metadata']['name']}: "
        f"{expected}, cluster-wide"
    ]


@pytest.mark.parametrize("role", [VIEW, ONE_SECRET])
def test_harmless_or_unknown_roles(role: dict[str, Any]) -> None:
    name = role["metadata"]["name"]
    assert found(crb([sa("ml-prod")], role=name), ctx(role)) == set()
    assert found(crb([sa("ml-prod")], role="not-listed-yet"), ctx(role)) == set()


def test_in_one_namespace_only_full_control_and_escalation_count() -> None:
    # impersonating the namespace's accounts or reading its Secrets adds nothing a workload that
    # may create Pods there lacks (the built-in `edit` role has both)
    for role in (IMPERSONATE, SECRET_READER):
        rb = rolebinding("ml-prod", [sa("ml-prod")], role=role["metadata"]["name"])
        assert found(rb, ctx(role)) == set()
    for role in (EVERYTHING, RBAC_ADMIN):
        rb = rolebinding("ml-prod", [sa("ml-prod")], role=role["metadata"]["name"])
        assert found(rb, ctx(role)) == {(ADMIN, "subjects[0]")}
    rb = rolebinding("ml-prod", [sa("ml-prod")], role="cluster-admin")
    assert messages(rb) == [
        "ServiceAccount ml-prod/trainer gets ClusterRole cluster-admin: every verb on every "
        "resource, in namespace ml-prod"
    ]


def test_people_and_excluded_namespaces_may_hold_power() -> None:
    for subjects in ([user("alice"), group("platform-admins")], [sa("kube-system", "ctrl")]):
        assert found(crb(subjects, role="cluster-admin")) == set()
    # every ServiceAccount of the cluster includes the workloads'
    assert found(crb([group("system:serviceaccounts")], role="cluster-admin")) == {
        (ADMIN, "subjects[0]")
    }


# --- workload-cluster-admin on ClusterRoles, by who holds them -----------------------------------


def test_a_cluster_role_is_judged_by_its_holders() -> None:
    binding = crb([sa("ml-prod"), sa("ml-prod", "b")], role="reader")
    harmless = cluster_role("reader", rule(["get"], ["pods"]))
    context = ctx(harmless, binding)
    assert found(harmless, context) == set()
    widened = cluster_role("reader", rule(["get"], ["pods"]), rule(["list"], ["secrets"]))
    assert found(widened, context) == {(ADMIN, "rules[1]")}
    assert messages(widened, context) == [
        "grants read of Secrets, and ClusterRoleBinding crb gives it to ServiceAccount "
        "ml-prod/trainer (and 1 more) cluster-wide"
    ]
    # nobody holds it, or only people, or only inside a namespace for a cluster-only power
    assert found(widened, ctx()) == set()
    assert found(widened, ctx(crb([user("alice")], role="reader"))) == set()
    assert found(widened, ctx(rolebinding("ml-prod", [sa("ml-prod")], role="reader"))) == set()
    everything = cluster_role("reader", rule(["*"], ["*"]))
    namespaced = ctx(rolebinding("ml-prod", [sa("ml-prod")], role="reader"))
    assert found(everything, namespaced) == {(ADMIN, "rules[0]")}
    # Kubernetes' own roles carry the bootstrap label; a "system:" name alone is anyone's choice
    chosen = cluster_role("system:reader", rule(["*"], ["*"]))
    held = ctx(crb([sa("ml-prod")], role="system:reader"))
    assert found(chosen, held) == {(ADMIN, "rules[0]")}
    chosen["metadata"]["labels"] = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    assert found(chosen, held) == set()


# --- workloads running as such an account --------------------------------------------------------


def _pod(ns: str, account: str | None = "trainer") -> dict[str, Any]:
    p = clean_pod(ns)
    if account is not None:
        p["spec"]["serviceAccountName"] = account
    return p


def test_a_workload_hears_about_its_accounts_bindings() -> None:
    context = ctx(
        rolebinding("ml-prod", [sa("ml-dev")], name="read-models"),
        crb([sa("ml-dev")], role="cluster-admin", name="oops"),
    )
    p = _pod("ml-dev")
    assert found(p, context) == {
        (CROSS, "spec.serviceAccountName"),
        (ADMIN, "spec.serviceAccountName"),
    }
    assert sorted(messages(p, context)) == [
        "runs as ServiceAccount ml-dev/trainer, which ClusterRoleBinding oops grants ClusterRole "
        "cluster-admin (every verb on every resource) cluster-wide",
        "runs as ServiceAccount ml-dev/trainer, which RoleBinding ml-prod/read-models binds "
        "into environment prod (own: dev)",
    ]
    verdict = evaluate(p, context)
    assert {f.action for f in verdict.findings if f.rule in (CROSS, ADMIN)} == {Action.WARN}
    # another account, another namespace: nothing
    assert found(_pod("ml-dev", "server"), context) == set()
    assert found(_pod("ml-prod"), context) == set()


def test_default_account_groups_and_controllers() -> None:
    context = ctx(rolebinding("ml-prod", [group("system:serviceaccounts:ml-dev")]))
    d = deployment(_pod("ml-dev", None))
    assert found(d, context) == {(CROSS, "spec.template.spec")}
    (text,) = messages(d, context)
    assert text == (
        "runs as ServiceAccount ml-dev/default, which RoleBinding ml-prod/rb binds into "
        "environment prod (own: dev) through group system:serviceaccounts:ml-dev"
    )


def test_argo_templates_inherit_the_workflow_account() -> None:
    context = ctx(crb([sa("ml-dev", "argo-runner")], role="cluster-admin"))
    wf = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wf", "namespace": "ml-dev"},
        "spec": {
            "serviceAccountName": "argo-runner",
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "x", "command": ["true"]}}],
        },
    }
    assert (ADMIN, "spec.serviceAccountName") in found(wf, context)


# --- exceptions ----------------------------------------------------------------------------------


def _exception(ns: str, kinds: list[str], rules: list[str]) -> ExceptionRecord:
    return ExceptionRecord.from_object(
        {
            "apiVersion": "airlock.dev/v1alpha1",
            "kind": "PolicyException",
            "metadata": {
                "name": "shared-reader",
                "namespace": ns,
                "creationTimestamp": "2026-11-01T00:00:00Z",
                "annotations": {
                    "airlock.dev/created-by": "alice",
                    "airlock.dev/approved-by": "bob",
                },
            },
            "spec": {
                "rules": rules,
                "match": {"kinds": kinds},
                "expires": "2026-12-01T00:00:00Z",
                "owner": "ml-platform",
                "reason": "the dev evaluation job reads prod metrics until the mirror exists",
            },
        }
    )


def test_exceptions_waive_the_new_rules_like_any_other() -> None:
    during = datetime(2026, 11, 20, tzinfo=UTC)
    rb = rolebinding("ml-prod", [sa("ml-dev")])
    waiver = _exception("ml-prod", ["RoleBinding"], [CROSS])
    verdict = evaluate(rb, ctx(exceptions=[waiver], now=during))
    assert [(f.rule, f.exempted_by) for f in verdict.findings] == [(CROSS, "ml-prod/shared-reader")]
    assert verdict.allowed
    # on the workload, in the workload's namespace
    context = ctx(
        rb,
        crb([sa("ml-dev")], role="cluster-admin"),
        exceptions=[_exception("ml-dev", ["Pod"], [ADMIN])],
        now=during,
    )
    waived = {f.rule: f.exempted_by for f in evaluate(_pod("ml-dev"), context).findings}
    assert waived == {CROSS: None, ADMIN: "ml-dev/shared-reader"}


# --- the context and the cluster state -----------------------------------------------------------


def test_facts_are_built_once_per_context() -> None:
    assert EvalContext.build(POLICY).rbac is EMPTY_FACTS
    context = ctx(rolebinding("ml-prod", [sa("ml-dev")]))
    assert context.rbac.cross_env.of("ml-dev", "trainer")
    # evaluation reads the tables; it never rebuilds them
    facts = context.rbac
    evaluate(_pod("ml-dev"), context)
    assert context.rbac is facts


def test_role_powers_parse() -> None:
    assert role_powers(VIEW) == RolePowers()
    assert [p for p, _ in role_powers(EVERYTHING).found] == [
        "all",
        "escalate",
        "bind",
        "impersonate",
        "secrets",
    ]
    assert role_powers(SECRET_READER).found == (("secrets", 1),)
    assert not is_rbac({"apiVersion": "example.com/v1", "kind": "RoleBinding"})
    odd = {"apiVersion": RBAC_V1, "kind": "ClusterRole", "rules": [{"verbs": "*"}, "x", None]}
    assert role_powers(odd) == RolePowers()  # oddly shaped input is read, never raised on
    assert read_binding({"apiVersion": RBAC_V1, "kind": "RoleBinding", "subjects": "x"}) is not None


def _state() -> ClusterState:
    state = ClusterState("default", required=())
    assert state.set_policy(POLICY_OBJECT) is None
    for ns, env in NS_ENV.items():
        state.set_namespace(ns, {ENV_LABEL: env})
    return state


def test_cluster_state_keeps_only_what_the_rules_read() -> None:
    state = _state()
    before = state.version
    state.set_rbac(rolebinding("ml-prod", [user("alice")], name="people"))
    state.set_rbac(VIEW)
    assert state.version == before  # no workload subject, no dangerous power: nothing kept
    assert state.bindings == {}
    assert state.cluster_roles == {}

    rb = rolebinding("ml-prod", [sa("ml-dev")])
    state.set_rbac(rb)
    state.set_rbac(SECRET_READER)
    assert state.version == before + 2
    state.set_rbac(rb)  # a resync changes nothing
    assert state.version == before + 2
    assert found(_pod("ml-dev"), state.context) == {(CROSS, "spec.serviceAccountName")}

    state.delete_rbac(rb)
    state.delete_rbac(SECRET_READER)
    assert state.bindings == {}
    assert state.cluster_roles == {}
    assert found(_pod("ml-dev"), state.context) == set()


# --- the audit -----------------------------------------------------------------------------------


def _uid(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["uid"] = str(uuid.uuid4())
    return obj


def _violations(a: Auditor) -> set[tuple[str, str, str]]:
    return {
        (w.ref.kind, f"{w.ref.namespace}/{w.ref.name}", r.rule)
        for w in a.audited()
        for r in w.violations
        if r.rule in (CROSS, ADMIN)
    }


def test_audit_reports_rolebindings_and_reevaluates_their_accounts_workloads() -> None:
    a = Auditor("default")
    assert a.set_policy(POLICY_OBJECT)
    for ns, env in NS_ENV.items():
        a.set_namespace(ns, {ENV_LABEL: env})
    a.upsert(_uid(_pod("ml-dev")))
    a.run_pass(full=True)
    assert _violations(a) == set()

    rb = _uid(rolebinding("ml-prod", [sa("ml-dev")], name="read-models"))
    a.set_rbac(rb)
    result = a.run_pass()  # incremental: the binding and the namespace of its subject
    assert not result.full
    assert result.changed_namespaces == {"ml-dev", "ml-prod"}
    assert _violations(a) == {
        ("RoleBinding", "ml-prod/read-models", CROSS),
        ("Pod", "ml-dev/p", CROSS),
    }
    # a RoleBinding is reported, but it is not a workload of the compliance ratio
    assert result.summary.workloads["prod"] == (0, 0)
    assert result.summary.workloads["dev"] == (0, 1)

    a.delete_rbac(rb)
    a.run_pass()
    assert _violations(a) == set()

    # a ClusterRole gaining power reaches every workload holding it: a full pass
    a.set_rbac(_uid(crb([sa("ml-dev")], role="reader")))
    a.run_pass()
    a.set_rbac(cluster_role("reader", rule(["*"], ["*"])))
    assert a.run_pass().full
    assert _violations(a) == {("Pod", "ml-dev/p", ADMIN)}


# --- airlock scan --------------------------------------------------------------------------------


def _dump(path: Path, docs: Iterable[dict[str, Any]]) -> None:
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False), encoding="utf-8")


def test_scan_reports_rbac_objects_with_file_and_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "k8s" / "rbac").mkdir(parents=True)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(POLICY_OBJECT), encoding="utf-8")
    _dump(
        tmp_path / "k8s" / "rbac" / "bindings.yaml",
        [
            VIEW,
            rolebinding("ml-prod", [sa("ml-dev")], name="read-models"),
            crb([sa("ml-dev")], role="cluster-admin", name="oops"),
        ],
    )
    # the workload is in another file: the bindings lend it their context
    _dump(tmp_path / "k8s" / "trainer.yaml", [_pod("ml-dev")])
    monkeypatch.chdir(tmp_path)
    code = main(
        [
            "scan", "--format", "json", "--policy", "policy.yaml", "--fail-on", "warn",
            "--namespace-env", "ml-dev=dev", "--namespace-env", "ml-prod=prod", "k8s",
        ]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    got = {
        (f["file"], f["document"], f["kind"], f["name"], f["rule"], f["path"], f["action"])
        for f in report["findings"]
        if f["rule"] in (CROSS, ADMIN)
    }
    bindings = str(Path("k8s") / "rbac" / "bindings.yaml")
    trainer = str(Path("k8s") / "trainer.yaml")
    assert got == {
        (bindings, 2, "RoleBinding", "read-models", CROSS, "subjects[0]", "enforce"),
        (bindings, 3, "ClusterRoleBinding", "oops", ADMIN, "subjects[0]", "warn"),
        (trainer, 1, "Pod", "p", CROSS, "spec.serviceAccountName", "warn"),
        (trainer, 1, "Pod", "p", ADMIN, "spec.serviceAccountName", "warn"),
    }
    assert report["summary"]["errors"] == []
