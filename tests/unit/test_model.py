"""The policy model: defaults, each validation error with its exact path, exceptions at run time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest
from airlock import model
from airlock.errors import PolicyError
from airlock.findings import Action
from airlock.model import (
    MAX_NESTING,
    RULE_IDS,
    DetectorSettings,
    Environment,
    ExceptionMatch,
    ExceptionRecord,
    ExceptionSettings,
    ExceptionState,
    PolicyExceptionSpec,
    PolicySpec,
    format_loc,
    load_exception,
    load_policy,
    nested_deeper_than,
)

MODES_MSG = "Input should be 'enforce', 'warn', 'audit' or 'off'"
DNS_MSG = (
    "must be a DNS label: at most 63 lowercase letters, digits and '-', "
    "starting and ending with a letter or digit"
)


def errors_of(spec: Any) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as info:
        load_policy(spec)
    return info.value.errors


# --- rule ids -----------------------------------------------------------------------------------


def test_rule_ids_are_the_catalog_in_order() -> None:
    assert len(RULE_IDS) == len(set(RULE_IDS)) == 32
    assert RULE_IDS[:3] == (
        "plaintext-secret-env",
        "plaintext-secret-args",
        "plaintext-secret-configmap",
    )
    assert RULE_IDS.index("image-registry-not-allowed") == 5
    assert RULE_IDS[6] == "image-signature-unverified"  # the last of the images family
    assert RULE_IDS.index("network-isolation-missing") == 11
    assert RULE_IDS[12] == "cross-env-rbac-binding"  # the last of the segregation family
    assert RULE_IDS[13] == "privileged-container"
    assert RULE_IDS[21:23] == ("writable-root-filesystem", "host-ports")
    assert RULE_IDS[-3:] == ("host-probes", "owner-label-missing", "workload-cluster-admin")


# --- defaults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"apiVersion": "airlock.dev/v1alpha1", "kind": "BaselinePolicy", "metadata": {"name": "d"}},
        {"apiVersion": "airlock.dev/v1alpha1", "kind": "BaselinePolicy", "spec": None},
        {"apiVersion": "airlock.dev/v1alpha1", "kind": "BaselinePolicy", "spec": {}},
    ],
)
def test_empty_spec_is_a_useful_policy(obj: dict[str, Any]) -> None:
    policy = load_policy(obj)
    assert [(e.name, e.mode) for e in policy.environments] == [("default", Action.ENFORCE)]
    assert policy.default_environment is None
    assert policy.default_environment_name == "default"
    assert policy.environments[0].rules == {}
    assert policy.rules == {}
    assert policy.environment_label == "airlock.dev/environment"
    assert policy.owner_label == "airlock.dev/owner"
    assert policy.excluded_namespaces == [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "airlock-system",
    ]
    assert policy.isolation == "audit"
    assert policy.isolation_allowed_namespaces == []
    assert (policy.exceptions.max_days, policy.exceptions.require_approval) == (90, True)
    m = policy.mutations
    assert (m.secure_defaults, m.inherit_owner_label, m.pin_image_digests) == (True, True, False)
    assert policy.detectors == DetectorSettings(extra_credential_names=[], allow_values=[])


def test_default_environment_falls_back_to_the_first() -> None:
    policy = load_policy({"environments": [{"name": "dev"}, {"name": "prod"}]})
    assert policy.default_environment_name == "dev"
    policy = load_policy(
        {"environments": [{"name": "dev"}, {"name": "prod"}], "defaultEnvironment": "prod"}
    )
    assert policy.default_environment_name == "prod"
    assert policy.environment("prod") is policy.environments[1]
    assert policy.environment("qa") is None


def test_models_are_frozen_and_accept_python_names() -> None:
    env = Environment(name="dev", allowed_registries=["registry.corp.example/"])
    assert env.allowed_registries == ["registry.corp.example/"]
    with pytest.raises(pydantic.ValidationError):
        env.mode = Action.OFF  # type: ignore[misc]


# --- round trip of the decision data ------------------------------------------------------------

FULL: dict[str, Any] = {
    "environmentLabel": "example.com/env",
    "defaultEnvironment": "dev",
    "excludedNamespaces": ["kube-system"],
    "environments": [
        {
            "name": "dev",
            "mode": "warn",
            "allowedRegistries": ["registry.corp.example/", "localhost:5000/team/"],
            "allowedStoragePrefixes": ["s3://models-dev/", "pvc://cache", "hf://"],
            "reachableEnvironments": ["prod"],
            "rules": {"image-digest-missing": "audit", "run-as-root": "off"},
        },
        {"name": "prod", "mode": "enforce", "allowedRegistries": ["registry.corp.example/prod/"]},
    ],
    "rules": {"writable-root-filesystem": "audit", "run-as-root": "warn"},
    "detectors": {"extraCredentialNames": ["VENDOR_KEY"], "allowValues": ["^example-"]},
    "mutations": {"secureDefaults": False, "inheritOwnerLabel": True, "pinImageDigests": True},
    "ownerLabel": "team",
    "exceptions": {"maxDays": 30, "requireApproval": False},
    "isolation": "enforce",
    "isolationAllowedNamespaces": ["monitoring", "ingress-nginx"],
}


def test_full_policy_round_trips_in_camel_case() -> None:
    policy = load_policy(FULL)
    assert policy.model_dump(by_alias=True, mode="json", exclude_unset=True) == FULL
    assert load_policy(policy.model_dump(by_alias=True)) == policy


def test_override_data_for_precedence_is_kept_per_level() -> None:
    """env override > policy-wide override > env mode: the engine needs all three levels intact."""
    policy = load_policy(FULL)
    dev, prod = policy.environments
    assert dev.mode is Action.WARN
    assert dev.rules == {"image-digest-missing": Action.AUDIT, "run-as-root": Action.OFF}
    assert policy.rules == {"writable-root-filesystem": Action.AUDIT, "run-as-root": Action.WARN}
    assert prod.mode is Action.ENFORCE
    assert prod.rules == {}
    assert all(isinstance(v, Action) for v in dev.rules.values())


# --- validation errors, with exact paths --------------------------------------------------------

ERROR_CASES: list[tuple[dict[str, Any], str, str]] = [
    (
        {"environments": [{"name": "dev"}, {"name": "prod", "mode": "deny"}]},
        "spec.environments[1].mode",
        MODES_MSG,
    ),
    (
        {"environments": []},
        "spec.environments",
        "List should have at least 1 item after validation, not 0",
    ),
    ({"environments": [{"mode": "warn"}]}, "spec.environments[0].name", "Field required"),
    ({"environments": [{"name": "Prod"}]}, "spec.environments[0].name", DNS_MSG),
    ({"environments": [{"name": "x" * 64}]}, "spec.environments[0].name", DNS_MSG),
    (
        {"environments": [{"name": "dev"}, {"name": "dev"}]},
        "spec.environments[1].name",
        "environment 'dev' is already declared at environments[0]",
    ),
    (
        {"environments": [{"name": "dev"}], "defaultEnvironment": "prod"},
        "spec.defaultEnvironment",
        "environment 'prod' is not declared (declared: dev)",
    ),
    (
        {"defaultEnvironment": "dev"},
        "spec.defaultEnvironment",
        "environment 'dev' is not declared (declared: default)",
    ),
    (
        {
            "environments": [
                {"name": "dev", "reachableEnvironments": ["dev", "qa"]},
                {"name": "prod"},
            ]
        },
        "spec.environments[0].reachableEnvironments[1]",
        "environment 'qa' is not declared (declared: dev, prod)",
    ),
    (
        {"rules": {"imag-tag-latest": "warn"}},
        "spec.rules.imag-tag-latest",
        "unknown rule id 'imag-tag-latest': did you mean 'image-tag-latest'?",
    ),
    (
        {"environments": [{"name": "dev", "rules": {"run-as-rot": "off"}}]},
        "spec.environments[0].rules.run-as-rot",
        "unknown rule id 'run-as-rot': did you mean 'run-as-root'?",
    ),
    (
        {"rules": {"no-such-thing": "warn"}},
        "spec.rules.no-such-thing",
        "unknown rule id 'no-such-thing': "
        "not in the rule catalog (`airlock explain` lists every rule)",
    ),
    ({"rules": {"run-as-root": "deny"}}, "spec.rules.run-as-root", MODES_MSG),
    (
        {"environments": [{"name": "dev", "allowedRegistries": [""]}]},
        "spec.environments[0].allowedRegistries[0]",
        "must be a registry or repository prefix such as 'registry.corp.example/team/' "
        "(no scheme, no spaces)",
    ),
    (
        {"environments": [{"name": "dev", "allowedRegistries": ["ok.example/", "https://x/"]}]},
        "spec.environments[0].allowedRegistries[1]",
        "must be a registry or repository prefix such as 'registry.corp.example/team/' "
        "(no scheme, no spaces)",
    ),
    (
        {"environments": [{"name": "dev", "allowedStoragePrefixes": ["models-prod/"]}]},
        "spec.environments[0].allowedStoragePrefixes[0]",
        "must be a URI prefix with a scheme, such as 's3://models-prod/' or 'pvc://models'",
    ),
    (
        {"detectors": {"allowValues": ["^ok-", "[a-"]}},
        "spec.detectors.allowValues[1]",
        "invalid regular expression: unterminated character set at position 0",
    ),
    (
        {"detectors": {"allowValues": ["x*"]}},
        "spec.detectors.allowValues[0]",
        "pattern matches the empty string, so it would allow every value",
    ),
    (
        {"detectors": {"extraCredentialNames": ["MY KEY"]}},
        "spec.detectors.extraCredentialNames[0]",
        "must be a variable name: no spaces and no '='",
    ),
    (
        {"exceptions": {"maxDays": 0}},
        "spec.exceptions.maxDays",
        "Input should be greater than or equal to 1",
    ),
    (
        {"exceptions": {"maxDays": 366}},
        "spec.exceptions.maxDays",
        "Input should be less than or equal to 365",
    ),
    ({"isolation": "strict"}, "spec.isolation", "Input should be 'enforce', 'audit' or 'off'"),
    ({"excludedNamespaces": ["kube_system"]}, "spec.excludedNamespaces[0]", DNS_MSG),
    ({"isolationAllowedNamespaces": ["Monitoring"]}, "spec.isolationAllowedNamespaces[0]", DNS_MSG),
    (
        {"ownerLabel": "has space"},
        "spec.ownerLabel",
        "must be a label key such as 'airlock.dev/owner' (optional DNS prefix and '/', "
        "then at most 63 letters, digits, '-', '_' or '.')",
    ),
    (
        {"mutations": {"pinImageDigest": True}},
        "spec.mutations.pinImageDigest",
        "Extra inputs are not permitted",
    ),
    ({"environment_label": "x"}, "spec.environment_label", "Extra inputs are not permitted"),
    ([], "spec", "expected an object"),
    (
        {"apiVersion": "airlock.dev/v1alpha1", "kind": "BaselinePolicy", "spec": ["x"]},
        "spec",
        "Input should be a valid dictionary or instance of PolicySpec",
    ),
]


@pytest.mark.parametrize(("spec", "path", "message"), ERROR_CASES, ids=lambda v: str(v)[:60])
def test_validation_error_path_and_message(spec: Any, path: str, message: str) -> None:
    assert errors_of(spec) == [(path, message)]


def test_the_message_lists_every_error() -> None:
    spec = {
        "environments": [{"name": "dev"}, {"name": "prod", "mode": "deny"}],
        "rules": {"imag-tag-latest": "warn"},
        "isolation": "strict",
    }
    with pytest.raises(PolicyError) as info:
        load_policy({"apiVersion": "airlock.dev/v1alpha1", "kind": "BaselinePolicy", "spec": spec})
    assert str(info.value) == (
        f"invalid BaselinePolicy: spec.environments[1].mode: {MODES_MSG}; "
        "spec.rules.imag-tag-latest: unknown rule id 'imag-tag-latest': did you mean "
        "'image-tag-latest'?; spec.isolation: Input should be 'enforce', 'audit' or 'off'"
    )
    assert [path for path, _ in info.value.errors] == [
        "spec.environments[1].mode",
        "spec.rules.imag-tag-latest",
        "spec.isolation",
    ]


def test_cross_field_errors_are_all_reported() -> None:
    assert errors_of(
        {
            "environments": [{"name": "dev", "reachableEnvironments": ["qa"]}, {"name": "dev"}],
            "defaultEnvironment": "prod",
        }
    ) == [
        ("spec.environments[1].name", "environment 'dev' is already declared at environments[0]"),
        (
            "spec.environments[0].reachableEnvironments[0]",
            "environment 'qa' is not declared (declared: dev)",
        ),
        ("spec.defaultEnvironment", "environment 'prod' is not declared (declared: dev)"),
    ]


def test_direct_construction_reports_alias_paths_too() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        PolicySpec.model_validate({"environments": [{"name": "a"}], "defaultEnvironment": "b"})
    assert [e["loc"] for e in info.value.errors()] == [("defaultEnvironment",)]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {"apiVersion": "airlock.dev/v1", "kind": "BaselinePolicy", "spec": {}},
            [("apiVersion", "must be 'airlock.dev/v1alpha1'")],
        ),
        (
            {"apiVersion": "airlock.dev/v1alpha1", "kind": "PolicyException", "spec": {}},
            [("kind", "must be 'BaselinePolicy'")],
        ),
    ],
)
def test_wrong_envelope(obj: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors_of(obj) == expected


def test_allow_values_accepts_regexes_that_compile() -> None:
    policy = load_policy({"detectors": {"allowValues": ["^example-", r"(?i)dummy\d+", "x+"]}})
    assert policy.detectors.allow_values == ["^example-", r"(?i)dummy\d+", "x+"]


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("environments", 1, "mode"), "spec.environments[1].mode"),
        (("rules", "run-as-root", "[key]"), "spec.rules.run-as-root"),
        (
            ("match", "labels", "app.kubernetes.io/name"),
            'spec.match.labels["app.kubernetes.io/name"]',
        ),
        ((), "spec"),
    ],
)
def test_format_loc(loc: tuple[str | int, ...], expected: str) -> None:
    assert format_loc(loc) == expected


# --- PolicyException spec ----------------------------------------------------------------------

EXPIRES = datetime(2027, 1, 31, tzinfo=UTC)
VALID_EXCEPTION: dict[str, Any] = {
    "rules": ["run-as-root", "writable-root-filesystem"],
    "match": {"kinds": ["PyTorchJob"], "names": ["trainer-*"], "labels": {"team": "vision"}},
    "expires": "2027-01-31T00:00:00Z",
    "owner": "vision-team",
    "reason": "base image runs as root until the January rebuild",
}


def exception_errors(spec: Any) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as info:
        load_exception(spec)
    return info.value.errors


def test_exception_spec_loads_full_and_bare() -> None:
    bare = load_exception(VALID_EXCEPTION)
    full = load_exception(
        {"apiVersion": "airlock.dev/v1alpha1", "kind": "PolicyException", "spec": VALID_EXCEPTION}
    )
    assert bare == full
    assert bare.expires == EXPIRES
    assert bare.match.names == ["trainer-*"]
    assert load_exception({**VALID_EXCEPTION, "match": {}}).match == ExceptionMatch()


def test_null_fields_read_as_absent_like_the_api_server_stores_them() -> None:
    assert load_exception({**VALID_EXCEPTION, "match": None}).match == ExceptionMatch()
    policy = load_policy(
        {"detectors": None, "environments": [{"name": "dev", "mode": None, "rules": None}]}
    )
    assert policy.detectors == DetectorSettings()
    assert policy.environments[0].mode is Action.ENFORCE


def _nested(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels - 1):
        node["a"] = {}
        node = node["a"]
    return root


def test_nesting_depth_counts_objects_and_lists_and_stops_at_the_limit() -> None:
    assert not nested_deeper_than("scalar", 0)
    assert nested_deeper_than({}, 0)
    assert not nested_deeper_than({"a": [1, {"b": []}]}, 4)  # object, list, object, list
    assert nested_deeper_than({"a": [1, {"b": []}]}, 3)
    assert not nested_deeper_than(_nested(MAX_NESTING))
    assert nested_deeper_than(_nested(MAX_NESTING + 1))
    assert nested_deeper_than(_nested(100_000))  # no recursion: any depth is measured


@pytest.mark.parametrize("loader", [load_policy, load_exception])
def test_a_spec_nested_past_the_limit_is_refused_by_name_not_by_a_recursion_error(
    loader: Any,
) -> None:
    """A stored object can be nested as deep as etcd allows; null removal must not recurse."""
    spec = {"environments": [{"name": "dev", "extra": _nested(5_000)}]}
    with pytest.raises(PolicyError) as info:
        loader(spec)
    assert info.value.errors == [("spec", f"nested deeper than {MAX_NESTING} levels")]
    assert f"nested deeper than {MAX_NESTING} levels" in str(info.value)
    # up to the limit, nulls are dropped at every level, lists keep theirs (as before)
    deep = _nested(MAX_NESTING - 2)  # the list and the object below make it MAX_NESTING
    node = deep
    while node:
        node = node["a"]
    node.update({"gone": None, "kept": [None, {"gone": None}]})
    cleaned = model._drop_nulls(deep, "BaselinePolicy")
    node = cleaned
    while "a" in node:
        node = node["a"]
    assert node == {"kept": [None, {}]}


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"rules": []}, "spec.rules", "List should have at least 1 item after validation, not 0"),
        (
            {"rules": ["run-as-root", "run_as_root"]},
            "spec.rules[1]",
            "unknown rule id 'run_as_root': did you mean 'run-as-root'?",
        ),
        (
            {"rules": ["run-as-root", "run-as-root"]},
            "spec.rules[1]",
            "rule 'run-as-root' is listed twice",
        ),
        ({"expires": "2027-01-31T00:00:00"}, "spec.expires", "Input should have timezone info"),
        (
            {"expires": "next week"},
            "spec.expires",
            "Input should be a valid datetime or date, input is too short",
        ),
        ({"owner": "   "}, "spec.owner", "String should have at least 1 character"),
        ({"reason": "because"}, "spec.reason", "String should have at least 10 characters"),
        (
            {"match": {"kinds": ["deployment"]}},
            "spec.match.kinds[0]",
            "must be a Kubernetes kind such as 'Deployment' or 'PyTorchJob'",
        ),
        (
            {"match": {"names": ["Trainer A"]}},
            "spec.match.names[0]",
            "must be an object name or a glob of one, such as 'trainer-*'",
        ),
        (
            {"match": {"labels": {"app.kubernetes.io/name": "a b"}}},
            'spec.match.labels["app.kubernetes.io/name"]',
            "must be a label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit",
        ),
        ({"match": {"namespace": "x"}}, "spec.match.namespace", "Extra inputs are not permitted"),
    ],
    ids=lambda v: str(v)[:50],
)
def test_exception_validation_errors(change: dict[str, Any], path: str, message: str) -> None:
    assert exception_errors({**VALID_EXCEPTION, **change}) == [(path, message)]


def test_exception_required_fields() -> None:
    assert exception_errors({}) == [
        ("spec.rules", "Field required"),
        ("spec.expires", "Field required"),
        ("spec.owner", "Field required"),
        ("spec.reason", "Field required"),
    ]


# --- exception records at run time -------------------------------------------------------------

CREATED = datetime(2027, 1, 1, tzinfo=UTC)
NOW = datetime(2027, 1, 10, tzinfo=UTC)
SETTINGS = ExceptionSettings()


def record(
    *,
    created_by: str | None = "alice",
    approved_by: str | None = "bob",
    created_at: datetime | None = CREATED,
    expires: datetime = EXPIRES,
    match: dict[str, Any] | None = None,
) -> ExceptionRecord:
    spec = PolicyExceptionSpec.model_validate(
        {**VALID_EXCEPTION, "expires": expires, "match": match or {}}
    )
    return ExceptionRecord("ml-prod", "legacy", spec, created_by, approved_by, created_at)


@pytest.mark.parametrize(
    ("rec", "now", "settings", "state"),
    [
        (record(approved_by=None), NOW, SETTINGS, ExceptionState.PENDING),
        (record(approved_by="alice"), NOW, SETTINGS, ExceptionState.PENDING),
        (record(created_by=None, approved_by="bob"), NOW, SETTINGS, ExceptionState.PENDING),
        (record(), NOW, SETTINGS, ExceptionState.ACTIVE),
        (
            record(approved_by=None),
            NOW,
            ExceptionSettings(require_approval=False),
            ExceptionState.ACTIVE,
        ),
        (record(), EXPIRES, SETTINGS, ExceptionState.EXPIRED),
        (record(), EXPIRES - timedelta(seconds=1), SETTINGS, ExceptionState.ACTIVE),
        (record(approved_by=None), EXPIRES + timedelta(days=1), SETTINGS, ExceptionState.EXPIRED),
        (record(), NOW, ExceptionSettings(max_days=29), ExceptionState.INVALID),
        (record(), NOW, ExceptionSettings(max_days=30), ExceptionState.ACTIVE),
        (record(created_at=None), NOW, ExceptionSettings(max_days=20), ExceptionState.INVALID),
        (record(created_at=None), NOW, ExceptionSettings(max_days=21), ExceptionState.ACTIVE),
    ],
    ids=[
        "unapproved",
        "self-approved",
        "creator-unknown",
        "approved",
        "approval-not-required",
        "expires-now",
        "one-second-left",
        "expired-beats-pending",
        "window-too-long",
        "window-exactly-max",
        "no-creation-time-window-from-now-too-long",
        "no-creation-time-window-from-now-ok",
    ],
)
def test_exception_state(
    rec: ExceptionRecord, now: datetime, settings: ExceptionSettings, state: ExceptionState
) -> None:
    assert rec.state(now, settings) is state


def test_exception_status_messages_say_what_to_do() -> None:
    assert record(approved_by=None).status(NOW, SETTINGS) == (
        ExceptionState.PENDING,
        "waiting for approval by someone other than alice (annotate airlock.dev/approve=true)",
    )
    assert record(approved_by="alice").status(NOW, SETTINGS)[1] == (
        "approved by its own creator; needs a second person"
    )
    assert record().status(NOW, ExceptionSettings(max_days=7))[1] == (
        "expires more than 7 days after creation (the policy's exceptions.maxDays)"
    )
    assert record().status(EXPIRES, SETTINGS)[1] == "expired at 2027-01-31T00:00:00+00:00"


@pytest.mark.parametrize(
    ("match", "kind", "name", "labels", "expected"),
    [
        ({}, "Deployment", "anything", {}, True),
        ({"kinds": ["PyTorchJob"]}, "PyTorchJob", "x", {}, True),
        ({"kinds": ["PyTorchJob"]}, "Deployment", "x", {}, False),
        ({"kinds": ["PyTorchJob"]}, "pytorchjob", "x", {}, False),
        ({"names": ["trainer-*"]}, "Pod", "trainer-7f9c", {}, True),
        ({"names": ["trainer-*"]}, "Pod", "my-trainer-1", {}, False),
        ({"names": ["trainer-?", "eval"]}, "Pod", "eval", {}, True),
        ({"names": ["trainer-?"]}, "Pod", "trainer-10", {}, False),
        ({"labels": {"team": "vision"}}, "Pod", "x", {"team": "vision", "app": "a"}, True),
        ({"labels": {"team": "vision"}}, "Pod", "x", {"team": "nlp"}, False),
        ({"labels": {"team": "vision"}}, "Pod", "x", {}, False),
        ({"labels": {"team": ""}}, "Pod", "x", {"team": ""}, True),
        (
            {"kinds": ["PyTorchJob"], "names": ["trainer-*"], "labels": {"team": "vision"}},
            "PyTorchJob",
            "trainer-a",
            {"team": "vision"},
            True,
        ),
        (
            {"kinds": ["PyTorchJob"], "names": ["trainer-*"], "labels": {"team": "vision"}},
            "PyTorchJob",
            "trainer-a",
            {"team": "nlp"},
            False,
        ),
    ],
)
def test_exception_matches(
    match: dict[str, Any], kind: str, name: str, labels: dict[str, str], expected: bool
) -> None:
    assert record(match=match).matches(kind, name, labels) is expected


def test_exception_waives_only_its_rules() -> None:
    rec = record()
    assert rec.waives("run-as-root")
    assert rec.waives("writable-root-filesystem")
    assert not rec.waives("privileged-container")
    assert rec.key == "ml-prod/legacy"


def exception_object(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": metadata,
        "spec": VALID_EXCEPTION,
    }


def test_record_from_object_reads_metadata() -> None:
    rec = ExceptionRecord.from_object(
        exception_object(
            name="legacy",
            namespace="ml-prod",
            creationTimestamp="2027-01-01T00:00:00Z",
            annotations={
                "airlock.dev/created-by": "alice",
                "airlock.dev/approved-by": "bob",
                "other": "x",
            },
        )
    )
    assert (rec.namespace, rec.name, rec.created_by, rec.approved_by) == (
        "ml-prod",
        "legacy",
        "alice",
        "bob",
    )
    assert rec.created_at == CREATED
    assert rec.spec == load_exception(VALID_EXCEPTION)
    assert rec.state(NOW, SETTINGS) is ExceptionState.ACTIVE


def test_record_from_file_object_without_cluster_metadata() -> None:
    rec = ExceptionRecord.from_object(exception_object(name="legacy"), namespace="ml-dev")
    assert (rec.namespace, rec.created_by, rec.approved_by, rec.created_at) == (
        "ml-dev",
        None,
        None,
        None,
    )
    assert rec.state(NOW, SETTINGS) is ExceptionState.PENDING


def test_record_from_object_errors() -> None:
    with pytest.raises(PolicyError) as info:
        ExceptionRecord.from_object(exception_object(creationTimestamp="yesterday"))
    assert info.value.errors == [
        ("metadata.name", "is required"),
        ("metadata.namespace", "is required"),
        ("metadata.creationTimestamp", "must be an RFC 3339 time with a zone"),
    ]
    bad = exception_object(name="x", namespace="y")
    bad["spec"] = {**VALID_EXCEPTION, "rules": ["nope"]}
    with pytest.raises(PolicyError) as info:
        ExceptionRecord.from_object(bad)
    assert [path for path, _ in info.value.errors] == ["spec.rules[0]"]
