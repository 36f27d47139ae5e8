"""Property tests: the engine answers every object, however odd, and never echoes a secret."""

from __future__ import annotations

import copy
import json
from typing import Any

from airlock.engine import evaluate, mutate
from airlock.findings import Action, Finding, Severity, new_finding
from airlock.model import load_policy
from airlock.records import fields
from airlock.state import EvalContext
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.builders import clean_pod, deployment

CTX = EvalContext.build(
    load_policy(
        {
            "environments": [
                {"name": "dev", "mode": "warn", "allowedStoragePrefixes": ["s3://dev/"]},
                {"name": "prod", "allowedRegistries": ["registry.corp.example/prod/"]},
            ]
        }
    ),
    namespace_env={"team-a": "prod", "ml-dev": "dev"},
    namespace_labels={"team-a": {"airlock.dev/owner": "x"}},
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)

# the places rules and mutations read: each gets replaced by arbitrary JSON
PLACES = [
    ("spec",),
    ("spec", "containers"),
    ("spec", "containers", 0),
    ("spec", "containers", 0, "env"),
    ("spec", "containers", 0, "image"),
    ("spec", "containers", 0, "securityContext"),
    ("spec", "containers", 0, "securityContext", "capabilities"),
    ("spec", "containers", 0, "args"),
    ("spec", "securityContext"),
    ("spec", "volumes"),
    ("spec", "tolerations"),
    ("spec", "affinity"),
    ("spec", "nodeSelector"),
    ("metadata",),
    ("metadata", "labels"),
]


def _put(obj: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    target: Any = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


@settings(max_examples=300, deadline=None)
@given(place=st.sampled_from(PLACES), value=json_values, as_deployment=st.booleans())
def test_any_shape_gets_a_verdict_and_a_patch(
    place: tuple[Any, ...], value: Any, as_deployment: bool
) -> None:
    obj = deployment(clean_pod()) if as_deployment else clean_pod()
    if as_deployment and place[0] == "spec":
        place = ("spec", "template", *place)
    _put(obj, place, copy.deepcopy(value))
    verdict = evaluate(obj, CTX)
    assert verdict.kind in ("Pod", "Deployment")
    patch = mutate(obj, CTX)
    json.dumps(patch.ops)  # a patch is always serialisable JSON
    for f in verdict.findings:
        assert f.path
        assert f.rule


# issued tokens are random: no vowels (no word such as "FAKE" that makes a placeholder), and no
# run of one character ("2222…" is typed, not generated)
secret_tokens = st.builds(
    lambda body: "hf_" + body,
    st.text(
        alphabet="bcdfghjkmnpqrstvwxyzBCDFGHJKLMNPQRSTVWXYZ23456789",
        min_size=34,
        max_size=34,
    ).filter(lambda body: len(set(body)) >= 12),
)


@settings(max_examples=200, deadline=None)
@given(token=secret_tokens, name=st.sampled_from(["HF_TOKEN", "X", "MODEL", "ARGS"]))
def test_a_detected_token_never_appears_in_any_finding(token: str, name: str) -> None:
    obj = clean_pod()
    obj["spec"]["containers"][0]["env"].append({"name": name, "value": token})
    obj["spec"]["containers"][0]["args"] = [f"--hf-token={token}", f"https://u:{token}@h.example/x"]
    verdict = evaluate(obj, CTX)
    assert {f.rule for f in verdict.findings} >= {"plaintext-secret-env", "plaintext-secret-args"}
    text = repr(verdict)
    assert token not in text
    assert token[3:15] not in text


@given(
    st.text(max_size=8),
    st.sampled_from(list(Severity)),
    st.sampled_from(list(Action)),
    st.none() | st.text(max_size=8),
    st.lists(st.text(max_size=6), max_size=3).map(tuple),
    st.none() | st.text(max_size=8),
)
def test_the_hot_path_finding_is_the_constructed_finding(  # noqa: PLR0917 (drawn by hypothesis)
    rule: str,
    severity: Severity,
    action: Action,
    namespace: str | None,
    references: tuple[str, ...],
    exempted_by: str | None,
) -> None:
    args = (rule, severity, action, "Pod", namespace, "n", "spec", "m", "fix", "fam", references,
            exempted_by)  # fmt: skip
    fast, slow = new_finding(*args), Finding(*args)
    assert fast == slow
    assert repr(fast) == repr(slow)
    assert hash(fast) == hash(slow)
    assert all(getattr(fast, n) == getattr(slow, n) for n in fields(Finding))
