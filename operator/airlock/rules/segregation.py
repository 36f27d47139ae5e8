"""Environment segregation: a workload talks to, schedules on and loads from its own environment."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from typing import Any, Generic, TypeVar

from airlock.compilecache import regex
from airlock.detectors import DetectorSet
from airlock.findings import RuleInfo, Severity
from airlock.rbac import RBAC_KINDS, cross_env_subjects, read_binding
from airlock.rules.base import (
    EnvText,
    Hit,
    Rule,
    Scope,
    containers,
    data_path,
    mapping,
    sequence,
    service_accounts,
)
from airlock.state import CompiledEnvironment, EvalContext
from airlock.wordsearch import WordSearch
from airlock.workloads import ContainerView, Workload

_R = TypeVar("_R")

_SEG_REFS = ("NIST SP 800-190 4.3.3", "NSA/CISA Kubernetes Hardening: network separation")

CROSS_ENV_SERVICE_REFERENCE = RuleInfo(
    id="cross-env-service-reference",
    family="segregation",
    severity=Severity.HIGH,
    title="Reference to another environment's Service",
    reason="the workload names a Service in a namespace of another environment",
    fix="talk to the Service of your own environment (or declare the environment reachable)",
    rationale=(
        "Dev and staging code must not read or write production data or models: a test run that "
        "writes to a prod feature store or model registry is an incident."
    ),
    references=_SEG_REFS,
)

CROSS_ENV_NODE_POOL = RuleInfo(
    id="cross-env-node-pool",
    family="segregation",
    severity=Severity.HIGH,
    title="Scheduling onto another environment's nodes",
    reason="nodeSelector, node affinity or tolerations aim at another environment's node pool",
    fix="select and tolerate only your own environment's node pool",
    rationale=(
        "Node pools per environment keep untrusted dev code off the nodes (and GPUs, and local "
        "caches) that hold production models and credentials."
    ),
    references=("CIS 5.7.2", *_SEG_REFS),
)

CROSS_ENV_MODEL_SOURCE = RuleInfo(
    id="cross-env-model-source",
    family="segregation",
    severity=Severity.HIGH,
    title="Model or data loaded from outside the environment's stores",
    reason="a model or data URI lies outside the environment's allowed storage prefixes",
    fix="load models and data from your environment's store (see allowedStoragePrefixes)",
    rationale=(
        "Production models must come from the production registry after promotion; dev jobs "
        "must not read production data. Storage prefixes make that boundary checkable."
    ),
    references=_SEG_REFS,
)

NAMESPACE_ENVIRONMENT_MISSING = RuleInfo(
    id="namespace-environment-missing",
    family="segregation",
    severity=Severity.LOW,
    title="Namespace without an environment label",
    reason="the workload's namespace has no environment label, so the default environment applies",
    fix="label the namespace: kubectl label namespace <ns> airlock.dev/environment=<env>",
    rationale=(
        "Every segregation rule depends on knowing a namespace's environment; unlabelled "
        "namespaces silently fall back to the default."
    ),
    references=_SEG_REFS,
)

NETWORK_ISOLATION_MISSING = RuleInfo(
    id="network-isolation-missing",
    family="segregation",
    severity=Severity.MEDIUM,
    title="Namespace not network-isolated from other environments",
    reason="the namespace has no airlock-environment-isolation NetworkPolicy",
    fix="set isolation: enforce in the policy so the controller creates it, or create it yourself",
    rationale=(
        "Without a NetworkPolicy every pod can reach every other environment's Services, whatever "
        "the configuration says."
    ),
    references=("CIS 5.3.2", *_SEG_REFS),
)

CROSS_ENV_RBAC_BINDING = RuleInfo(
    id="cross-env-rbac-binding",
    family="segregation",
    severity=Severity.HIGH,
    title="RBAC binding across environments",
    reason=(
        "a RoleBinding grants a ServiceAccount of another environment access, or a "
        "ClusterRoleBinding gives ServiceAccounts of several environments the same access"
    ),
    fix=(
        "bind only ServiceAccounts of the binding's own environment (one ClusterRoleBinding per "
        "environment), or declare the environment reachable"
    ),
    rationale=(
        "RBAC is the widest door between environments: a RoleBinding in a prod namespace whose "
        "subject is a dev ServiceAccount lets every dev pod running as it act in prod, whatever "
        "the network, node and storage boundaries say. Workloads running as such an account "
        "are reported too, so the developer sees it."
    ),
    references=(
        "CIS 5.1.1",
        "CIS 5.1.5",
        "NSA/CISA Kubernetes Hardening: authorization",
        *_SEG_REFS,
    ),
)

# Candidate host names are the dotted runs of DNS label characters (a-z, 0-9, '-', '.'),
# validated in code. The runs are cut with str.translate and str.split, at C speed: a regex
# trying every position of every env value cost twice as much.
_NOT_HOST = str.maketrans(
    {chr(c): chr(c) if re.match(r"[a-z0-9.-]", chr(c)) else " " for c in range(128)}
)  # every ASCII character in the table: str.translate's fast path


def _host_tokens(low: str) -> Iterator[tuple[int, str]]:
    """``(offset, run)`` of each run of host characters in lower-case ``low`` that holds a dot
    with a character after it, without its leading dots (``a.b``, ``svc.ns.svc``)."""
    if not low.isascii():  # one "?" (not a host character) for each other character
        low = low.encode("ascii", "replace").decode("ascii")
    at = 0
    for run in [r for r in low.translate(_NOT_HOST).split() if "." in r]:
        token = run.lstrip(".")
        dot = token.find(".")
        if 0 <= dot < len(token) - 1:
            at = low.find(token, at)  # runs come in order: past the last one found
            yield at, token
            at += len(token)


# In a word, everything up to its last "@" is userinfo or an e-mail's local part, never a host
# (the same rule as _redact_uri): a password "xq.ml-prod" must not be quoted as a Service name.
_BEFORE_AT = regex(r"(?<!\S)\S*@")


def _without_userinfo(low: str) -> str:
    """``low`` with what :data:`_BEFORE_AT` finds blanked (spaces: every offset stays)."""
    if "@" not in low:
        return low
    return _BEFORE_AT.sub(lambda m: " " * len(m.group()), low)


class _HashMemo(Generic[_R]):
    """The parse of a container's env values (an :class:`EnvText`) remembered by the text's
    hash, not the text: a value may be a credential that nobody reported. The hash is Python's
    own (SipHash, keyed per process, computed once per string): 64 bits, for at most ``size``
    entries (emptied when full), where a BLAKE2b digest cost a sixth of the rule on a Pod whose
    values are all new. Like a digest, it confirms a guessed value to whoever reads memory."""

    __slots__ = ("_found", "_parse", "_size", "hits")

    def __init__(self, parse: Callable[[str], _R], size: int) -> None:
        self._parse = parse
        self._size = size
        self._found: dict[int, _R] = {}
        self.hits = 0

    def __call__(self, env: EnvText) -> _R:
        key = hash(env.text)
        found = self._found.get(key)
        if found is None:
            found = self._parse(env.text)
            if len(self._found) >= self._size:
                self._found.clear()
            self._found[key] = found
        else:
            self.hits += 1
        return found


# Single values (args, ConfigMap values) up to this length have their parse remembered, keyed
# by the value (scripts and certificates are longer). Values with userinfo (`user:password@`)
# never are. A value holding a dot or "://" is a key as it is: a JWT in an argument stays in
# memory while cached (never in output).
_MEMO_MAX_LEN = 512
_STORAGE_SCHEMES = frozenset(
    {"s3", "s3a", "gs", "gcs", "hf", "az", "abfs", "abfss", "wasb", "wasbs", "pvc", "oci", "hdfs",
     "webhdfs", "minio"}
)  # fmt: skip
# "://" found as a literal, then the scheme read backwards by one lookbehind per scheme length
# (a lookbehind is of fixed width), each scheme a whole alphanumeric run; the rest of the URI is a
# lookahead, so a "://" inside it is found again ("s3://a/gs://b" holds two URIs).
_SCHEMES_BY_LENGTH = sorted(
    {
        len(s): sorted(x for x in _STORAGE_SCHEMES if len(x) == len(s)) for s in _STORAGE_SCHEMES
    }.items()
)
_STORAGE_URI = regex(
    "://(?:"
    + "|".join(
        f"(?<=(?<![A-Za-z0-9])(?ai:({'|'.join(group)}))://)" for _n, group in _SCHEMES_BY_LENGTH
    )
    + ")(?=([^\\s\"',;]+))"
)
_REST = _STORAGE_URI.groups  # the group of the URI's rest; the ones before hold the scheme


def storage_uris(text: str) -> tuple[tuple[str, int], ...]:
    """``(uri, offset)`` of every storage URI (``s3://``, ``gs://``, ``hf://``, ``pvc://`` …).

    Searches for ``://`` as a literal and reads the scheme behind it: far cheaper than a regex
    trying every position of every env value, and this runs on the admission hot path.
    """
    if "://" not in text:
        return ()
    if len(text) <= _MEMO_MAX_LEN and "@" not in text:
        return _storage_uris(text)
    return _find_storage_uris(text)


def _find_storage_uris(text: str) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for m in _STORAGE_URI.finditer(text):
        start = m.start() - len(next(filter(None, m.groups())))  # the scheme's group
        found.append((text[start : m.end(_REST)], start))
    return tuple(found)


_storage_uris = lru_cache(maxsize=8192)(_find_storage_uris)


def env_storage_uris(env: EnvText, c: ContainerView, scope: Scope) -> tuple[tuple[str, int], ...]:
    """:func:`storage_uris` of ``c``'s env values, remembered as :func:`_env_memo` says."""
    if _env_memo(env, c, scope):
        return _env_storage_uris(env)
    return _find_storage_uris(env.text)


# A container's env list recurs in every Pod of its controller: the parse of its joined values
# is remembered (by hash) when the credentials rule found the list clean and no value holds
# userinfo, so no result kept holds a credential that was reported or sat in a URL.
_ENV_MEMO_MAX_LEN = 8192
_env_storage_uris = _HashMemo(_find_storage_uris, 1024)


def _env_memo(env: EnvText, c: ContainerView, scope: Scope) -> bool:
    """Whether the parse of ``env``'s text may be remembered: short enough, no userinfo, and
    its values found clean by the credentials rule (which runs first) in this evaluation."""
    text = env.text
    return len(text) <= _ENV_MEMO_MAX_LEN and "@" not in text and id(c.container) in scope.clean_env


def service_namespaces(text: str) -> tuple[tuple[str, str], ...]:
    """``(host, namespace)`` for every Service DNS name in ``text``.

    Recognised forms: ``svc.ns``, ``svc.ns.svc`` and ``svc.ns.svc.<cluster domain>`` (and pods
    behind headless Services, ``pod.svc.ns.svc…``), also inside URLs with schemes, credentials,
    ports and paths. The two-label form is ambiguous with ordinary host names; callers only act
    on namespaces they know.
    """
    if "." not in text:
        return ()
    if len(text) <= _MEMO_MAX_LEN and "@" not in text:
        return _service_namespaces(text)
    return _parse_service_names(text)


def _parse_service_names(text: str) -> tuple[tuple[str, str], ...]:
    found = (_namespace_of(token) for _at, token in _host_tokens(_without_userinfo(text.lower())))
    return tuple(f for f in found if f is not None)


# Values repeat across the Pods of a controller and across replica types: the parse of a
# value is independent of the policy, so it is remembered (bounded, least recently used).
_service_namespaces = lru_cache(maxsize=8192)(_parse_service_names)


def env_service_names(
    env: EnvText, c: ContainerView, scope: Scope
) -> tuple[tuple[int, str, str], ...]:
    """``(offset, host, namespace)`` of every Service DNS name in ``c``'s env values, as
    :func:`service_namespaces` finds them; remembered as :func:`_env_memo` says."""
    if _env_memo(env, c, scope):
        return _env_service_names(env)
    return _find_env_service_names(env.text)


def _find_env_service_names(text: str) -> tuple[tuple[int, str, str], ...]:
    if text.isascii():  # lower-casing keeps every offset
        return _names_at(text.lower(), 0)
    # lower-casing may change lengths (İ): each line on its own, its names at its first offset
    found: list[tuple[int, str, str]] = []
    at = 0
    for line in text.split("\n"):
        found += ((at, host, ns) for _at, host, ns in _names_at(line.lower(), 0))
        at += len(line) + 1
    return tuple(found)


def _names_at(low: str, at: int) -> tuple[tuple[int, str, str], ...]:
    found: list[tuple[int, str, str]] = []
    for offset, token in _host_tokens(_without_userinfo(low)):
        f = _namespace_of(token)
        if f is not None:
            found.append((at + offset, *f))
    return tuple(found)


_env_service_names = _HashMemo(_find_env_service_names, 1024)


def _namespace_of(token: str) -> tuple[str, str] | None:
    """``(host, namespace)`` when a dotted token has the shape of a Service DNS name."""
    host = token.strip(".-")
    parts = host.split(".")
    if "" in parts:
        return None
    if len(parts) == 2:
        return host, parts[1]
    if "svc" in parts[2:]:
        # svc.ns.svc[.domain], or a pod behind a headless Service: host.svc.ns.svc[.domain]
        return host, parts[parts.index("svc", 2) - 1]
    return None


def _foreign_hosts(value: str, scope: Scope) -> Iterator[tuple[str, str, str]]:
    """``(host, namespace, environment)`` of each Service name in another environment."""
    for host, ns in service_namespaces(value):
        target = _foreign(ns, scope)
        if target is not None:
            yield host, ns, target


def _foreign(ns: str, scope: Scope) -> str | None:
    """The other environment a namespace belongs to, if the scope may not reach it."""
    target = scope.ctx.namespace_env.get(ns)
    if target is None or target == scope.env.name or target in scope.env.reachable:
        return None
    return target


def _reference_message(host: str, ns: str, target: str, scope: Scope) -> str:
    return (
        f"references Service {host} in namespace {ns} of environment {target} "
        f"from environment {scope.env.name}"
    )


class _ForeignFinder:
    """Whether a text may name a Service in a namespace of another environment: it must hold
    ``.<namespace>`` (every form of :func:`service_namespaces` has a dot before the namespace).
    One automaton walk over a container's env values instead of their parse, which finds the
    same nothing in almost every workload."""

    __slots__ = ("_words",)

    def __init__(self, namespaces: Iterable[str]) -> None:
        # host names are ASCII (the parse reads [a-z0-9.-] only): no other namespace is named
        self._words = WordSearch({"." + ns.lower() for ns in namespaces if ns.isascii()})

    def may_name(self, text: str) -> bool:
        return "." in text and self._words.any_in(text.lower())


# (id of namespace_env, environment name) -> (namespace_env, environment, finder or None). An
# EvalContext is immutable (its namespace map is never changed in place), and the request path
# meets few of them. Each entry holds its map, so the map's id cannot be reused while cached.
_FINDERS: dict[
    tuple[int, str], tuple[Mapping[str, str], CompiledEnvironment, _ForeignFinder | None]
] = {}
_FINDERS_MAX = 16


def _foreign_finder(scope: Scope) -> _ForeignFinder | None:
    """The finder of the namespaces ``scope`` may not reach; None when there are none."""
    ns_env, env = scope.ctx.namespace_env, scope.env
    key = (id(ns_env), env.name)
    found = _FINDERS.get(key)
    if found is not None and found[0] is ns_env and found[1] is env:
        return found[2]
    foreign = [ns for ns in ns_env if _foreign(ns, scope) is not None]
    finder: _ForeignFinder | None = _ForeignFinder(foreign) if foreign else None
    if len(_FINDERS) >= _FINDERS_MAX:
        _FINDERS.clear()
    _FINDERS[key] = (ns_env, env, finder)  # held: the id stays this map's while cached
    return finder


def service_hits(path: str, text: str, scope: Scope) -> Iterator[Hit]:
    if "." in text:
        for host, ns, target in _foreign_hosts(text, scope):
            yield Hit(path, _reference_message(host, ns, target, scope))


def check_service_reference(wl: Workload, scope: Scope) -> Iterator[Hit]:
    if not scope.ctx.namespace_env:
        return
    if wl.kind == "ConfigMap" and wl.api_version == "v1":
        for key, value in mapping(wl.obj.get("data")).items():
            if isinstance(value, str):
                yield from service_hits(data_path(key), value, scope)
        return
    finder = _foreign_finder(scope)
    if finder is None:
        return  # no namespace of another environment to name
    said: dict[tuple[str, str], str | None] = {}  # a name recurs in every container of a pod
    for _pod, c in containers(wl):
        env = scope.env_text(c)  # all values in one parse
        if finder.may_name(env.text):
            for at, host, ns in env_service_names(env, c, scope):
                message = said.get((host, ns), "")
                if message == "":
                    target = _foreign(ns, scope)
                    message = said[host, ns] = (
                        None if target is None else _reference_message(host, ns, target, scope)
                    )
                if message is not None:
                    yield Hit(f"{c.path}.env[{env.entry_at(at)[0]}].value", message)
        for field in ("command", "args"):
            for i, arg in enumerate(sequence(c.container.get(field))):
                if isinstance(arg, str) and "." in arg:
                    for host, ns, target in _foreign_hosts(arg, scope):
                        path = f"{c.path}.{field}[{i}]"
                        yield Hit(path, _reference_message(host, ns, target, scope))


def _expression_hits(path: str, expressions: Any, label: str, scope: Scope) -> Iterator[Hit]:
    for j, expr in enumerate(sequence(expressions)):
        e = mapping(expr)
        if e.get("key") != label:
            continue
        op = e.get("operator")
        values = [v for v in sequence(e.get("values")) if isinstance(v, str)]
        here = f"{path}.matchExpressions[{j}]"
        own = scope.env.name
        if op == "In" and any(v != own for v in values):
            others = sorted(v for v in values if v != own)
            yield Hit(here, f"node affinity selects environment {', '.join(others)} (own: {own})")
        elif op == "NotIn" and own in values:
            yield Hit(here, f"node affinity excludes the own environment {own}")
        elif op == "Exists":
            yield Hit(here, f"node affinity accepts every environment's nodes (own: {own})")


def check_node_pool(wl: Workload, scope: Scope) -> Iterator[Hit]:
    label = scope.ctx.policy.environment_label
    own = scope.env.name
    for pod in wl.pod_specs:
        spec = pod.spec
        selected = mapping(spec.get("nodeSelector")).get(label)
        if isinstance(selected, str) and selected != own:
            yield Hit(
                f"{pod.path}.nodeSelector",
                f"nodeSelector {label}={selected} targets another environment's nodes (own: {own})",
            )
        node_aff = mapping(mapping(spec.get("affinity")).get("nodeAffinity"))
        req = mapping(node_aff.get("requiredDuringSchedulingIgnoredDuringExecution"))
        base = f"{pod.path}.affinity.nodeAffinity"
        for i, term in enumerate(sequence(req.get("nodeSelectorTerms"))):
            yield from _expression_hits(
                f"{base}.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]",
                mapping(term).get("matchExpressions"),
                label,
                scope,
            )
        pref = sequence(node_aff.get("preferredDuringSchedulingIgnoredDuringExecution"))
        for i, weighted in enumerate(pref):
            yield from _expression_hits(
                f"{base}.preferredDuringSchedulingIgnoredDuringExecution[{i}].preference",
                mapping(mapping(weighted).get("preference")).get("matchExpressions"),
                label,
                scope,
            )
        for i, tol in enumerate(sequence(spec.get("tolerations"))):
            t = mapping(tol)
            key, op, value = t.get("key"), t.get("operator", "Equal"), t.get("value")
            here = f"{pod.path}.tolerations[{i}]"
            if key == label and op == "Exists":
                yield Hit(here, f"tolerates every environment's node taint {label} (own: {own})")
            elif key == label and isinstance(value, str) and value != own:
                yield Hit(here, f"tolerates environment {value}'s node taint (own: {own})")
            elif not key and op == "Exists":
                yield Hit(here, "tolerates every taint, including other environments' node pools")


def _uri_problem(uri: str, scope: Scope) -> str | None:
    own = scope.env.allowed_storage_prefixes
    if uri.startswith(own):  # any of them (none when empty)
        return None
    owner = next((env for p, env in scope.ctx.policy.storage_owner if uri.startswith(p)), None)
    if owner is not None and owner != scope.env.name:
        return f"belongs to environment {owner}'s store (own: {scope.env.name})"
    if own:
        return f"is outside environment {scope.env.name}'s allowed storage prefixes"
    return None


def _redact_uri(uri: str, scope: Scope) -> str:
    """``uri`` as a message quotes it: without userinfo, query and fragment (where credentials
    and signed tokens go), and with any host or path segment that could be a credential (a
    webhook's token, a key in a path) shown as ``…``. Everything up to the last ``@`` goes with
    the userinfo: a password may hold a ``/``."""
    scheme, sep, rest = uri.partition("://")
    if not sep:  # "s3:bucket/key": no authority
        scheme, rest = "", uri
    # userinfo first: a password may hold "?", "#" or "/" (a message may then name less)
    rest = rest.rpartition("@")[2].split("#", 1)[0].split("?", 1)[0]
    return scheme + sep + _shown_path(rest, scope.ctx.policy.detectors)


@lru_cache(maxsize=4096)  # the same URIs recur in every replica's review (keys: no userinfo)
def _shown_path(rest: str, detectors: DetectorSet) -> str:
    suspect = detectors.could_be_credential
    return "/".join("…" if part and suspect(part) else part for part in rest.split("/"))


def check_model_source(wl: Workload, scope: Scope) -> Iterator[Hit]:
    if not scope.ctx.policy.storage_owner:
        return
    for ref in wl.storage_uris:
        problem = _uri_problem(ref.value, scope)
        if problem:
            yield Hit(ref.path, f"{ref.what} {_redact_uri(ref.value, scope)} {problem}")
    said: dict[str, str | None] = {}  # a URI recurs in every container of a pod
    for _pod, c in containers(wl):
        env = scope.env_text(c)  # all values in one search
        if "://" in env.text:
            for uri, at in env_storage_uris(env, c, scope):
                told = said.get(uri, "")
                if told == "":
                    problem = _uri_problem(uri, scope)
                    told = said[uri] = problem and f"{_redact_uri(uri, scope)} {problem}"
                if told:
                    i, name, _value = env.entry_at(at)
                    yield Hit(f"{c.path}.env[{i}].value", f"env {name}: {told}")
        for field in ("command", "args"):
            for i, arg in enumerate(sequence(c.container.get(field))):
                if isinstance(arg, str) and "://" in arg:
                    for uri, _at in storage_uris(arg):
                        problem = _uri_problem(uri, scope)
                        if problem:
                            yield Hit(
                                f"{c.path}.{field}[{i}]", f"{_redact_uri(uri, scope)} {problem}"
                            )


def _namespace_known_unlabelled(ctx: EvalContext, ns: str | None) -> bool:
    return ns is not None and ns in ctx.namespace_labels and ns not in ctx.namespace_env


def check_namespace_environment(wl: Workload, scope: Scope) -> Iterator[Hit]:
    # about the namespace's workloads: a RoleBinding there is the admin's, not a workload
    if wl.kind in RBAC_KINDS:
        return
    if _namespace_known_unlabelled(scope.ctx, scope.namespace):
        yield Hit(
            "metadata.namespace",
            f"namespace {scope.namespace} has no {scope.ctx.policy.environment_label} label; "
            f"environment {scope.env.name} applies by default",
        )


def check_network_isolation(wl: Workload, scope: Scope) -> Iterator[Hit]:
    ctx, ns = scope.ctx, scope.namespace
    isolated = ctx.isolated_namespaces
    if (
        isolated is None
        or ns is None
        or wl.kind in RBAC_KINDS
        or ctx.policy.spec.isolation == "off"
    ):
        return
    if ns in ctx.namespace_env and ns not in isolated:
        yield Hit(
            "metadata.namespace",
            f"namespace {ns} has no airlock-environment-isolation NetworkPolicy",
        )


def check_rbac_binding(wl: Workload, scope: Scope) -> Iterator[Hit]:
    binding = read_binding(wl.obj) if wl.kind.endswith("RoleBinding") else None
    if binding is not None:
        for subject, message, _clause in cross_env_subjects(binding, scope.ctx):
            if message:
                yield Hit(f"subjects[{subject.index}]", message)
        return
    facts = scope.ctx.rbac.cross_env
    ns = scope.namespace
    if not facts or ns is None or not wl.pod_specs:
        return
    for path, account in service_accounts(wl):
        for clause in facts.of(ns, account):
            yield Hit(path, f"runs as ServiceAccount {ns}/{account}, which {clause}")


RULES = (
    Rule(CROSS_ENV_SERVICE_REFERENCE, check_service_reference),
    Rule(CROSS_ENV_NODE_POOL, check_node_pool),
    Rule(CROSS_ENV_MODEL_SOURCE, check_model_source),
    Rule(NAMESPACE_ENVIRONMENT_MISSING, check_namespace_environment),
    Rule(NETWORK_ISOLATION_MISSING, check_network_isolation),
    Rule(CROSS_ENV_RBAC_BINDING, check_rbac_binding),
)
