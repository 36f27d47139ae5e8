"""Governance: every workload says who owns it."""

from __future__ import annotations

from collections.abc import Iterator

from airlock.findings import RuleInfo, Severity
from airlock.rules.base import Hit, Rule, Scope, mapping, sequence
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


RULES = (Rule(OWNER_LABEL_MISSING, check_owner_label),)
