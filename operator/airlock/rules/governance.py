"""Governance: every workload says who owns it, and no workload holds the keys to the cluster."""

from __future__ import annotations

from collections.abc import Iterator

from airlock.findings import RuleInfo, Severity
from airlock.rbac import (
    is_bootstrap,
    is_rbac,
    power_subjects,
    read_binding,
    role_of,
    role_powers,
)
from airlock.rules.base import Hit, Rule, Scope, mapping, sequence, service_accounts
from airlock.workloads import Workload

OWNER_LABEL_MISSING = RuleInfo(
    id="owner-label-missing",
    family="governance",
    severity=Severity.LOW,
    title="Workload without an owner",
    reason="the workload has no ownership label",
    fix="add the owner label (default airlock.dev/owner) or label the namespace to inherit it",
    rationale=(
        "When a finding, an incident or a cost spike comes up, someone must be reachable: the "
        "owner label routes reports and exceptions to a team."
    ),
    references=("NIST SP 800-190 4.5", "CIS 5.7.1"),
    mutable=True,
)


def check_owner_label(wl: Workload, scope: Scope) -> Iterator[Hit]:
    if not wl.pod_specs:
        return
    # Pods and ReplicaSets made by a controller inherit ownership from it; it is checked there.
    if sequence(mapping(wl.obj.get("metadata")).get("ownerReferences")):
        return
    label = scope.ctx.policy.owner_label
    value = wl.labels.get(label)
    if not isinstance(value, str) or not value.strip():
        yield Hit("metadata.labels", f"label {label} is missing")


WORKLOAD_CLUSTER_ADMIN = RuleInfo(
    id="workload-cluster-admin",
    family="governance",
    severity=Severity.CRITICAL,
    title="Workload ServiceAccount with cluster-admin power",
    reason=(
        "a binding gives a workload ServiceAccount every verb on every resource (cluster-admin), "
        "escalate or bind, or cluster-wide impersonate or read of Secrets"
    ),
    fix=(
        "bind the ServiceAccount to a role listing only the verbs and resources it uses, in its "
        "own namespace; leave cluster-wide power to people and platform namespaces"
    ),
    rationale=(
        "Whoever runs code in a pod holds its ServiceAccount's token: if that account may do "
        "everything, escalate or bind roles, impersonate others or read every Secret, one "
        "compromised model server or notebook owns the cluster and every other rule is moot. "
        "Workloads running as such an account are reported too."
    ),
    references=(
        "CIS 5.1.1",
        "CIS 5.1.2",
        "CIS 5.1.8",
        "NSA/CISA Kubernetes Hardening: authorization",
        "NIST SP 800-190 4.1.2",
    ),
)


def check_cluster_admin(wl: Workload, scope: Scope) -> Iterator[Hit]:
    ctx = scope.ctx
    if wl.kind.endswith("RoleBinding"):
        binding = read_binding(wl.obj)
        if binding is not None:
            powers = role_of(binding, ctx.rbac.roles)
            for subject, message, _clause in power_subjects(binding, powers, ctx):
                yield Hit(f"subjects[{subject.index}]", message)
        return
    if wl.kind == "ClusterRole":
        yield from _role_hits(wl, scope)
        return
    facts = ctx.rbac.powers
    ns = scope.namespace
    if not facts or ns is None or not wl.pod_specs:
        return
    for path, account in service_accounts(wl):
        for clause in facts.of(ns, account):
            yield Hit(path, f"runs as ServiceAccount {ns}/{account}, which {clause}")


def _role_hits(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """A ClusterRole with dangerous rules, judged by the workload subjects that hold it: one
    finding, at the first dangerous rule, for the widest binding (cluster-wide first)."""
    holders = scope.ctx.rbac.holders.get(wl.name)
    if not holders or not is_rbac(wl.obj) or is_bootstrap(wl.obj):
        return
    powers = role_powers(wl.obj)
    for cluster_wide in (True, False):
        held = [(b, s) for b, s in holders if b.cluster_wide == cluster_wide]
        relevant = powers.relevant(cluster_wide)
        if held and relevant:
            b, s = held[0]
            more = f" (and {len(held) - 1} more)" if len(held) > 1 else ""
            where = "cluster-wide" if cluster_wide else f"in namespace {b.namespace}"
            yield Hit(
                f"rules[{min(i for _, i in relevant)}]",
                f"grants {powers.describe(cluster_wide)}, and {b.display} gives it to "
                f"{s.label}{more} {where}",
            )
            return


RULES = (
    Rule(OWNER_LABEL_MISSING, check_owner_label),
    Rule(WORKLOAD_CLUSTER_ADMIN, check_cluster_admin),
)
