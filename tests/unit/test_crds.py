"""The CRDs in manifests/crds agree with the pydantic models, and the examples satisfy both.

The API server only knows the CRD's OpenAPI schema; the webhook, the controller and the CLI know
the models. If the two drift, a policy the cluster stores could be one Airlock refuses (or the
reverse), so every property, type, enum, bound, pattern, required list and scalar default is
compared, in both directions. jsonschema is not a dependency, so a small checker of the
structural-schema subset the CRDs use validates the examples.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock.model import RULE_IDS, PolicyExceptionSpec, PolicySpec, load_exception, load_policy

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "manifests" / "crds"
EXAMPLES = REPO / "manifests" / "examples"

BOUNDS = ("minLength", "maxLength", "minItems", "maxItems", "maxProperties", "minimum", "maximum")
SCALARS = ("string", "integer", "boolean", "number")


def load_crd(plural: str) -> dict[str, Any]:
    doc = yaml.safe_load((CRD_DIR / f"airlock.dev_{plural}.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def root_schema(crd: Mapping[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


# --- model JSON schema, normalised -------------------------------------------------------------


def resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Inline ``$ref`` and drop the ``null`` branch of ``X | None`` (an omitted field in a CRD)."""
    out = dict(node)
    ref = out.pop("$ref", None)
    if ref is not None:
        target = defs[ref.rsplit("/", 1)[-1]]
        out = {**resolve(target, defs), **out}
    if "anyOf" in out:
        branches = [b for b in out.pop("anyOf") if b.get("type") != "null"]
        assert len(branches) == 1, f"unexpected union: {node}"
        out = {**resolve(branches[0], defs), **out}
        if out.get("default", "") is None:
            del out["default"]
    return out


def model_schema(model: type[PolicySpec] | type[PolicyExceptionSpec]) -> tuple[dict[str, Any], Any]:
    schema = model.model_json_schema(by_alias=True)
    return schema, schema.get("$defs", {})


# --- comparison --------------------------------------------------------------------------------


def compare(model: Mapping[str, Any], crd: Mapping[str, Any], defs: Any, path: str) -> list[str]:
    """Every disagreement between a model schema node and a CRD schema node, with its path."""
    m = resolve(model, defs)
    problems: list[str] = []
    if m.get("type") != crd.get("type"):
        return [f"{path}: type {m.get('type')!r} in the model, {crd.get('type')!r} in the CRD"]
    if m.get("enum") != crd.get("enum"):
        problems.append(f"{path}: enum {m.get('enum')} != {crd.get('enum')}")
    for key in (*BOUNDS, "pattern"):
        if m.get(key) != crd.get(key):
            problems.append(f"{path}: {key} {m.get(key)!r} != {crd.get(key)!r}")
    if "format" in m and m["format"] != crd.get("format"):
        problems.append(f"{path}: format {m['format']!r} != {crd.get('format')!r}")
    if "default" in crd and crd["default"] != m.get("default"):
        problems.append(f"{path}: default {m.get('default')!r} != {crd['default']!r}")
    if m["type"] in SCALARS and "default" in m and "default" not in crd:
        problems.append(f"{path}: scalar default {m['default']!r} missing from the CRD")
    if m["type"] == "array":
        problems += compare(m["items"], crd.get("items", {}), defs, f"{path}[]")
    if m["type"] == "object":
        problems += compare_object(m, crd, defs, path)
    return problems


def compare_object(m: Mapping[str, Any], crd: Mapping[str, Any], defs: Any, path: str) -> list[str]:
    problems: list[str] = []
    m_props = m.get("properties", {})
    c_props = crd.get("properties", {})
    for name in sorted(set(m_props) | set(c_props)):
        if name not in c_props:
            problems.append(f"{path}.{name}: in the model, missing from the CRD")
        elif name not in m_props:
            problems.append(f"{path}.{name}: in the CRD, missing from the model")
        else:
            problems += compare(m_props[name], c_props[name], defs, f"{path}.{name}")
    if set(m.get("required", [])) != set(crd.get("required", [])):
        problems.append(f"{path}: required {m.get('required', [])} != {crd.get('required', [])}")
    values = m.get("additionalProperties")
    if values is None and "patternProperties" in m:
        (values,) = m["patternProperties"].values()
    if isinstance(values, dict):
        if "additionalProperties" not in crd:
            problems.append(f"{path}: a map in the model, not in the CRD")
        else:
            problems += compare(values, crd["additionalProperties"], defs, f"{path}.*")
    elif "additionalProperties" in crd:
        problems.append(f"{path}: a map in the CRD, a closed object in the model")
    key_enum = resolve(m.get("propertyNames", {}), defs).get("enum")
    if key_enum is not None and cel_key_enum(crd) != set(key_enum):
        problems.append(f"{path}: CRD does not restrict the map keys to {key_enum}")
    return problems


