"""The one place a verdict is computed.

``evaluate`` is pure: object + context in, verdict out. The webhook, the background audit and
``airlock scan`` all call it, so a workload gets the same answer wherever it is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airlock.catalog import API_VERSION, OWN_KINDS
from airlock.detectors import redact
from airlock.findings import Action, Finding, RuleInfo, new_finding
from airlock.mutations import Patch, mutate, pin_images
from airlock.records import record
from airlock.rules import AUDIT_ONLY, RULES, Scope
from airlock.rules.secrets import CONFIGMAP_RULE_ID
from airlock.state import EvalContext
from airlock.workloads import Workload, discover

if TYPE_CHECKING:
    from airlock.model import ExceptionRecord
    from airlock.rules.base import Check

__all__ = [
    "Patch",
    "Verdict",
    "credential_configmaps",
    "evaluate",
    "evaluate_workload",
    "mutate",
    "pin_images",
]


@record(frozen=True)
class Verdict:
    kind: str
    namespace: str | None
    name: str
    environment: str
    excluded: bool
    findings: tuple[Finding, ...]  # every failing rule at every place; exempted ones included
    # A ConfigMap's keys that hold a credential: workloads reading them are flagged in turn
    # (the second phase of evaluating ConfigMaps before their readers).
    credential_keys: frozenset[str] = frozenset()

    @property
    def enforced(self) -> tuple[Finding, ...]:
        return self._active(Action.ENFORCE)

    @property
    def warned(self) -> tuple[Finding, ...]:
        return self._active(Action.WARN)

    @property
    def audited(self) -> tuple[Finding, ...]:
        return self._active(Action.AUDIT)

    @property
    def exempted(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.exempted_by is not None)

    @property
    def allowed(self) -> bool:
        return not self.enforced

    def _active(self, action: Action) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.action is action and f.exempted_by is None)


_Step = tuple[str, RuleInfo, "Check", Action]  # (rule id, info, check, action)

# The registry flattened once: (id, info, check, audit-only) per rule, in catalog order.
_PLAN = tuple((r.id, r.info, r.check, r.id in AUDIT_ONLY) for r in RULES)
# Airlock's own objects are not workloads: only their free text is checked, for credentials.
_OWN_PLAN = tuple(step for step in _PLAN if step[0] == CONFIGMAP_RULE_ID)
# id of an environment's actions -> (those actions, their steps, their steps for Airlock's own
# objects). An environment's actions never change in place; each entry holds its mapping, so the
# id stays that mapping's while cached.
_STEPS: dict[int, tuple[Mapping[str, Action], tuple[_Step, ...], tuple[_Step, ...]]] = {}
_STEPS_MAX = 64


def _steps(actions: Mapping[str, Action], own: bool) -> tuple[_Step, ...]:
    """The rules to run under ``actions``, each with its action: rules turned off left out,
    audit-only rules at most audited. Built once per environment, not per request."""
    found = _STEPS.get(id(actions))
    if found is None or found[0] is not actions:
        steps = tuple(_resolved(actions, _PLAN))
        own_steps = tuple(_resolved(actions, _OWN_PLAN))
        if len(_STEPS) >= _STEPS_MAX:
            _STEPS.clear()
        found = _STEPS[id(actions)] = (actions, steps, own_steps)
    return found[2] if own else found[1]


def _resolved(
    actions: Mapping[str, Action], plan: tuple[tuple[str, RuleInfo, Check, bool], ...]
) -> Iterator[_Step]:
    for rule_id, info, check, audit_only in plan:
        action = actions[rule_id]
        if action is Action.OFF:
            continue
        if audit_only and action is not Action.AUDIT:
            action = Action.AUDIT
        yield rule_id, info, check, action


def evaluate(obj: Mapping[str, Any], ctx: EvalContext) -> Verdict:
    """Check one Kubernetes object against the policy of its namespace's environment."""
    return evaluate_workload(discover(obj), ctx)


def evaluate_workload(wl: Workload, ctx: EvalContext) -> Verdict:
    """``evaluate`` for an object already discovered (the audit keeps discovered workloads)."""
    ns = wl.namespace
    env = ctx.environment_of(ns)
    if ns is not None and ns in ctx.policy.excluded_namespaces:
        return Verdict(wl.kind, ns, wl.name, env.name, True, ())
    scope = Scope(ctx, env, ns)
    waivers = ctx.exceptions.get(ns, ()) if ns is not None else ()
    matching = [w for w in waivers if w.matches(wl.kind, wl.name, wl.labels)] if waivers else []
    findings: list[Finding] = []
    own = wl.kind in OWN_KINDS and wl.api_version == API_VERSION
    for rule_id, info, check, action in _steps(env.actions, own):
        waiver = _waiver(matching, rule_id) if matching else None
        for hit in check(wl, scope):
            findings.append(
                new_finding(
                    info.id,
                    info.severity,
                    action,
                    wl.kind,
                    ns,
                    wl.name,
                    redact(hit.path),
                    redact(hit.message),
                    info.fix,
                    info.family,
                    info.references,
                    waiver,
                )
            )
    keys = frozenset(scope.credential_keys)  # filled by the ConfigMap's own check
    return Verdict(wl.kind, ns, wl.name, env.name, False, tuple(findings), keys)


class CredentialHolder(Protocol):
    """What :func:`credential_configmaps` reads of a verdict."""

    @property
    def namespace(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def credential_keys(self) -> frozenset[str]: ...


def credential_configmaps(
    verdicts: Iterable[CredentialHolder],
) -> dict[tuple[str, str], frozenset[str]]:
    """``(namespace, name) -> keys`` of the ConfigMaps among ``verdicts`` holding credentials
    (the keys of every verdict for the same ConfigMap, as when two files define it).

    The context of the second phase (``EvalContext.credential_configmaps``): evaluate ConfigMaps
    first, then the workloads with this map in their context.
    """
    flagged: dict[tuple[str, str], frozenset[str]] = {}
    for v in verdicts:
        if v.credential_keys and v.namespace is not None:
            key = (v.namespace, v.name)
            flagged[key] = flagged.get(key, frozenset()) | v.credential_keys
    return flagged


def _waiver(matching: list[ExceptionRecord], rule: str) -> str | None:
    for rec in matching:
        if rec.waives(rule):
            return rec.key
    return None
