"""The rule registry: every rule of the catalog, listed explicitly, in catalog order.

No rule registers itself by import side effect; adding a rule means adding it to a family's
``RULES`` tuple and to the catalog ids in :mod:`airlock.model` (a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from airlock.findings import RuleInfo
from airlock.rules import governance, hardening, images, pod_security, secrets, segregation
from airlock.rules.base import Hit, Rule, Scope

__all__ = ["AUDIT_ONLY", "RULES", "RULE_INFO", "Hit", "Rule", "Scope", "explain"]

RULES: tuple[Rule, ...] = (
    *secrets.RULES,
    *images.RULES,
    *segregation.RULES,
    *hardening.RULES,
    *pod_security.RULES,
    *governance.RULES,
)

RULE_INFO: Mapping[str, RuleInfo] = MappingProxyType({r.id: r.info for r in RULES})

# Rules about the namespace rather than the object: recorded (audit) at most, never a reason to
# deny or warn a developer's workload (the namespace is the admin's to fix).
AUDIT_ONLY = frozenset({"namespace-environment-missing", "network-isolation-missing"})


def explain(rule_id: str) -> RuleInfo:
    """The catalog entry of a rule; ``KeyError`` for an unknown id."""
    return RULE_INFO[rule_id]
