"""RBAC as Airlock reads it: which workload ServiceAccounts a binding grants what, and where.

Two questions, asked of a binding when it is admitted, audited or scanned, and asked of the
whole cluster (:class:`RbacFacts`) so that a workload running as a ServiceAccount hears about
the bindings that reach it:

* **across environments** (``cross-env-rbac-binding``): a RoleBinding whose subjects include a
  ServiceAccount — directly, as ``system:serviceaccount:<ns>:<name>``, or through the
  ``system:serviceaccounts:<ns>`` / ``system:serviceaccounts`` groups — of a namespace in another
  environment, unless that environment declares the binding's environment reachable; a
  ClusterRoleBinding whose ServiceAccount subjects span environments that do not reach each
  other (it grants them all the same access).
* **too much power** (``workload-cluster-admin``): a binding that gives a workload
  ServiceAccount a ClusterRole with every verb on every resource (``cluster-admin``), or
  ``escalate``/``bind`` (grant themselves anything), and, cluster-wide only, ``impersonate`` or
  read of Secrets. Inside one namespace, impersonating its ServiceAccounts or reading its Secrets
  adds nothing a workload that may create Pods there does not have (``edit`` has both), so a
  RoleBinding is held only to the first two.

Humans (``User``/``Group`` subjects other than the ServiceAccount forms) are not workloads and
are left alone; so are Kubernetes' own objects (names starting ``system:`` and the bootstrap
defaults labelled ``kubernetes.io/bootstrapping=rbac-defaults``), which the API server
reconciles on every start.

Pure and layer 1: namespaces are resolved to environments through :class:`Environments`, which
:class:`airlock.state.EvalContext` implements, so the rules and the cluster facts share one
reading of every binding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Final, Protocol

from airlock.records import field, record

__all__ = [
    "CLUSTER_ADMIN",
    "EMPTY_FACTS",
    "RBAC_GROUP",
    "RBAC_KINDS",
    "AccountIndex",
    "Binding",
    "EnvironmentLike",
    "Environments",
    "RbacFacts",
    "RolePowers",
    "Subject",
    "cross_env_subjects",
    "is_bootstrap",
    "is_rbac",
    "power_subjects",
    "read_binding",
    "role_of",
    "role_powers",
]

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
RBAC_KINDS: Final = frozenset({"RoleBinding", "ClusterRoleBinding", "ClusterRole"})

_SA_GROUP_PREFIX: Final = "system:serviceaccounts:"
_SA_GROUP_ALL: Final = "system:serviceaccounts"
_SA_USER_PREFIX: Final = "system:serviceaccount:"
_BOOTSTRAP_LABEL: Final = "kubernetes.io/bootstrapping"

# Subject scopes
SA: Final = "sa"
NAMESPACE: Final = "namespace"
EVERY: Final = "every"


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any] | tuple[Any, ...]:
    return value if isinstance(value, list | tuple) else ()


def _strs(value: object) -> frozenset[str]:
    return frozenset(v for v in _list(value) if isinstance(v, str))


def is_rbac(obj: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is a RoleBinding, ClusterRoleBinding or ClusterRole (any version)."""
    api = obj.get("apiVersion")
    return (
        obj.get("kind") in RBAC_KINDS
        and isinstance(api, str)
        and api.rpartition("/")[0] == RBAC_GROUP
    )


def is_bootstrap(obj: Mapping[str, Any]) -> bool:
    """One of Kubernetes' own roles or bindings: the API server labels every one it creates.
    A name starting with ``system:`` is not enough: anyone who may create a binding may choose
    that name."""
    meta = _map(obj.get("metadata"))
    return _map(meta.get("labels")).get(_BOOTSTRAP_LABEL) == "rbac-defaults"


# --------------------------------------------------------------------------------------------
# Bindings


@record(frozen=True)
class Subject:
    """A workload subject of a binding: one ServiceAccount, every one of a namespace, or all.

    ``index`` is the subject's position in ``subjects[]`` (for the finding's path).
    """

    index: int
    scope: str  # SA | NAMESPACE | EVERY
    namespace: str = ""
    name: str = ""

    @property
    def label(self) -> str:
        if self.scope == SA:
            return f"ServiceAccount {self.namespace}/{self.name}"
        if self.scope == NAMESPACE:
            return f"group {_SA_GROUP_PREFIX}{self.namespace}"
        return f"group {_SA_GROUP_ALL}"

    @property
    def via(self) -> str:
        """How a ServiceAccount is reached through this subject, for messages about the account."""
        return "" if self.scope == SA else f" through {self.label}"


