"""The policy model: ``BaselinePolicy`` and ``PolicyException`` specs, validated by pydantic.

Validation lives here so that the webhook (rejecting a bad policy at admission), the controller
(reporting it in status) and the CLI (``--policy FILE``) all say the same thing about the same
mistake, with the exact field path a user has to edit. Every pydantic ``ValidationError`` leaves
this module as a :class:`~airlock.errors.PolicyError` whose paths use the YAML (camelCase) names.

Models are frozen and built once per policy change, never per request: the engine compiles a
:class:`PolicySpec` into lookup tables. Each string type carries the JSON schema (pattern, bounds)
that the CRDs in ``manifests/crds`` repeat, so ``tests/unit/test_crds.py`` can check they agree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from airlock.catalog import (
    API_GROUP,
    API_VERSION,
    DEFAULT_ENVIRONMENT,
    DEFAULT_ENVIRONMENT_LABEL,
    DEFAULT_EXCLUDED_NAMESPACES,
    DEFAULT_OWNER_LABEL,
    RULE_IDS,
)
from airlock.compilecache import regex
from airlock.detectors import redact
from airlock.errors import PolicyError
from airlock.findings import Action

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "APPROVED_BY_ANNOTATION",
    "APPROVE_ANNOTATION",
    "CREATED_BY_ANNOTATION",
    "MAX_NESTING",
    "RULE_IDS",
    "DetectorSettings",
    "Environment",
    "ExceptionMatch",
    "ExceptionRecord",
    "ExceptionSettings",
    "ExceptionState",
    "ImageSignatures",
    "IsolationMode",
    "Mutations",
    "PodSecurity",
    "PolicyExceptionSpec",
    "PolicySpec",
    "Registry",
    "format_loc",
    "load_exception",
    "load_policy",
    "nested_deeper_than",
]


# Objects and lists nested deeper than this are refused (a policy, an exception, an admission
# request's object). A BaselinePolicy spec is at most six levels deep and the deepest Kubernetes
# objects (managedFields of a workflow with inline templates) a few dozen, while Python's
# recursion limit is 1,000 and orjson refuses to encode more than 254: a hundred is far from both.
MAX_NESTING: Final = 100

# Written by the mutating webhook, never trusted from the user: the webhook overwrites
# created-by with userInfo.username on CREATE, and sets approved-by to the requesting user on an
# UPDATE that adds ``airlock.dev/approve: "true"`` (then removes that request annotation).
CREATED_BY_ANNOTATION: Final = "airlock.dev/created-by"
APPROVED_BY_ANNOTATION: Final = "airlock.dev/approved-by"
APPROVE_ANNOTATION: Final = "airlock.dev/approve"

_RULE_ID_SET: Final = frozenset(RULE_IDS)

IsolationMode = Literal["enforce", "audit", "off"]

# Patterns are written once and used both to validate and in the JSON schema (and so the CRDs),
# in the common subset of Python ``re`` and Go RE2 that the API server evaluates.
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_KEY = rf"^({_DNS_SUBDOMAIN}/)?{_LABEL_NAME}$"
_LABEL_VALUE = rf"^({_LABEL_NAME})?$"
_REGISTRY_PREFIX = r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?(/\S*)?$"
_REGISTRY_HOST = r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?$"
_STORAGE_PREFIX = r"^[a-z][a-z0-9+.-]*://\S*$"
_CREDENTIAL_NAME = r"^[^\s=]+$"
_KIND = r"^[A-Z][A-Za-z0-9]*$"
_NAME_GLOB = r"^[-a-z0-9.*?\[\]!]+$"
_PSS_VERSION = r"^(latest|v1\.(0|[1-9][0-9]{0,2}))$"

_SIMPLE_KEY_RE = regex(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class _Checked:
    """Annotation for a ``str`` checked for length and pattern with one human message.

    Pydantic's own constraint messages quote the regular expression, which tells a user nothing;
    this keeps the pattern in the JSON schema (and so in the CRDs) and a sentence in the error.
    """

    pattern: str | None
    error: str
    message: str
    max_length: int
    min_length: int = 1

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        compiled = regex(self.pattern) if self.pattern is not None else None

        def check(value: str) -> str:
            if not self.min_length <= len(value) <= self.max_length or (
                compiled is not None and compiled.search(value) is None
            ):
                raise PydanticCustomError(self.error, self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out: dict[str, Any] = {
            "type": "string",
            "minLength": self.min_length,
            "maxLength": self.max_length,
        }
        if self.pattern is not None:
            out["pattern"] = self.pattern
        return out


DnsLabel = Annotated[
    str,
    _Checked(
        _DNS_LABEL,
        "dns_label",
        "must be a DNS label: at most 63 lowercase letters, digits and '-', "
        "starting and ending with a letter or digit",
        max_length=63,
    ),
]
LabelKey = Annotated[
    str,
    _Checked(
        _LABEL_KEY,
        "label_key",
        "must be a label key such as 'airlock.dev/owner' (optional DNS prefix and '/', "
        "then at most 63 letters, digits, '-', '_' or '.')",
        max_length=317,
    ),
]
LabelValue = Annotated[
    str,
    _Checked(
        _LABEL_VALUE,
        "label_value",
        "must be a label value: at most 63 letters, digits, '-', '_' or '.', "
        "starting and ending with a letter or digit",
        min_length=0,
        max_length=63,
    ),
]
RegistryPrefix = Annotated[
    str,
    _Checked(
        _REGISTRY_PREFIX,
        "registry_prefix",
        "must be a registry or repository prefix such as 'registry.corp.example/team/' "
        "(no scheme, no spaces)",
        max_length=512,
    ),
]
RegistryHost = Annotated[
    str,
    _Checked(
        _REGISTRY_HOST,
        "registry_host",
        "must be a registry host, with an optional port, such as 'registry.corp.example:5000' "
        "(no scheme, no path)",
        max_length=253,
    ),
]
StoragePrefix = Annotated[
    str,
    _Checked(
        _STORAGE_PREFIX,
        "storage_prefix",
        "must be a URI prefix with a scheme, such as 's3://models-prod/' or 'pvc://models'",
        max_length=1024,
    ),
]
CredentialName = Annotated[
    str,
    _Checked(
        _CREDENTIAL_NAME,
        "credential_name",
        "must be a variable name: no spaces and no '='",
        max_length=256,
    ),
]
KindName = Annotated[
    str,
    _Checked(
        _KIND,
        "kind_name",
        "must be a Kubernetes kind such as 'Deployment' or 'PyTorchJob'",
        max_length=63,
    ),
]
NameGlob = Annotated[
    str,
    _Checked(
        _NAME_GLOB,
        "name_glob",
        "must be an object name or a glob of one, such as 'trainer-*'",
        max_length=253,
    ),
]


def _check_rule_id(value: str) -> str:
    if value in _RULE_ID_SET:
        return value
    close = difflib.get_close_matches(value, RULE_IDS, n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    else:
        hint = "not in the rule catalog (`airlock explain` lists every rule)"
    raise PydanticCustomError(
        "unknown_rule",
        "unknown rule id '{rule}': {hint}",
        {
            "rule": value,
            "hint": hint,
        },
    )


RuleId = Annotated[
    str,
    AfterValidator(_check_rule_id),
    WithJsonSchema({"type": "string", "enum": list(RULE_IDS)}),
]
RuleOverrides = Annotated[dict[RuleId, Action], Field(max_length=len(RULE_IDS))]


def _check_regex(value: str) -> str:
    try:
        compiled = re.compile(value)  # a policy's: never cached (it may spell a token)
    except re.error as exc:
        raise PydanticCustomError(
            "invalid_regex", "invalid regular expression: {error}", {"error": str(exc)}
        ) from None
    if compiled.search("") is not None:
        raise PydanticCustomError(
            "regex_matches_everything",
            "pattern matches the empty string, so it would allow every value",
        )
    return value


AllowValuePattern = Annotated[
    str,
    AfterValidator(_check_regex),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 1024}),
]
OwnerText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253)]
ReasonText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=10, max_length=1024)
]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


PodSecurityVersion = Annotated[
    str,
    _Checked(
        _PSS_VERSION,
        "pod_security_version",
        "must be 'latest' or a Kubernetes minor version such as 'v1.30'",
        max_length=8,
    ),
]
PodSecurityLevel = Literal["baseline", "restricted"]


class PodSecurity(_Model):
    """Which Pod Security Standard an environment is judged by, like PSA's enforce labels.

    ``level: baseline`` turns the restricted-only controls off (``run-as-root``,
    ``privilege-escalation``, ``restricted-volume-types`` and the restricted halves of
    ``dangerous-capabilities``, ``seccomp-unconfined`` and ``proc-mount``). ``version`` pins the
    standard as it was in that Kubernetes minor release ('v1.24' judges as PSA 1.24 does); a
    version newer than the newest Airlock knows is judged as ``latest``, as PSA does.
    ``allowedHostPorts`` is the standard's optional "known list" of host ports (PSA has none).
    """

    level: PodSecurityLevel = "restricted"
    version: PodSecurityVersion = "latest"
    allowed_host_ports: Annotated[
        list[Annotated[int, Field(ge=1, le=65535)]], Field(max_length=256)
    ] = []


class Environment(_Model):
    """One environment (dev, staging, prod, …): its default mode and what it may use."""

    name: DnsLabel
    mode: Action = Action.ENFORCE
    allowed_registries: Annotated[list[RegistryPrefix], Field(max_length=256)] = []
    allowed_storage_prefixes: Annotated[list[StoragePrefix], Field(max_length=256)] = []
    reachable_environments: Annotated[list[DnsLabel], Field(max_length=32)] = []
    rules: RuleOverrides = {}
    pod_security: PodSecurity = PodSecurity()


class DetectorSettings(_Model):
    """Site-specific tuning of the credential detectors.

    ``allow_values`` are regular expressions searched in a candidate value (``re.search``); a
    pattern that matches the empty string is refused because it would silence every detector.
    """

    extra_credential_names: Annotated[list[CredentialName], Field(max_length=256)] = []
    allow_values: Annotated[list[AllowValuePattern], Field(max_length=256)] = []


class Mutations(_Model):
    """Which patches the mutating webhook may apply; each only fills what is unset."""

    secure_defaults: bool = True
    inherit_owner_label: bool = True
    # Off by default: it needs registry access from the webhook, which adds latency and a
    # dependency on the registry being up at admission time.
    pin_image_digests: bool = False


def _check_public_key(value: str) -> str:
    # cryptography only when a policy names keys: airlock scan with a plain policy stays fast
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    try:
        key = load_pem_public_key(value.strip().encode("ascii"))
    except (ValueError, UnicodeError):
        raise PydanticCustomError(
            "public_key", "must be a PEM public key ('-----BEGIN PUBLIC KEY-----', cosign.pub)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise PydanticCustomError(
            "public_key_type", "must be an ECDSA P-256 public key (as `cosign generate-key-pair`)"
        )
    return value


PublicKeyPem = Annotated[
    str,
    StringConstraints(min_length=1, max_length=4096),
    AfterValidator(_check_public_key),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 4096}),
]


def _check_ca_bundle(value: str) -> str:
    from cryptography.x509 import load_pem_x509_certificates  # noqa: PLC0415

    try:
        load_pem_x509_certificates(value.encode("ascii"))
    except (ValueError, UnicodeError):
        raise PydanticCustomError(
            "ca_bundle", "must be PEM certificates ('-----BEGIN CERTIFICATE-----')"
        ) from None
    return value


CaBundle = Annotated[
    str,
    StringConstraints(min_length=1, max_length=65536),
    AfterValidator(_check_ca_bundle),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 65536}),
]


class Registry(_Model):
    """How the webhook reaches one registry when it resolves tags and fetches signatures.

    ``mirrors`` are asked first, in order (as containerd's ``hosts.toml`` does), then ``host``;
    a digest is the same wherever the manifest comes from. ``insecure`` speaks plain HTTP (a
    registry on a trusted network without TLS). ``caBundle`` is PEM of the CAs that sign the
    registry's (and its mirrors') serving certificates, besides the system's.
    """

    host: RegistryHost
    mirrors: Annotated[list[RegistryHost], Field(max_length=8)] = []
    insecure: bool = False
    ca_bundle: CaBundle | None = None
    # well inside the webhook's own 5 s: a slow registry costs at most this, then the object
    # is admitted unpinned (with a warning)
    timeout_seconds: Annotated[float, Field(ge=0.1, le=4.0)] = 2.0


class ImageSignatures(_Model):
    """Images under ``prefix`` (a normalised reference prefix, as in ``allowedRegistries``)
    must carry a cosign signature by one of ``keys`` (PEM ECDSA P-256 public keys)."""

    prefix: RegistryPrefix
    keys: Annotated[list[PublicKeyPem], Field(min_length=1, max_length=16)]


class ExceptionSettings(_Model):
    """Limits on PolicyExceptions: how long one may run and whether a second person must approve."""

    max_days: Annotated[int, Field(ge=1, le=365)] = 90
    require_approval: bool = True


_DEFAULT_EXCLUDED = list(DEFAULT_EXCLUDED_NAMESPACES)


class PolicySpec(_Model):
    """The spec of a ``BaselinePolicy``. An empty spec is a useful policy: every rule enforced."""

    environment_label: LabelKey = DEFAULT_ENVIRONMENT_LABEL
    default_environment: DnsLabel | None = None
    excluded_namespaces: Annotated[list[DnsLabel], Field(max_length=256)] = _DEFAULT_EXCLUDED
    environments: Annotated[list[Environment], Field(min_length=1, max_length=32)] = [
        Environment(name=DEFAULT_ENVIRONMENT, mode=Action.ENFORCE)
    ]
    rules: RuleOverrides = {}
    detectors: DetectorSettings = DetectorSettings()
    mutations: Mutations = Mutations()
    owner_label: LabelKey = DEFAULT_OWNER_LABEL
    exceptions: ExceptionSettings = ExceptionSettings()
    isolation: IsolationMode = "audit"
    # Namespaces whose pods may always reach every environment (monitoring scrapers, ingress
    # controllers), so that enforcing isolation does not cut off the cluster's own plumbing.
    isolation_allowed_namespaces: Annotated[list[DnsLabel], Field(max_length=256)] = []
    # how the webhook reaches registries (mirrors, plain HTTP, private CAs, timeouts)
    registries: Annotated[list[Registry], Field(max_length=64)] = []
    # keys whose cosign signatures images under a prefix must carry (image-signature-unverified)
    image_signatures: Annotated[list[ImageSignatures], Field(max_length=64)] = []

    @model_validator(mode="after")
    def _check_references(self) -> PolicySpec:
        errors: list[InitErrorDetails] = []
        seen: dict[str, int] = {}
        for i, env in enumerate(self.environments):
            if env.name in seen:
                errors.append(
                    _error(
                        ("environments", i, "name"),
                        "duplicate_environment",
                        "environment '{name}' is already declared at environments[{first}]",
                        {"name": env.name, "first": seen[env.name]},
                        env.name,
                    )
                )
            else:
                seen[env.name] = i
        for i, env in enumerate(self.environments):
            for j, target in enumerate(env.reachable_environments):
                if target not in seen:
                    errors.append(
                        _unknown_env(("environments", i, "reachableEnvironments", j), target, seen)
                    )
        if self.default_environment is not None and self.default_environment not in seen:
            errors.append(_unknown_env(("defaultEnvironment",), self.default_environment, seen))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    @property
    def default_environment_name(self) -> str:
        """The environment of unlabelled namespaces: ``defaultEnvironment``, else the first one."""
        return self.default_environment or self.environments[0].name

    @cached_property
    def environments_by_name(self) -> Mapping[str, Environment]:
        return {env.name: env for env in self.environments}

    def environment(self, name: str) -> Environment | None:
        return self.environments_by_name.get(name)


def _error(
    loc: tuple[str | int, ...], kind: str, template: str, ctx: dict[str, Any], value: Any
) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError(kind, template, ctx), loc=loc, input=value, ctx=ctx
    )


def _unknown_env(
    loc: tuple[str | int, ...], name: str, declared: Mapping[str, int]
) -> InitErrorDetails:
    return _error(
        loc,
        "unknown_environment",
        "environment '{name}' is not declared (declared: {declared})",
        {"name": name, "declared": ", ".join(declared) or "none"},
        name,
    )


class ExceptionMatch(_Model):
    """Which workloads of the namespace an exception covers; an empty match covers them all.

    Every non-empty criterion must hold: the kind is one of ``kinds``, the name matches one of
    the ``names`` globs (``fnmatch``, case-sensitive), and every label in ``labels`` is equal.
    """

    kinds: Annotated[list[KindName], Field(max_length=64)] = []
    names: Annotated[list[NameGlob], Field(max_length=64)] = []
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=64)] = {}


class PolicyExceptionSpec(_Model):
    """The spec of a ``PolicyException``: which rules it waives, for whom, until when and why."""

    rules: Annotated[list[RuleId], Field(min_length=1, max_length=len(RULE_IDS))]
    match: ExceptionMatch = ExceptionMatch()
    expires: AwareDatetime
    owner: OwnerText
    reason: ReasonText

    @model_validator(mode="after")
    def _check_unique_rules(self) -> PolicyExceptionSpec:
        seen: set[str] = set()
        errors: list[InitErrorDetails] = []
        for i, rule in enumerate(self.rules):
            if rule in seen:
                errors.append(
                    _error(
                        ("rules", i),
                        "duplicate_rule",
                        "rule '{rule}' is listed twice",
                        {"rule": rule},
                        rule,
                    )
                )
            seen.add(rule)
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


def format_loc(loc: Sequence[str | int], prefix: str = "spec") -> str:
    """Render a pydantic ``loc`` the way a user reads the YAML: ``spec.environments[1].mode``.

    Map keys that are not plain words (label keys with dots and slashes) are bracketed and quoted
    so the path stays unambiguous: ``spec.match.labels["app.kubernetes.io/name"]``.
    """
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item == "[key]":
            continue
        elif _SIMPLE_KEY_RE.match(item):
            parts.append(f".{item}" if parts else item)
        else:
            parts.append(f'["{item}"]')
    return "".join(parts)


def _policy_error(what: str, exc: ValidationError, prefix: str) -> PolicyError:
    # paths and messages quote the object's keys and values: never a credential among them
    pairs = [(redact(format_loc(err["loc"], prefix)), redact(err["msg"])) for err in exc.errors()]
    detail = "; ".join(f"{path}: {msg}" for path, msg in pairs)
    return PolicyError(f"invalid {what}: {detail}", pairs)


def _unwrap(obj: Mapping[str, Any], kind: str) -> Any:
    """Return the spec of a full object, or ``obj`` itself when it is a bare spec."""
    if not isinstance(obj, Mapping):
        raise PolicyError(f"invalid {kind}: expected an object", [("spec", "expected an object")])
    if "apiVersion" not in obj and "kind" not in obj:
        return _drop_nulls(obj, kind)
    problems: list[tuple[str, str]] = []
    if obj.get("apiVersion") != API_VERSION:
        problems.append(("apiVersion", f"must be '{API_VERSION}'"))
    if obj.get("kind") != kind:
        problems.append(("kind", f"must be '{kind}'"))
    if problems:
        detail = "; ".join(f"{path}: {msg}" for path, msg in problems)
        raise PolicyError(f"invalid {kind}: {detail}", problems)
    spec = obj.get("spec")
    return {} if spec is None else _drop_nulls(spec, kind)


def nested_deeper_than(value: object, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` holds objects or lists nested more than ``limit`` levels deep.

    ``{}`` and ``[]`` are one level, a scalar none. Iterative, and it stops at the first node
    past the limit, so a hostile document costs at most one walk of ``limit`` levels.
    """
    if not isinstance(value, Mapping | list):
        return False
    if limit < 1:
        return True
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, Mapping) else node:
            if isinstance(child, Mapping | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _drop_nulls(value: Any, kind: str) -> Any:
    """Remove ``null`` fields from objects, as the API server does for non-nullable fields.

    ``match:`` with every line commented out is ``null`` in YAML; the cluster stores it as absent,
    so the model must read it as absent too, or a file and the stored object would disagree.

    Iterative, so no input can exhaust the stack: a spec nested deeper than
    :data:`MAX_NESTING` levels is refused with a :class:`PolicyError` saying so.
    """
    if not isinstance(value, Mapping | list):
        return value
    root: dict[Any, Any] | list[Any] = {} if isinstance(value, Mapping) else []
    stack: list[tuple[Any, dict[Any, Any] | list[Any], int]] = [(value, root, 1)]
    while stack:
        source, copy, depth = stack.pop()
        if depth > MAX_NESTING:
            message = f"nested deeper than {MAX_NESTING} levels"
            raise PolicyError(f"invalid {kind}: spec: {message}", [("spec", message)])
        pairs = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, child in pairs:
            if child is None and isinstance(copy, dict):
                continue
            new: Any = child
            if isinstance(child, Mapping | list):
                new = {} if isinstance(child, Mapping) else []
                stack.append((child, new, depth + 1))
            if isinstance(copy, dict):
                copy[key] = new
            else:
                copy.append(new)
    return root


def load_policy(obj: Mapping[str, Any]) -> PolicySpec:
    """Validate a ``BaselinePolicy`` object, or a bare spec, into a :class:`PolicySpec`.

    Raises :class:`PolicyError` listing every problem with its ``spec.…`` path. Only the YAML
    (camelCase) names are accepted here: the API server would prune a snake_case field, so
    accepting it would make the file and the cluster disagree.
    """
    spec = _unwrap(obj, "BaselinePolicy")
    try:
        return PolicySpec.model_validate(spec, by_name=False)
    except ValidationError as exc:
        raise _policy_error("BaselinePolicy", exc, "spec") from None


def load_exception(obj: Mapping[str, Any]) -> PolicyExceptionSpec:
    """Validate a ``PolicyException`` object, or a bare spec, into its spec model."""
    spec = _unwrap(obj, "PolicyException")
    try:
        return PolicyExceptionSpec.model_validate(spec, by_name=False)
    except ValidationError as exc:
        raise _policy_error("PolicyException", exc, "spec") from None


class ExceptionState(StrEnum):
    ACTIVE = "Active"
    PENDING = "PendingApproval"
    EXPIRED = "Expired"
    INVALID = "Invalid"


@dataclass(frozen=True, slots=True)
class ExceptionRecord:
    """A PolicyException as the webhook, the audit and the CLI see it at run time.

    ``created_by`` and ``approved_by`` come from the annotations ``airlock.dev/created-by`` and
    ``airlock.dev/approved-by``, which only Airlock's mutating webhook writes (from the request's
    ``userInfo.username``). A record whose creator is unknown cannot prove the four-eyes rule and
    stays pending while approval is required.
    """

    namespace: str
    name: str
    spec: PolicyExceptionSpec
    created_by: str | None = None
    approved_by: str | None = None
    created_at: datetime | None = None

    @property
    def key(self) -> str:
        """``namespace/name``: what :attr:`Finding.exempted_by` holds."""
        return f"{self.namespace}/{self.name}"

    def status(self, now: datetime, settings: ExceptionSettings) -> tuple[ExceptionState, str]:
        """The state and a one-line explanation for ``status.message`` and ``airlock explain``.

        The window is measured from creation, so editing ``expires`` later cannot stretch it past
        the policy's ``maxDays``; without a creation time (a file given to the CLI) it is
        measured from ``now``.
        """
        expires = self.spec.expires
        if now >= expires:
            return ExceptionState.EXPIRED, f"expired at {expires.isoformat()}"
        start = self.created_at if self.created_at is not None else now
        if expires - start > timedelta(days=settings.max_days):
            return (
                ExceptionState.INVALID,
                f"expires more than {settings.max_days} days after creation "
                "(the policy's exceptions.maxDays)",
            )
        if settings.require_approval:
            if self.created_by is None:
                return ExceptionState.PENDING, "creator unknown: approval cannot be verified"
            if self.approved_by is None:
                return (
                    ExceptionState.PENDING,
                    f"waiting for approval by someone other than {self.created_by} "
                    f"(annotate {APPROVE_ANNOTATION}=true)",
                )
            if self.approved_by == self.created_by:
                return ExceptionState.PENDING, "approved by its own creator; needs a second person"
        return ExceptionState.ACTIVE, f"active until {expires.isoformat()}"

    def state(self, now: datetime, settings: ExceptionSettings) -> ExceptionState:
        return self.status(now, settings)[0]

    def matches(self, kind: str, name: str, labels: Mapping[str, str]) -> bool:
        match = self.spec.match
        if match.kinds and kind not in match.kinds:
            return False
        if match.names and not any(fnmatchcase(name, glob) for glob in match.names):
            return False
        return all(labels.get(key) == value for key, value in match.labels.items())

    def waives(self, rule: str) -> bool:
        return rule in self.spec.rules

    @classmethod
    def from_object(
        cls, obj: Mapping[str, Any], *, namespace: str | None = None
    ) -> ExceptionRecord:
        """Build a record from a PolicyException object (as the API server or a file has it).

        ``namespace`` is used when ``metadata.namespace`` is absent (a manifest file). Raises
        :class:`PolicyError` when the spec is invalid or the object has no name or namespace.
        """
        spec = load_exception(obj)
        meta = obj.get("metadata") or {}
        if not isinstance(meta, Mapping):
            raise PolicyError(
                "invalid PolicyException: metadata must be an object",
                [("metadata", "must be an object")],
            )
        problems: list[tuple[str, str]] = []
        name = _text(meta.get("name"))
        ns = _text(meta.get("namespace")) or namespace
        if not name:
            problems.append(("metadata.name", "is required"))
        if not ns:
            problems.append(("metadata.namespace", "is required"))
        created_at = _parse_timestamp(meta.get("creationTimestamp"), problems)
        annotations = meta.get("annotations") or {}
        if not isinstance(annotations, Mapping):
            problems.append(("metadata.annotations", "must be an object"))
            annotations = {}
        if problems or not name or not ns:
            detail = "; ".join(f"{path}: {msg}" for path, msg in problems)
            raise PolicyError(f"invalid PolicyException: {detail}", problems)
        return cls(
            namespace=ns,
            name=name,
            spec=spec,
            created_by=_text(annotations.get(CREATED_BY_ANNOTATION)),
            approved_by=_text(annotations.get(APPROVED_BY_ANNOTATION)),
            created_at=created_at,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _parse_timestamp(value: Any, problems: list[tuple[str, str]]) -> datetime | None:
    if value is None:
        return None
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        problems.append(("metadata.creationTimestamp", "must be an RFC 3339 time with a zone"))
        return None
    return parsed
