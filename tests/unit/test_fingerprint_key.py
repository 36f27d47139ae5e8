"""Keyed credential fingerprints: the same on every process holding the installation's key,
different under another key, and not recomputable from a guess list without it.

Every credential here is synthetic, built at run time; provider prefixes are written split so
secret scanners reading this file see no token.
"""

from __future__ import annotations

import io
import json
import pickle
import random
import string
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airlock.admission.store import StateStore
from airlock.cli import main
from airlock.controller.compliance import Compliance, ComplianceSettings
from airlock.controller.kube import Kube
from airlock.detectors import DEFAULT_DETECTORS, Detection, DetectorSet, FingerprintKey, fingerprint
from airlock.engine import evaluate
from airlock.errors import AirlockError
from airlock.state import CompiledPolicy, EvalContext, PolicyKeyer

_rng = random.Random(11)  # noqa: S311 - synthetic test data, not keys
ALNUM = string.ascii_letters + string.digits


def rnd(n: int) -> str:
    return "".join(_rng.choice(ALNUM) for _ in range(n))


KEY = rnd(64).encode()
OTHER_KEY = rnd(64).encode()
# weak passwords a guesser would try first
GUESSES = [
    f"{w}{n}" for w in ("letmein", "password", "hunter", "dragon", "welcome") for n in range(100)
]
WEAK = "hunter42"


def _pod(name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ml"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "env": [{"name": name, "value": value}]}]
        },
    }


def _fp_of(message: str) -> str:
    return message.rpartition("fp:")[2][:8]


def test_keyed_fingerprint_is_stable_short_and_not_the_unkeyed_one() -> None:
    key = FingerprintKey(KEY)
    value = rnd(30)
    fp = key.fingerprint(value)
    assert len(fp) == 8
    assert all(c in "0123456789abcdef" for c in fp)
    assert key.fingerprint(value) == fp == FingerprintKey(KEY).fingerprint(value)
    assert key.fingerprint(value + "x") != fp
    assert fp != fingerprint(value)
    # surrounding whitespace of a key file (a trailing newline) is not part of the key
    assert FingerprintKey(b"\n " + KEY + b"\n").fingerprint(value) == fp


def test_different_keys_give_different_fingerprints() -> None:
    a, b = FingerprintKey(KEY), FingerprintKey(OTHER_KEY)
    values = [rnd(24) for _ in range(50)]
    # 32-bit prefixes: a coincidence on one value is possible (2^-32), on most impossible
    assert sum(a.fingerprint(v) == b.fingerprint(v) for v in values) <= 1


def test_a_guess_list_cannot_confirm_a_keyed_fingerprint() -> None:
    """Without the key, hashing guesses (the unkeyed fingerprint) finds nothing; with it, the
    guess would be confirmed, which is exactly what the key keeps from message readers."""
    det = DetectorSet(fingerprint_key=FingerprintKey(KEY)).check_env("DB_PASSWORD", WEAK)
    assert det is not None
    unkeyed = DEFAULT_DETECTORS.check_env("DB_PASSWORD", WEAK)
    assert unkeyed is not None
    assert unkeyed.kind == det.kind
    assert det.fingerprint != unkeyed.fingerprint
    assert unkeyed.fingerprint in {fingerprint(g) for g in GUESSES}  # the unkeyed weakness
    assert det.fingerprint not in {fingerprint(g) for g in GUESSES}
    assert det.fingerprint not in {FingerprintKey(OTHER_KEY).fingerprint(g) for g in GUESSES}


