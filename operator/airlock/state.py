"""What an evaluation needs to know besides the object: the compiled policy and the cluster's shape.

``CompiledPolicy`` turns a validated :class:`~airlock.model.PolicySpec` into lookup tables once, so
the hot path never walks the pydantic model. ``EvalContext`` adds the namespace→environment map,
namespace labels, the exceptions in force and the clock. Both are immutable: the webhook swaps a
whole new context when a watch delivers a change, so a request never sees a half-updated state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

from airlock.catalog import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_ENVIRONMENT_LABEL,
    DEFAULT_EXCLUDED_NAMESPACES,
    DEFAULT_OWNER_LABEL,
    RULE_IDS,
)
from airlock.detectors import DetectorSet, FingerprintKey
from airlock.errors import PolicyError
from airlock.findings import Action
from airlock.images import SignatureCheck
from airlock.rbac import EMPTY_FACTS, Binding, RbacFacts, RolePowers
from airlock.records import field, record, replace

if TYPE_CHECKING:  # pydantic models: imported when a policy or an exception is actually given
    from airlock.model import ExceptionRecord, PodSecurity, PolicySpec

__all__ = [
    "PSS_LATEST",
    "CompiledEnvironment",
    "CompiledPolicy",
    "EvalContext",
    "PodSecurityProfile",
    "PolicyKeyer",
    "default_policy",
]

# The minor version that stands for ``latest``: newer than any release, so every versioned
# control applies with its newest semantics.
PSS_LATEST: Final = 1_000_000


@record(frozen=True)
class PodSecurityProfile:
    """The Pod Security Standard an environment is judged by: level, version, host-port list."""

    restricted: bool = True
    minor: int = PSS_LATEST  # the Kubernetes 1.N whose standard applies
    allowed_host_ports: frozenset[int] = frozenset()

    @classmethod
    def from_spec(cls, spec: PodSecurity) -> PodSecurityProfile:
        minor = PSS_LATEST if spec.version == "latest" else int(spec.version.partition(".")[2])
        return cls(
            restricted=spec.level == "restricted",
            minor=minor,
            allowed_host_ports=frozenset(spec.allowed_host_ports),
        )


_EMPTY: Mapping[str, str] = MappingProxyType({})


@record(frozen=True)
class CompiledEnvironment:
    """One environment of the policy, with the action of every rule already resolved."""

    name: str
    mode: Action
    actions: Mapping[str, Action]  # rule id -> action (env override > policy override > env mode)
    allowed_registries: tuple[str, ...]
    allowed_storage_prefixes: tuple[str, ...]
    reachable: frozenset[str]
    pod_security: PodSecurityProfile = PodSecurityProfile()


@record(frozen=True)
class CompiledPolicy:
    """A policy as lookup tables. ``source`` is the validated spec; ``None`` for the built-in
    default, whose tables are built without pydantic (``airlock scan`` starts faster)."""

    detectors: DetectorSet
    environments: Mapping[str, CompiledEnvironment]
    default_environment: str
    excluded_namespaces: frozenset[str]
    environment_label: str
    owner_label: str
    # storage prefixes of every environment, to tell "another environment's store" from "unknown"
    storage_owner: tuple[tuple[str, str], ...]  # (prefix, environment), longest prefix first
    source: PolicySpec | None = None

    @property
    def spec(self) -> PolicySpec:
        """The validated spec (for the default policy, an empty spec built on first use)."""
        return self.source if self.source is not None else _empty_spec()

    def keyed(self, key: FingerprintKey | None) -> CompiledPolicy:
        """The same policy with fingerprints keyed by ``key`` (an installation's key)."""
        detectors = self.detectors.keyed(key)
        return self if detectors is self.detectors else replace(self, detectors=detectors)

    @classmethod
    def builtin(cls) -> CompiledPolicy:
        """The policy of an empty spec, from the catalog's defaults: every rule enforced in one
        environment, restricted Pod Security at the latest version."""
        env = CompiledEnvironment(
            name=DEFAULT_ENVIRONMENT,
            mode=Action.ENFORCE,
            actions=MappingProxyType(dict.fromkeys(RULE_IDS, Action.ENFORCE)),
            allowed_registries=(),
            allowed_storage_prefixes=(),
            reachable=frozenset(),
        )
        return cls(
            detectors=DetectorSet(),
            environments=MappingProxyType({env.name: env}),
            default_environment=env.name,
            excluded_namespaces=frozenset(DEFAULT_EXCLUDED_NAMESPACES),
            environment_label=DEFAULT_ENVIRONMENT_LABEL,
            owner_label=DEFAULT_OWNER_LABEL,
            storage_owner=(),
        )

    @classmethod
    def from_spec(cls, spec: PolicySpec) -> CompiledPolicy:
        """The policy of ``spec``, its fingerprints unkeyed (see :meth:`keyed`)."""
        envs: dict[str, CompiledEnvironment] = {}
        for env in spec.environments:
            actions = {
                rule: env.rules.get(rule, spec.rules.get(rule, env.mode)) for rule in RULE_IDS
            }
            envs[env.name] = CompiledEnvironment(
                name=env.name,
                mode=env.mode,
                actions=MappingProxyType(actions),
                allowed_registries=tuple(env.allowed_registries),
                allowed_storage_prefixes=tuple(env.allowed_storage_prefixes),
                reachable=frozenset(env.reachable_environments),
                pod_security=PodSecurityProfile.from_spec(env.pod_security),
            )
        owners = sorted(
            ((p, e.name) for e in spec.environments for p in e.allowed_storage_prefixes),
            key=lambda pe: -len(pe[0]),
        )
        return cls(
            source=spec,
            detectors=DetectorSet(
                extra_credential_names=spec.detectors.extra_credential_names,
                allow_values=spec.detectors.allow_values,
            ),
            environments=MappingProxyType(envs),
            default_environment=spec.default_environment_name,
            excluded_namespaces=frozenset(spec.excluded_namespaces),
            environment_label=spec.environment_label,
            owner_label=spec.owner_label,
            storage_owner=tuple(owners),
        )


class PolicyKeyer:
    """Keys each compiled policy with one installation's fingerprint key, once per policy.

    The cluster state compiles a policy when it changes; a process holding a key asks for the
    keyed copy of whatever is in force and gets the same object until the policy changes.
    """

    __slots__ = ("_from", "_key", "_keyed")

    def __init__(self, key: FingerprintKey | None) -> None:
        self._key = key
        self._from: CompiledPolicy | None = None
        self._keyed: CompiledPolicy | None = None

    def __call__(self, policy: CompiledPolicy) -> CompiledPolicy:
        if self._key is None:
            return policy
        if policy is not self._from or self._keyed is None:
            self._keyed = policy.keyed(self._key)
            self._from = policy
        return self._keyed


@cache
def default_policy() -> CompiledPolicy:
    """The empty-spec policy, compiled once (it is immutable)."""
    return CompiledPolicy.builtin()


@cache
def _empty_spec() -> PolicySpec:
    from airlock.model import PolicySpec  # pydantic only when a spec is read

    return PolicySpec()


@record(frozen=True)
class EvalContext:
    """Everything besides the object that a verdict depends on.

    Immutable: build a new one to change anything.
    """

    policy: CompiledPolicy
    namespace_env: Mapping[str, str] = field(default_factory=dict)  # namespace -> env label value
    namespace_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # active exceptions by namespace (only ACTIVE ones: pending, expired and invalid waive nothing)
    exceptions: Mapping[str, tuple[ExceptionRecord, ...]] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    fallback_environment: str | None = None  # for namespaces the map does not know
    # namespaces known to have the isolation NetworkPolicy; None = not known (no finding)
    isolated_namespaces: frozenset[str] | None = None
    # ConfigMaps holding plaintext credentials: (namespace, name) -> data keys
    credential_configmaps: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    # image reference -> resolved "sha256:…" digest, for the pin-digests mutation (set by I/O)
    image_digests: Mapping[str, str] = field(default_factory=dict)
    # image reference -> what checking its signature found (set by I/O; absent = not checked)
    image_signatures: Mapping[str, SignatureCheck] = field(default_factory=dict)
    # what the cluster's RoleBindings, ClusterRoleBindings and ClusterRoles mean for workloads
    rbac: RbacFacts = EMPTY_FACTS

    @classmethod
    def build(
        cls,
        policy: PolicySpec | CompiledPolicy | None = None,
        *,
        namespace_env: Mapping[str, str] | None = None,
        namespace_labels: Mapping[str, Mapping[str, str]] | None = None,
        exceptions: Sequence[ExceptionRecord] = (),
        now: datetime | None = None,
        environment: str | None = None,
        isolated_namespaces: frozenset[str] | None = None,
        credential_configmaps: Mapping[tuple[str, str], frozenset[str]] | None = None,
        image_digests: Mapping[str, str] | None = None,
        image_signatures: Mapping[str, SignatureCheck] | None = None,
        fingerprint_key: FingerprintKey | None = None,
        bindings: Iterable[Binding] = (),
        cluster_roles: Mapping[str, RolePowers] | None = None,
    ) -> EvalContext:
        """``fingerprint_key`` keys the fingerprints of detected credentials (see
        :class:`~airlock.detectors.FingerprintKey`); None leaves the policy's as they are.
        ``bindings`` and ``cluster_roles`` (:mod:`airlock.rbac`) are read into the context's
        RBAC facts here, once, so no request walks the cluster's bindings."""
        if policy is None:
            compiled = default_policy()
        elif isinstance(policy, CompiledPolicy):
            compiled = policy
        else:
            compiled = CompiledPolicy.from_spec(policy)
        if fingerprint_key is not None:
            compiled = compiled.keyed(fingerprint_key)
        if environment is not None and environment not in compiled.environments:
            known = ", ".join(sorted(compiled.environments))
            raise PolicyError(
                f"environment {environment!r} is not declared by the policy (known: {known})",
                [("environment", f"unknown environment {environment!r}")],
            )
        moment = now or datetime.now(UTC)
        ns_env = dict(namespace_env or {})
        labels = {ns: dict(v) for ns, v in (namespace_labels or {}).items()}
        # namespace labels imply environments too, unless given explicitly
        for ns, lab in labels.items():
            value = lab.get(compiled.environment_label)
            if value and ns not in ns_env:
                ns_env[ns] = value
        active: dict[str, list[ExceptionRecord]] = {}
        if exceptions:
            from airlock.model import ExceptionState  # pydantic only when needed
        for rec in exceptions:
            if rec.state(moment, compiled.spec.exceptions) is ExceptionState.ACTIVE:
                active.setdefault(rec.namespace, []).append(rec)
        return cls(
            policy=compiled,
            namespace_env=ns_env,
            namespace_labels=labels,
            exceptions={ns: tuple(v) for ns, v in active.items()},
            now=moment,
            fallback_environment=environment,
            isolated_namespaces=isolated_namespaces,
            credential_configmaps=dict(credential_configmaps or {}),
            image_digests=dict(image_digests or {}),
            image_signatures=dict(image_signatures or {}),
        ).with_rbac(bindings, cluster_roles)

    def with_rbac(
        self, bindings: Iterable[Binding], cluster_roles: Mapping[str, RolePowers] | None = None
    ) -> EvalContext:
        """This context with the RBAC facts of ``bindings`` and ``cluster_roles``."""
        bindings = tuple(bindings)
        if not bindings and not cluster_roles:
            return self
        return replace(self, rbac=RbacFacts.build(self, bindings, cluster_roles or {}))

    # -- namespaces as RBAC subjects see them (airlock.rbac.Environments) -----------------------

    def subject_environment(self, namespace: str) -> CompiledEnvironment | None:
        """The environment of a namespace the context knows (labelled, or listed); None for an
        unknown namespace, whose environment would only be a guess."""
        if namespace in self.namespace_env or namespace in self.namespace_labels:
            return self.environment_of(namespace)
        return None

    def is_excluded(self, namespace: str | None) -> bool:
        return namespace is not None and namespace in self.policy.excluded_namespaces

    def environments(self) -> Iterator[CompiledEnvironment]:
        return iter(self.policy.environments.values())

    def environment_of(self, namespace: str | None) -> CompiledEnvironment:
        """The environment of a namespace: its label if declared, else the fallback or default."""
        envs = self.policy.environments
        if namespace is not None:
            label = self.namespace_env.get(namespace)
            if label is not None and label in envs:
                return envs[label]
        return envs[self.fallback_environment or self.policy.default_environment]

    def labels_of(self, namespace: str | None) -> Mapping[str, str]:
        if namespace is None:
            return _EMPTY
        return self.namespace_labels.get(namespace, _EMPTY)