@record(frozen=True)
class Binding:
    """What Airlock keeps of a RoleBinding or ClusterRoleBinding: its workload subjects only."""

    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str | None
    name: str
    role_kind: str  # ClusterRole | Role
    role_name: str
    subjects: tuple[Subject, ...]

    @property
    def cluster_wide(self) -> bool:
        return self.kind == "ClusterRoleBinding"

    @property
    def display(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else f"{self.kind} {self.name}"
        )

    @property
    def role_display(self) -> str:
        return f"{self.role_kind} {self.role_name}"


def _subject(i: int, raw: Mapping[str, Any], binding_ns: str | None) -> Subject | None:
    kind, name = raw.get("kind"), raw.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind == "ServiceAccount":
        ns = raw.get("namespace")
        # a RoleBinding's ServiceAccount subject without a namespace is one of its own namespace
        ns = ns if isinstance(ns, str) and ns else binding_ns
        return Subject(i, SA, ns, name) if ns else None
    if kind == "Group":
        if name == _SA_GROUP_ALL:
            return Subject(i, EVERY)
        if name.startswith(_SA_GROUP_PREFIX) and len(name) > len(_SA_GROUP_PREFIX):
            return Subject(i, NAMESPACE, name[len(_SA_GROUP_PREFIX) :])
        return None
    if kind == "User" and name.startswith(_SA_USER_PREFIX):
        ns, sep, sa = name[len(_SA_USER_PREFIX) :].partition(":")
        return Subject(i, SA, ns, sa) if ns and sep and sa else None
    return None


def read_binding(obj: Mapping[str, Any]) -> Binding | None:
    """The binding in ``obj``; None for anything else and for Kubernetes' own bindings."""
    kind = obj.get("kind")
    if kind not in ("RoleBinding", "ClusterRoleBinding") or not is_rbac(obj) or is_bootstrap(obj):
        return None
    meta = _map(obj.get("metadata"))
    name = meta.get("name")
    ns = meta.get("namespace") if kind == "RoleBinding" else None
    ns = ns if isinstance(ns, str) and ns else None
    ref = _map(obj.get("roleRef"))
    role_kind, role_name = ref.get("kind"), ref.get("name")
    subjects = tuple(
        s
        for i, raw in enumerate(_list(obj.get("subjects")))
        if (s := _subject(i, _map(raw), ns)) is not None
    )
    return Binding(
        kind=str(kind),
        namespace=ns,
        name=name if isinstance(name, str) else "",
        role_kind=role_kind if isinstance(role_kind, str) else "",
        role_name=role_name if isinstance(role_name, str) else "",
        subjects=subjects,
    )


# --------------------------------------------------------------------------------------------
# What a role may do

ALL: Final = "all"
ESCALATE: Final = "escalate"
BIND: Final = "bind"
IMPERSONATE: Final = "impersonate"
SECRETS: Final = "secrets"

_POWER_TEXT: Final = {
    ALL: "every verb on every resource",
    ESCALATE: "escalate (grant permissions it does not hold)",
    BIND: "bind (bind any role)",
    IMPERSONATE: "impersonate (act as other users and ServiceAccounts)",
    SECRETS: "read of Secrets",
}
# Inside one namespace only these make a workload its administrator (see the module docstring).
_NAMESPACED_POWERS: Final = frozenset({ALL, ESCALATE, BIND})
_ROLE_RESOURCES: Final = frozenset({"roles", "clusterroles", "*"})
_IDENTITY_RESOURCES: Final = frozenset(
    {"users", "groups", "serviceaccounts", "uids", "userextras", "*"}
)
_SECRET_READS: Final = frozenset({"get", "list", "watch", "*"})


@record(frozen=True)
class RolePowers:
    """The dangerous powers a ClusterRole grants: ``(power, index of the first rule)``."""

    found: tuple[tuple[str, int], ...] = ()

    def relevant(self, cluster_wide: bool) -> tuple[tuple[str, int], ...]:
        """The powers that count for a binding of this scope (``ALL`` stands for the rest)."""
        powers = (
            self.found
            if cluster_wide
            else tuple(p for p in self.found if p[0] in _NAMESPACED_POWERS)
        )
        every = [p for p in powers if p[0] == ALL]
        return tuple(every) if every else powers

    def describe(self, cluster_wide: bool) -> str:
        return ", ".join(_POWER_TEXT[p] for p, _ in self.relevant(cluster_wide))

    def __bool__(self) -> bool:
        return bool(self.found)


CLUSTER_ADMIN: Final = RolePowers(((ALL, 0),))
"""``cluster-admin``'s powers, known without its object (a scan, a cluster not yet listed)."""