def cel_key_enum(crd: Mapping[str, Any]) -> set[str] | None:
    for check in crd.get("x-kubernetes-validations", []):
        rule = check["rule"]
        if rule.startswith("self.all(k, k in ["):
            return set(re.findall(r"'([^']*)'", rule))
    return None


CASES = [
    pytest.param(PolicySpec, "baselinepolicies", id="BaselinePolicy"),
    pytest.param(PolicyExceptionSpec, "policyexceptions", id="PolicyException"),
]


@pytest.mark.parametrize(("model", "plural"), CASES)
def test_crd_spec_schema_agrees_with_model(
    model: type[PolicySpec] | type[PolicyExceptionSpec], plural: str
) -> None:
    schema, defs = model_schema(model)
    spec = root_schema(load_crd(plural))["properties"]["spec"]
    assert compare(schema, spec, defs, "spec") == []


def test_comparison_notices_drift() -> None:
    """The agreement test can fail: each kind of drift is reported at its path."""
    schema, defs = model_schema(PolicySpec)
    spec = root_schema(load_crd("baselinepolicies"))["properties"]["spec"]
    drifted = copy.deepcopy(spec)
    env = drifted["properties"]["environments"]["items"]
    env["properties"]["mode"]["enum"] = ["enforce", "warn"]
    del env["properties"]["allowedRegistries"]
    drifted["properties"]["mutations"]["properties"]["pinImageDigests"]["default"] = True
    drifted["properties"]["exceptions"]["properties"]["maxDays"]["maximum"] = 366
    drifted["properties"]["rules"]["x-kubernetes-validations"][0]["rule"] = (
        "self.all(k, k in ['x'])"
    )
    drifted["properties"]["extra"] = {"type": "string"}
    problems = compare(schema, drifted, defs, "spec")
    assert problems == [
        "spec.environments[].allowedRegistries: in the model, missing from the CRD",
        "spec.environments[].mode: enum ['enforce', 'warn', 'audit', 'off'] != ['enforce', 'warn']",
        "spec.exceptions.maxDays: maximum 365 != 366",
        "spec.extra: in the CRD, missing from the model",
        "spec.mutations.pinImageDigests: default False != True",
        f"spec.rules: CRD does not restrict the map keys to {list(RULE_IDS)}",
    ]


@pytest.mark.parametrize("plural", ["baselinepolicies", "policyexceptions"])
def test_cel_rule_id_lists_equal_catalog(plural: str) -> None:
    """Every CEL check that restricts map keys to rule ids lists exactly RULE_IDS."""
    found = 0
    for node in walk(root_schema(load_crd(plural))):
        keys = cel_key_enum(node)
        if keys is not None:
            found += 1
            assert keys == set(RULE_IDS)
    assert found == (2 if plural == "baselinepolicies" else 0)


# --- CRD envelope ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plural", "kind", "scope", "short"),
    [
        ("baselinepolicies", "BaselinePolicy", "Cluster", "blp"),
        ("policyexceptions", "PolicyException", "Namespaced", "pex"),
    ],
)
def test_crd_envelope(plural: str, kind: str, scope: str, short: str) -> None:
    crd = load_crd(plural)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.airlock.dev"
    spec = crd["spec"]
    assert spec["group"] == "airlock.dev"
    assert spec["scope"] == scope
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["listKind"] == f"{kind}List"
    assert spec["names"]["shortNames"] == [short]
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize(
    ("plural", "columns"),
    [
        ("baselinepolicies", ["Environments", "Ready", "Age"]),
        ("policyexceptions", ["State", "Expires", "Owner", "Age"]),
    ],
)
def test_printer_columns_point_into_the_schema(plural: str, columns: list[str]) -> None:
    crd = load_crd(plural)
    (version,) = crd["spec"]["versions"]
    printed = version["additionalPrinterColumns"]
    assert [c["name"] for c in printed] == columns
    root = root_schema(crd)
    for column in printed:
        steps = re.sub(r"\[\?\(.*?\)\]", "[]", column["jsonPath"]).strip(".").split(".")
        node: Mapping[str, Any] = root
        for step in steps:
            if step == "metadata":
                break
            name = step.removesuffix("[]")
            assert name in node.get("properties", {}), f"{column['jsonPath']}: no {name!r}"
            node = node["properties"][name]
            if step.endswith("[]"):
                node = node["items"]


def walk(node: Mapping[str, Any], path: str = "") -> Iterator[dict[str, Any]]:
    yield dict(node, __path__=path)
    for name, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")


