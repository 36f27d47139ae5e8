"""The vocabulary every layer shares: severities, actions, rule metadata and findings.

Plain frozen records (:mod:`airlock.records`), not pydantic models: findings are built on the
admission hot path.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from airlock.records import field, fields, record

__all__ = ["Action", "Finding", "RuleInfo", "Severity", "new_finding"]


_T = TypeVar("_T")


def _by_fields(cls: type[_T], build: Callable[..., _T]) -> Callable[[_T], tuple[Any, ...]]:
    """``__reduce__``: ``build`` called with every field's value, in declaration order (what
    a record pickles as, with a constructor of the caller's choosing)."""
    names = fields(cls)
    get = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (build, (get(obj),))
    return lambda obj: (build, get(obj))


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Higher is worse; used to sort findings and pick SARIF levels."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1}


class Action(StrEnum):
    """What a finding does at admission: the policy's mode for that rule in that environment."""

    ENFORCE = "enforce"  # deny the request
    WARN = "warn"  # admit with an admission warning
    AUDIT = "audit"  # admit silently; recorded in metrics and reports
    OFF = "off"  # rule not evaluated

    @property
    def rank(self) -> int:
        return _ACTION_RANK[self]


_ACTION_RANK = {Action.ENFORCE: 3, Action.WARN: 2, Action.AUDIT: 1, Action.OFF: 0}


@record(frozen=True)
class RuleInfo:
    """Everything said about a rule: shown by `airlock explain`, SARIF, messages and reports."""

    id: str
    family: str  # secrets | images | segregation | hardening | governance
    severity: Severity
    title: str  # short name, e.g. "Privileged container"
    reason: str  # one line: what is wrong
    fix: str  # one line: how to fix it
    rationale: str  # why it matters (a few sentences)
    references: tuple[str, ...] = ()  # standards: "CIS 5.2.1", "PSS baseline: Privileged", ...
    mutable: bool = False  # a mutation can fix it automatically


@record(frozen=True)
class Finding:
    """One rule failing at one place of one object.

    ``message`` is the rule's reason made specific (it may name a variable or an image, never a
    secret value: detected credentials appear only in redacted form).
    """

    rule: str
    severity: Severity
    action: Action
    kind: str
    namespace: str | None
    name: str
    path: str  # JSON path within the object, e.g. spec.template.spec.containers[1].env[3].value
    message: str
    fix: str
    family: str = ""
    references: tuple[str, ...] = field(default=())
    exempted_by: str | None = None  # "namespace/name" of the PolicyException that waives it

    @property
    def exempted(self) -> bool:
        return self.exempted_by is not None


# The engine builds a dozen findings per request: a frozen dataclass's generated __init__ sets
# each field through object.__setattr__ by name (1.2 µs a Finding here); setting the slots
# through their descriptors halves that. Same object, equality and repr (a test compares).
(
    _f_rule,
    _f_severity,
    _f_action,
    _f_kind,
    _f_namespace,
    _f_name,
    _f_path,
    _f_message,
    _f_fix,
    _f_family,
    _f_references,
    _f_exempted_by,
) = (getattr(Finding, name).__set__ for name in fields(Finding))
_new = object.__new__


def new_finding(  # noqa: PLR0917 (mirrors the dataclass constructor)
    rule: str,
    severity: Severity,
    action: Action,
    kind: str,
    namespace: str | None,
    name: str,
    path: str,
    message: str,
    fix: str,
    family: str,
    references: tuple[str, ...],
    exempted_by: str | None,
) -> Finding:
    """``Finding(...)`` with every field given, for the hot path."""
    f: Finding = _new(Finding)
    _f_rule(f, rule)
    _f_severity(f, severity)
    _f_action(f, action)
    _f_kind(f, kind)
    _f_namespace(f, namespace)
    _f_name(f, name)
    _f_path(f, path)
    _f_message(f, message)
    _f_fix(f, fix)
    _f_family(f, family)
    _f_references(f, references)
    _f_exempted_by(f, exempted_by)
    return f


Finding.__reduce__ = _by_fields(Finding, new_finding)  # type: ignore[assignment,method-assign]