def role_powers(obj: Mapping[str, Any]) -> RolePowers:
    """The dangerous powers of a ClusterRole's rules (aggregation rules are resolved by the API
    server into ``rules``, so an aggregated role is judged by what it has been given)."""
    first: dict[str, int] = {}
    for i, raw in enumerate(_list(obj.get("rules"))):
        rule = _map(raw)
        verbs = _strs(rule.get("verbs"))
        resources = {r.partition("/")[0] for r in _strs(rule.get("resources"))}
        groups = _strs(rule.get("apiGroups"))
        named = bool(_strs(rule.get("resourceNames")))
        every_verb = "*" in verbs
        found: list[str] = []
        if every_verb and "*" in resources:
            found.append(ALL)
        if resources & _ROLE_RESOURCES and groups & {RBAC_GROUP, "*"}:
            if every_verb or "escalate" in verbs:
                found.append(ESCALATE)
            if every_verb or "bind" in verbs:
                found.append(BIND)
        if resources & _IDENTITY_RESOURCES and (every_verb or "impersonate" in verbs):
            found.append(IMPERSONATE)
        if (
            not named
            and resources & {"secrets", "*"}
            and groups & {"", "*"}
            and verbs & _SECRET_READS
        ):
            found.append(SECRETS)
        for power in found:
            first.setdefault(power, i)
    order = (ALL, ESCALATE, BIND, IMPERSONATE, SECRETS)
    return RolePowers(tuple((p, first[p]) for p in order if p in first))


# --------------------------------------------------------------------------------------------
# Environments


class EnvironmentLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def reachable(self) -> frozenset[str]: ...


class Environments(Protocol):
    """How namespaces map to environments (:class:`airlock.state.EvalContext` is one)."""

    def environment_of(self, namespace: str | None) -> EnvironmentLike: ...

    def subject_environment(self, namespace: str) -> EnvironmentLike | None:
        """The environment of a known namespace; None when unknown or excluded."""

    def is_excluded(self, namespace: str | None) -> bool: ...

    def environments(self) -> Iterable[EnvironmentLike]: ...


def _reaches(src: EnvironmentLike, dst: EnvironmentLike) -> bool:
    return src.name == dst.name or dst.name in src.reachable


# A hit on a binding: (subject, message about the binding, clause about the account)
BindingHit = tuple[Subject, str, str]


def cross_env_subjects(b: Binding, envs: Environments) -> Iterator[BindingHit]:
    """The subjects of ``b`` bound across environments (see the module docstring)."""
    if b.cluster_wide:
        yield from _spanning(b, envs)
        return
    if b.namespace is None or envs.is_excluded(b.namespace):
        return
    here = envs.environment_of(b.namespace)
    where = f"namespace {b.namespace} of environment {here.name}"
    for s in b.subjects:
        if s.scope == EVERY:
            others = sorted(e.name for e in envs.environments() if not _reaches(e, here))
            if others:
                yield (
                    s,
                    f"{s.label} (every ServiceAccount, also of environment "
                    f"{', '.join(others)}) gets access in {where}",
                    f"{b.display} binds into environment {here.name}{s.via}",
                )
            continue
        if envs.is_excluded(s.namespace):
            continue
        there = envs.subject_environment(s.namespace)
        if there is None or _reaches(there, here):
            continue
        yield (
            s,
            f"{s.label} of environment {there.name} gets access in {where}",
            f"{b.display} binds into environment {here.name} (own: {there.name}){s.via}",
        )


def _subject_envs(s: Subject, envs: Environments) -> list[EnvironmentLike]:
    if s.scope == EVERY:
        return list(envs.environments())
    if envs.is_excluded(s.namespace):
        return []
    env = envs.subject_environment(s.namespace)
    return [] if env is None else [env]


def _spanning(b: Binding, envs: Environments) -> Iterator[BindingHit]:
    """ClusterRoleBinding subjects in environments that do not reach each other both ways.

    The binding is reported at every subject that meets an earlier one it should not share
    access with; the accounts of both sides learn about it.
    """
    seen: list[tuple[EnvironmentLike, Subject]] = []
    reported: set[int] = set()
    for s in b.subjects:
        mine = _subject_envs(s, envs)
        for env in mine:
            clash = next(
                ((e, o) for e, o in seen if not (_reaches(env, e) and _reaches(e, env))), None
            )
            if clash is None:
                continue
            other_env, other = clash
            if s.index not in reported:
                reported.add(s.index)
                yield (
                    s,
                    f"{s.label} of environment {env.name} shares this binding with "
                    f"{other.label} of environment {other_env.name}",
                    f"{b.display} also grants its access to {other.label} of environment "
                    f"{other_env.name}{s.via}",
                )
            if other.index not in reported:
                reported.add(other.index)
                # the earlier subject's account hears of it too; the binding is reported once
                yield (
                    other,
                    "",
                    f"{b.display} also grants its access to {s.label} of environment "
                    f"{env.name}{other.via}",
                )
            break
        seen.extend((env, s) for env in mine)


