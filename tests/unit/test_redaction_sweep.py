"""A credential that any rule quotes never leaves in clear: every finding's message and path,
whatever field of the object the credential was put in.

Rules quote values to say what they found (an image, a node selector, a host path, a
capability); :func:`airlock.detectors.redact` is the last guard on what they quote. Each case
below puts a synthetic credential (assembled at run time) where a rule quotes a value, and the
rule must still report the problem without showing the credential.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airlock.detectors import redact
from airlock.engine import evaluate
from airlock.errors import PolicyError
from airlock.model import load_exception, load_policy

from tests.support.builders import clean_pod
from tests.unit.test_detectors import crc_token, jwt
from tests.unit.test_rules import _c, _sc, ctx

Put = Callable[[dict[str, Any], str], Any]

PLACES: list[tuple[str, str, Put]] = [
    ("image-digest-missing", "an image tag", lambda p, t: _c(p).update(image=f"registry/x:{t}")),
    (
        "image-digest-missing",
        "a malformed digest",
        lambda p, t: _c(p).update(image=f"registry.corp.example/prod/x@sha256:{t}"),
    ),
    (
        "cross-env-node-pool",
        "a node selector value",
        lambda p, t: p["spec"].update(nodeSelector={"airlock.dev/environment": t}),
    ),
    (
        "host-path-volume",
        "a host path",
        lambda p, t: p["spec"].update(volumes=[{"name": "v", "hostPath": {"path": f"/etc/{t}"}}]),
    ),
    (
        "dangerous-capabilities",
        "a capability",
        lambda p, t: _sc(p).update(capabilities={"drop": ["ALL"], "add": [t]}),
    ),
    (
        "seccomp-unconfined",
        "a seccomp profile type",
        lambda p, t: _sc(p).update(seccompProfile={"type": t}),
    ),
]
SECRETS: dict[str, Callable[[], str]] = {"GitHub token": lambda: crc_token("ghp_"), "JWT": jwt}


@pytest.mark.parametrize("secret", list(SECRETS), ids=list(SECRETS))
@pytest.mark.parametrize(("rule", "where", "put"), PLACES, ids=[p[1] for p in PLACES])
def test_a_rule_quoting_a_value_never_quotes_a_credential(
    rule: str, where: str, put: Put, secret: str
) -> None:
    token = SECRETS[secret]()
    pod = clean_pod()
    put(pod, token)
    findings = evaluate(pod, ctx()).findings
    assert rule in {f.rule for f in findings}, f"{rule} no longer sees {where}"
    for f in findings:
        for shown in (f.message, f.path, f.fix):
            assert token not in shown
            assert token[4:24] not in shown


def test_redact_keeps_the_rest_of_the_text() -> None:
    token = crc_token("ghp_")
    assert redact(f"image registry/x:{token} has a tag") == "image registry/x:[REDACTED] has a tag"
    assert redact("postgres://app:Zq8v7Rk2mW@db/x") == "postgres://app:[REDACTED]@db/x"
    # hits that overlap get one marker
    overlapping = "Server=db;Password=x://u:Qz7abc;Rk2defghij@h/p"
    assert redact(overlapping) == "Server=db;Password=[REDACTED]@h/p"
    plain = "container trainer runs as root (runAsNonRoot is not set)"
    assert redact(plain) is plain


def test_a_policy_error_never_quotes_a_credential() -> None:
    token = crc_token("ghp_")
    with pytest.raises(PolicyError) as raised:
        load_policy({"rules": {token: "enforce"}})
    shown = [str(raised.value), *(f"{p}: {m}" for p, m in raised.value.errors)]
    assert all(token not in s for s in shown)
    assert "[REDACTED]" in str(raised.value)
    spec = {
        "rules": [token],
        "match": {"kinds": ["Pod"], "names": ["p"]},
        "expires": "2099-01-01T00:00:00Z",
        "owner": "team",
        "reason": "legacy",
    }
    with pytest.raises(PolicyError) as raised:
        load_exception(spec)
    assert token not in str(raised.value)
    assert "unknown rule id" in str(raised.value)


def _string_slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every string in ``node`` (keys of mappings included, as ("key", ...))."""
    if isinstance(node, dict):
        out: list[tuple[Any, ...]] = []
        for k, v in node.items():
            out.append((*path, ("key", k)))
            out.extend(_string_slots(v, (*path, k)))
        return out
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _string_slots(v, (*path, i))]
    return [path] if isinstance(node, str) else []


def _put(obj: Any, slot: tuple[Any, ...], shape: Callable[[str, str], str], token: str) -> None:
    *parents, last = slot
    for step in parents:
        obj = obj[step]
    if isinstance(last, tuple):  # a key: renamed
        obj[shape(last[1], token)] = obj.pop(last[1])
    else:
        obj[last] = shape(obj[last], token)


def _busy_pod() -> dict[str, Any]:
    """A pod with a value in most of the places rules read and quote."""
    pod = clean_pod()
    c = _c(pod)
    c.update(
        image="registry.corp.example/prod/x:1.0",
        args=["--model", "s3://models-dev/llama", "--port", "8080"],
        env=[
            {"name": "MODEL_URI", "value": "s3://models-dev/llama/7b"},
            {"name": "FEATURES_URL", "value": "http://features.ml-dev.svc:8080/v1"},
        ],
        volumeMounts=[{"name": "host", "mountPath": "/host"}],
    )
    _sc(pod).update(capabilities={"drop": ["ALL"], "add": ["NET_RAW"]})
    pod["spec"].update(
        nodeSelector={"airlock.dev/environment": "dev"},
        volumes=[{"name": "host", "hostPath": {"path": "/var/lib/data"}}],
        hostAliases=[{"ip": "10.0.0.1", "hostnames": ["db.internal"]}],
    )
    return pod


@pytest.mark.parametrize("secret", list(SECRETS), ids=list(SECRETS))
def test_a_credential_put_into_any_string_of_a_pod_never_shows(secret: str) -> None:
    """Every string (value or key) of a pod that trips many rules, in turn: the credential
    replaces it, or is glued before or after it; no finding shows it."""
    shapes: list[Callable[[str, str], str]] = [
        lambda old, t: t,
        lambda old, t: f"{old}/{t}",
        lambda old, t: f"{t}:{old}",
    ]
    slots = _string_slots(_busy_pod())
    assert len(slots) > 40
    for slot in slots:
        for shape in shapes:
            token = SECRETS[secret]()
            pod = _busy_pod()
            _put(pod, slot, shape, token)
            for f in evaluate(pod, ctx()).findings:
                for shown in (f.message, f.path):
                    assert token not in shown, (slot, f.rule, shown)


def test_a_parser_error_quoting_the_input_never_shows_a_credential() -> None:
    from airlock.scan import describe_error, load_text

    token = crc_token("ghp_")
    _docs, errors = load_text(
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: !{token} x\n", "f.yaml"
    )
    (shown,) = [describe_error(e) for e in errors]
    assert "could not determine a constructor for the tag" in shown
    assert token not in shown
