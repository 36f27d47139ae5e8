"""Airlock's own objects at admission: a plaintext credential in a PolicyException's ``reason``
or ``owner`` or in a BaselinePolicy's text is denied or warned about like one in a ConfigMap,
by the same engine, after the objects' own validation; no answer ever holds the credential.

The credentials are synthetic, built at run time from a seeded random source.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import string
from typing import Any

from airlock.admission import StateStore
from airlock.detectors import FingerprintKey

from tests.admission.conftest import (
    POLICY,
    ServerFactory,
    ServerThread,
    admission_review,
    loaded_store,
)
from tests.support.builders import apply_patch
from tests.support.objects import policy_exception

_rng = random.Random(23)  # noqa: S311 - synthetic test data, not keys
ALICE = "alice@corp.example"
RULE = "plaintext-secret-configmap"


def _password() -> str:
    return "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(20))


def _create(srv: ServerThread, obj: dict[str, Any]) -> dict[str, Any]:
    """/mutate then /validate, as the API server does on CREATE."""
    mutated = srv.post_review("/mutate", admission_review(obj, user=ALICE))["response"]
    assert mutated["allowed"] is True
    if "patch" in mutated:
        obj = apply_patch(obj, json.loads(base64.b64decode(mutated["patch"])))
    return srv.post_review("/validate", admission_review(obj, user=ALICE))


def _assert_never_shown(answer: dict[str, Any], secret: str) -> None:
    assert secret not in answer["_raw"]
    assert secret[:8] not in answer["_raw"]


def test_credential_in_an_exception_reason_is_denied_in_an_enforcing_namespace(
    webhook: ServerThread,
) -> None:
    password = _password()
    pex = policy_exception(namespace="ml-prod")
    pex["spec"]["reason"] = (
        f"until migrated, the job logs in with postgres://etl:{password}@db:5432/x"
    )
    answer = _create(webhook, pex)
    resp = answer["response"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403
    lines = resp["status"]["message"].splitlines()
    assert (
        lines[0]
        == "airlock denied PolicyException ml-prod/legacy-root (environment prod): 1 violation"
    )
    assert lines[1].startswith(
        f"[{RULE}] spec.reason: spec.reason holds a plaintext password in URL [REDACTED"
    )
    _assert_never_shown(answer, password)


def test_credential_in_an_exception_owner_is_a_warning_in_a_warning_namespace(
    webhook: ServerThread,
) -> None:
    token = "AK" + "IA" + "".join(_rng.choice(string.ascii_uppercase + "234567") for _ in range(16))
    pex = policy_exception(namespace="ml-dev", rules=["run-as-root"])
    pex["spec"]["owner"] = f"team-ml {token}"
    answer = _create(webhook, pex)
    resp = answer["response"]
    assert resp["allowed"] is True
    (warning,) = resp["warnings"]
    assert warning.startswith(f"airlock [{RULE}] spec.owner: ")
    assert "REDACTED AWS access key id" in warning
    _assert_never_shown(answer, token)


def test_an_invalid_exception_keeps_its_validation_answer(webhook: ServerThread) -> None:
    password = _password()
    pex = policy_exception(namespace="ml-prod", days=365)  # past maxDays: invalid
    pex["spec"]["reason"] = f"db password={password}"
    answer = _create(webhook, pex)
    resp = answer["response"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 422
    assert "PolicyException ml-prod/legacy-root" in resp["status"]["message"]
    _assert_never_shown(answer, password)


def test_a_clean_exception_is_still_admitted(webhook: ServerThread) -> None:
    answer = _create(webhook, policy_exception(namespace="ml-prod"))
    assert answer["response"]["allowed"] is True
    assert "warnings" not in answer["response"]


def test_credential_in_a_baseline_policy_is_judged_in_the_default_environment(
    make_server: ServerFactory,
) -> None:
    """POLICY's default environment (dev) warns; a policy whose default enforces denies. The
    "has no effect" warning of another policy name comes first."""
    password = _password()
    bad = copy.deepcopy(POLICY)
    bad["metadata"] = {"name": "default", "generation": 4}
    bad["spec"]["environments"][1]["allowedStoragePrefixes"] = [
        f"https://svc:{password}@models.corp.example/prod/"
    ]
    path = "spec.environments[1].allowedStoragePrefixes[0]"
    warned = make_server().post_review("/validate", admission_review(bad))
    assert warned["response"]["allowed"] is True
    assert [w.split(": ")[0] for w in warned["response"]["warnings"]] == [
        f"airlock [{RULE}] {path}"
    ]
    _assert_never_shown(warned, password)

    other = copy.deepcopy(bad)
    other["metadata"]["name"] = "experimental"
    answer = make_server().post_review("/validate", admission_review(other))
    assert answer["response"]["allowed"] is True
    first, second = answer["response"]["warnings"]
    assert first.endswith("'experimental' has no effect")
    assert second.startswith(f"airlock [{RULE}] {path}")
    _assert_never_shown(answer, password)

    strict = copy.deepcopy(POLICY)
    strict["spec"]["defaultEnvironment"] = "prod"
    store = StateStore()
    assert store.set_policy(strict) is None
    for what in ("policy", "namespaces", "exceptions"):
        store.mark_synced(what)
    denied = make_server(store=store).post_review("/validate", admission_review(bad))
    resp = denied["response"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403
    assert resp["status"]["message"].splitlines()[1].startswith(f"[{RULE}] {path}: ")
    _assert_never_shown(denied, password)


def test_denials_carry_the_installation_keyed_fingerprint(make_server: ServerFactory) -> None:
    key = FingerprintKey(b"k" * 8 + bytes(_password(), "ascii"))
    srv = make_server(store=loaded_store(store=StateStore(fingerprint_key=key)))
    password = _password()
    pex = policy_exception(namespace="ml-prod")
    pex["spec"]["reason"] = f"see postgres://etl:{password}@db:5432/x"
    answer = _create(srv, pex)
    message = answer["response"]["status"]["message"]
    assert f"fp:{key.fingerprint(password)}]" in message
    _assert_never_shown(answer, password)