def role_of(b: Binding, roles: Mapping[str, RolePowers]) -> RolePowers | None:
    """The powers of the role ``b`` refers to, when known (Roles are not followed)."""
    if b.role_kind != "ClusterRole":
        return None
    powers = roles.get(b.role_name)
    if powers is None and b.role_name == "cluster-admin":
        return CLUSTER_ADMIN
    return powers


def _workload_subject(s: Subject, envs: Environments) -> bool:
    return s.scope == EVERY or not envs.is_excluded(s.namespace)


def power_subjects(
    b: Binding, powers: RolePowers | None, envs: Environments
) -> Iterator[BindingHit]:
    """The workload subjects ``b`` gives dangerous powers to."""
    if powers is None or (b.namespace is not None and envs.is_excluded(b.namespace)):
        return
    if not powers.relevant(b.cluster_wide):
        return
    what = powers.describe(b.cluster_wide)
    where = "cluster-wide" if b.cluster_wide else f"in namespace {b.namespace}"
    for s in b.subjects:
        if _workload_subject(s, envs):
            yield (
                s,
                f"{s.label} gets {b.role_display}: {what}, {where}",
                f"{b.display} grants {b.role_display} ({what}) {where}{s.via}",
            )


# --------------------------------------------------------------------------------------------
# The cluster's facts, indexed by ServiceAccount


@record(frozen=True)
class AccountIndex:
    """Clauses about ServiceAccounts: per account, per namespace (group), for every account."""

    accounts: Mapping[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    namespaces: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    everyone: tuple[str, ...] = ()

    def of(self, namespace: str, name: str) -> tuple[str, ...]:
        """Every clause that applies to ServiceAccount ``namespace/name``."""
        found = self.accounts.get((namespace, name), ())
        group = self.namespaces.get(namespace)
        if group:
            found = (*found, *group)
        return (*found, *self.everyone) if self.everyone else found

    def __bool__(self) -> bool:
        return bool(self.accounts or self.namespaces or self.everyone)


class _IndexBuilder:
    __slots__ = ("accounts", "everyone", "namespaces")

    def __init__(self) -> None:
        self.accounts: dict[tuple[str, str], list[str]] = {}
        self.namespaces: dict[str, list[str]] = {}
        self.everyone: list[str] = []

    def add(self, s: Subject, clause: str) -> None:
        if s.scope == SA:
            self.accounts.setdefault((s.namespace, s.name), []).append(clause)
        elif s.scope == NAMESPACE:
            self.namespaces.setdefault(s.namespace, []).append(clause)
        else:
            self.everyone.append(clause)

    def build(self) -> AccountIndex:
        return AccountIndex(
            MappingProxyType({k: tuple(v) for k, v in self.accounts.items()}),
            MappingProxyType({k: tuple(v) for k, v in self.namespaces.items()}),
            tuple(self.everyone),
        )


@record(frozen=True)
class RbacFacts:
    """What the cluster's bindings and ClusterRoles mean for workloads, built once per context.

    ``holders`` maps a ClusterRole's name to the bindings giving it to workload subjects, so a
    ClusterRole that gains a dangerous rule is judged by who holds it.
    """

    roles: Mapping[str, RolePowers] = field(default_factory=dict)
    cross_env: AccountIndex = AccountIndex()
    powers: AccountIndex = AccountIndex()
    holders: Mapping[str, tuple[tuple[Binding, Subject], ...]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        envs: Environments,
        bindings: Iterable[Binding],
        roles: Mapping[str, RolePowers],
    ) -> RbacFacts:
        cross, power = _IndexBuilder(), _IndexBuilder()
        holders: dict[str, list[tuple[Binding, Subject]]] = {}
        for b in bindings:
            if b.namespace is not None and envs.is_excluded(b.namespace):
                continue
            for s, _msg, clause in cross_env_subjects(b, envs):
                cross.add(s, clause)
            for s, _msg, clause in power_subjects(b, role_of(b, roles), envs):
                power.add(s, clause)
            if b.role_kind == "ClusterRole":
                for s in b.subjects:
                    if _workload_subject(s, envs):
                        holders.setdefault(b.role_name, []).append((b, s))
        return cls(
            roles=MappingProxyType(dict(roles)),
            cross_env=cross.build(),
            powers=power.build(),
            holders=MappingProxyType({k: tuple(v) for k, v in holders.items()}),
        )


EMPTY_FACTS: Final = RbacFacts()