def test_same_value_and_key_give_the_same_fingerprint_in_another_process(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    value = rnd(40)
    here = DetectorSet(fingerprint_key=FingerprintKey.read(key_file)).check_env("API_TOKEN", value)
    assert here is not None
    code = textwrap.dedent(
        """
        import sys
        from airlock.detectors import DetectorSet, FingerprintKey
        key = FingerprintKey.read(sys.argv[1])
        det = DetectorSet(fingerprint_key=key).check_env("API_TOKEN", sys.stdin.read())
        print(det.fingerprint)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(key_file)],
        input=value,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == here.fingerprint


def test_every_detection_path_uses_the_key() -> None:
    key = FingerprintKey(KEY)
    keyed = DEFAULT_DETECTORS.keyed(key)
    assert keyed.is_keyed
    assert not DEFAULT_DETECTORS.is_keyed
    assert DEFAULT_DETECTORS.keyed(None) is DEFAULT_DETECTORS
    token = "gh" + "p_" + rnd(36)  # checksum fails: reported by name, not format
    aws = "AK" + "IA" + "".join(_rng.choice(string.ascii_uppercase + "234567") for _ in range(16))
    password = rnd(20)
    checks: list[tuple[Callable[[DetectorSet], Detection | None], str]] = [
        (lambda d: d.check_env("AWS_ACCESS_KEY_ID", aws), aws),
        (lambda d: d.check_env("DB_PASSWORD", password), password),
        (lambda d: d.check_value(f"postgres://app:{password}@db:5432/x"), password),
        (lambda d: d.check_args(["--token", password])[0][1], password),
        (lambda d: d.check_text("app.env", f"A=1\nSECRET_KEY={password}\n")[0], password),
        (
            lambda d: d.check_text("h", f"Authorization: Bearer {password}xyz\n")[0],
            password + "xyz",
        ),
    ]
    for check, secret in checks:
        plain, with_key = check(DEFAULT_DETECTORS), check(keyed)
        assert plain is not None
        assert with_key is not None
        assert plain.kind == with_key.kind
        assert plain.fingerprint == fingerprint(secret)
        assert with_key.fingerprint == key.fingerprint(secret)
    assert token  # (a lookalike is judged the same with or without a key)
    assert (DEFAULT_DETECTORS.check_env("X", token) is None) == (
        keyed.check_env("X", token) is None
    )


def test_the_key_is_never_shown_nor_serialised(tmp_path: Path) -> None:
    key = FingerprintKey(KEY)
    for shown in (repr(key), str(key), f"{key}", repr(DetectorSet(fingerprint_key=key))):
        assert KEY.decode() not in shown
        assert KEY.decode()[:16] not in shown
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(AirlockError, match="at least 16 bytes") as short:
        FingerprintKey(b"  tooshort  \n")
    assert "tooshort" not in str(short.value)
    short_file = tmp_path / "short"
    short_file.write_bytes(b"tooshort")
    with pytest.raises(AirlockError) as err:
        FingerprintKey.read(short_file)
    assert str(short_file) in str(err.value)
    assert "tooshort" not in str(err.value)
    with pytest.raises(AirlockError, match="cannot read the fingerprint key file"):
        FingerprintKey.read(tmp_path / "missing")


def test_keyed_policy_and_context_judge_the_same_and_differ_only_in_fingerprints() -> None:
    key = FingerprintKey(KEY)
    password = rnd(18)
    pod = _pod("DB_PASSWORD", password)
    plain = evaluate(pod, EvalContext.build())
    keyed = evaluate(pod, EvalContext.build(fingerprint_key=key))
    assert [(f.rule, f.path) for f in plain.findings] == [(f.rule, f.path) for f in keyed.findings]
    (p,) = [f for f in plain.findings if f.rule == "plaintext-secret-env"]
    (k,) = [f for f in keyed.findings if f.rule == "plaintext-secret-env"]
    assert _fp_of(p.message) == fingerprint(password)
    assert _fp_of(k.message) == key.fingerprint(password)
    assert password not in k.message
    # the keyer keys each compiled policy once
    keyer = PolicyKeyer(key)
    policy = CompiledPolicy.builtin()
    assert keyer(policy) is keyer(policy)
    assert keyer(policy).detectors.is_keyed
    assert not policy.detectors.is_keyed
    assert PolicyKeyer(None)(policy) is policy


def test_webhook_state_and_controller_audit_use_the_installation_key(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    store = StateStore("default", fingerprint_key=FingerprintKey.read(key_file))
    assert store.policy.detectors.is_keyed
    assert store.context.policy.detectors.is_keyed
    assert not StateStore("default").context.policy.detectors.is_keyed
    compliance = Compliance(
        ComplianceSettings(fingerprint_key_file=str(key_file)), kube=Kube(custom=object())
    )
    ctx = compliance.auditor.context(datetime(2026, 1, 1, tzinfo=UTC))
    assert ctx.policy.detectors.is_keyed
    # the same credential gets the same fingerprint in the webhook and in the audit
    pod = _pod("DB_PASSWORD", rnd(18))
    webhook = evaluate(pod, store.context).findings
    audit = evaluate(pod, ctx).findings
    assert [f.message for f in webhook if f.rule == "plaintext-secret-env"] == [
        f.message for f in audit if f.rule == "plaintext-secret-env"
    ]
    plain = Compliance(ComplianceSettings(), kube=Kube(custom=object()))
    assert not plain.auditor.context().policy.detectors.is_keyed


def test_process_flags_read_the_key_file(tmp_path: Path) -> None:
    import argparse

    from airlock.controller.settings import add_arguments as controller_arguments
    from airlock.controller.settings import settings_from_args as controller_settings
    from airlock.webhook_process import add_arguments, settings_from_args

    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    cert = tmp_path / "tls.crt"
    cert.write_text("x")
    p = argparse.ArgumentParser()
    add_arguments(p)
    base = ["--tls-cert-file", str(cert), "--tls-key-file", str(cert)]
    settings = settings_from_args(p.parse_args([*base, "--fingerprint-key-file", str(key_file)]))
    assert settings.fingerprint_key_file == key_file
    assert KEY.decode() not in repr(settings)
    assert settings_from_args(p.parse_args(base)).fingerprint_key_file is None
    short = tmp_path / "short"
    short.write_bytes(b"short")
    with pytest.raises(AirlockError, match="--fingerprint-key-file"):
        settings_from_args(p.parse_args([*base, "--fingerprint-key-file", str(short)]))
    c = argparse.ArgumentParser()
    controller_arguments(c)
    parsed = controller_settings(c.parse_args(["--fingerprint-key-file", str(key_file)]))
    assert parsed.fingerprint_key_file == str(key_file)
    assert ComplianceSettings.from_controller(parsed).fingerprint_key_file == str(key_file)


def test_scan_with_and_without_a_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    password = rnd(18)
    manifest = tmp_path / "pod.json"
    manifest.write_text(json.dumps(_pod("DB_PASSWORD", password)))
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def scan(*extra: str) -> tuple[int, str]:
        code = main(["scan", "--format", "json", *extra, str(manifest)])
        out = capsys.readouterr().out
        assert password not in out
        messages = [
            f["message"] for f in json.loads(out)["findings"] if f["rule"] == "plaintext-secret-env"
        ]
        assert len(messages) == 1
        return code, _fp_of(messages[0])

    assert scan() == (1, fingerprint(password))
    assert scan("--fingerprint-key-file", str(key_file)) == (
        1,
        FingerprintKey(KEY).fingerprint(password),
    )
    assert main(["scan", "--fingerprint-key-file", str(tmp_path / "none"), str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "fingerprint key file" in err