@pytest.mark.parametrize("plural", ["baselinepolicies", "policyexceptions"])
def test_crd_schema_is_structural(plural: str) -> None:
    """What the API server demands of a structural schema, checked without an API server."""
    for node in walk(root_schema(load_crd(plural))):
        where = node["__path__"] or "<root>"
        assert "type" in node, f"{where}: every node needs a type"
        for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "not", "patternProperties"):
            assert forbidden not in node, f"{where}: {forbidden} is not used in our CRDs"
        assert not ("properties" in node and "additionalProperties" in node), where
        if node.get("x-kubernetes-list-type") == "map":
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in node["items"]["required"], f"{where}: map key {key} not required"
        if "default" in node:
            assert check(node["default"], node, where) == [], f"{where}: default does not validate"
        for pattern in [node.get("pattern")] if node.get("pattern") else []:
            re.compile(pattern)
            # Go's RE2 rejects look-arounds and back-references; keep to the common subset.
            assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern), f"{where}: {pattern}"


# --- a small structural validator --------------------------------------------------------------


TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def check(value: Any, schema: Mapping[str, Any], path: str) -> list[str]:
    """Errors of ``value`` against the CRD-schema subset we use (no CEL)."""
    expected = schema.get("type")
    if expected is not None:
        ok = isinstance(value, TYPES[expected])
        if ok and expected in ("integer", "number") and isinstance(value, bool):
            ok = False
        if not ok:
            return [f"{path}: expected {expected}, got {type(value).__name__}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        errors += check_string(value, schema, path)
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1 << 30):
            errors.append(f"{path}: {len(value)} items out of bounds")
        for i, item in enumerate(value):
            errors += check(item, schema.get("items", {}), f"{path}[{i}]")
    if isinstance(value, dict):
        errors += check_object(value, schema, path)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{path}: {value} out of bounds")
    return errors


def check_string(value: str, schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 1 << 30):
        errors.append(f"{path}: length {len(value)} out of bounds")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if schema.get("format") == "date-time":
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            errors.append(f"{path}: {value!r} is not an RFC 3339 time")
        else:
            if parsed.tzinfo is None:
                errors.append(f"{path}: {value!r} has no zone")
    return errors


def check_object(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors = []
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return errors
    if len(value) > schema.get("maxProperties", 1 << 30):
        errors.append(f"{path}: too many properties")
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"{path}.{name}: required")
    props = schema.get("properties")
    values = schema.get("additionalProperties")
    for name, item in value.items():
        if props is not None and name in props:
            errors += check(item, props[name], f"{path}.{name}")
        elif isinstance(values, dict):
            errors += check(item, values, f"{path}.{name}")
        elif props is not None:
            errors.append(f"{path}.{name}: unknown field (the API server would drop it)")
    return errors


def test_checker_reports_each_kind_of_error() -> None:
    schema = root_schema(load_crd("policyexceptions"))
    bad = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {"name": "x"},
        "spec": {
            "rules": ["run-as-root", "no-such-rule"],
            "match": {"kinds": ["deployment"], "labels": {"team": 3}, "extra": True},
            "expires": "2027-01-01T00:00:00",
            "reason": "short",
        },
    }
    assert check(bad, schema, "") == [
        ".spec.owner: required",
        ".spec.rules[1]: 'no-such-rule' not in " + str(list(RULE_IDS)),
        ".spec.match.kinds[0]: 'deployment' does not match ^[A-Z][A-Za-z0-9]*$",
        ".spec.match.labels.team: expected string, got int",
        ".spec.match.extra: unknown field (the API server would drop it)",
        ".spec.expires: '2027-01-01T00:00:00' has no zone",
        ".spec.reason: length 5 out of bounds",
    ]


# --- examples ----------------------------------------------------------------------------------


def example_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("BaselinePolicy", "PolicyException"):
                docs.append((f"{path.name}:{doc['metadata']['name']}", doc))
    return docs


def test_examples_exist() -> None:
    kinds = {doc["kind"] for _, doc in example_documents()}
    assert kinds == {"BaselinePolicy", "PolicyException"}


@pytest.mark.parametrize(("where", "doc"), example_documents(), ids=lambda v: str(v)[:40])
def test_example_validates_against_model_and_crd(where: str, doc: dict[str, Any]) -> None:
    if doc["kind"] == "BaselinePolicy":
        load_policy(doc)
        plural = "baselinepolicies"
    else:
        load_exception(doc)
        plural = "policyexceptions"
    assert check(doc, root_schema(load_crd(plural)), "") == [], where


def test_model_defaults_validate_against_crd() -> None:
    """What the model fills in for an empty spec is something the API server would store."""
    dumped = PolicySpec().model_dump(by_alias=True, mode="json", exclude_none=True)
    spec_schema = root_schema(load_crd("baselinepolicies"))["properties"]["spec"]
    assert check(dumped, spec_schema, "spec") == []
