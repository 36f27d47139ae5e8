"""Webhook certificate issue and rotation, walked through years on a frozen clock.

The invariant every test leans on: at every check, the serving certificate in the Secret is
signed by a CA in the bundle the API server trusts, and so is the certificate served before the
last change (replicas reload with a delay), so no admission request can fail a TLS handshake.
"""

from __future__ import annotations

import argparse
import datetime as dt

import pytest
from airlock.controller.certs import (
    CertSettings,
    Plan,
    add_cert_arguments,
    cert_settings_from_args,
    execute,
    plan_rotation,
    read_state,
    serving_dns_names,
)
from airlock.errors import AirlockError
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SETTINGS = CertSettings(namespace="airlock-system", service_name="airlock-webhook")
DAY = dt.timedelta(days=1)


def _advance(data: dict[str, bytes], now: dt.datetime) -> tuple[dict[str, bytes], Plan]:
    plan = plan_rotation(data, now, SETTINGS)
    return execute(plan, data, now, SETTINGS), plan


def _signed_by(cert: x509.Certificate, cas: list[x509.Certificate]) -> bool:
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _bundle(data: dict[str, bytes]) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data["ca.crt"])


def _leaf(data: dict[str, bytes]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data["tls.crt"])


def test_empty_secret_gets_ca_and_serving_certificate() -> None:
    plan = plan_rotation({}, T0, SETTINGS)
    assert plan.issue_ca is not None
    assert plan.issue_serving == "no serving certificate"
    data = execute(plan, {}, T0, SETTINGS)
    assert set(data) == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    leaf, bundle = _leaf(data), _bundle(data)
    assert len(bundle) == 1
    assert _signed_by(leaf, bundle)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName)[0] == "airlock-webhook.airlock-system.svc"
    assert leaf.not_valid_after_utc == T0 + dt.timedelta(days=90)
    assert bundle[0].not_valid_after_utc == T0 + dt.timedelta(days=365)
    # notBefore is backdated for clock skew, so a lagging API server accepts it at once
    assert leaf.not_valid_before_utc == T0 - SETTINGS.clock_skew
    state = read_state(data)
    assert state.active_ca is not None
    assert state.active_ca.subject == bundle[0].subject


def test_fresh_secret_needs_nothing_and_says_when_to_look_again() -> None:
    data, _ = _advance({}, T0)
    plan = plan_rotation(data, T0 + dt.timedelta(hours=1), SETTINGS)
    assert not plan.changed
    assert plan.describe() == []
    # serving renewal (90 d - 30 d) comes before the CA rollover (365 d - 122 d)
    assert plan.next_check == T0 + dt.timedelta(days=60)
    assert execute(plan, data, T0, SETTINGS) == data


def test_serving_certificate_renewed_thirty_days_before_expiry_by_the_same_ca() -> None:
    data, _ = _advance({}, T0)
    before = _leaf(data)
    data2, plan = _advance(data, T0 + dt.timedelta(days=59))
    assert not plan.changed
    data3, plan = _advance(data2, T0 + dt.timedelta(days=60, minutes=1))
    assert plan.issue_serving == "the serving certificate is due for renewal"
    assert plan.issue_ca is None
    assert _leaf(data3).serial_number != before.serial_number
    assert data3["ca.crt"] == data["ca.crt"]
    assert data3["ca.key"] == data["ca.key"]


def test_a_renewal_request_reissues_only_the_serving_certificate_from_the_same_ca() -> None:
    data, _ = _advance({}, T0)
    now = T0 + dt.timedelta(days=3)
    assert not plan_rotation(data, now, SETTINGS).changed
    plan = plan_rotation(data, now, SETTINGS, renew_requested=True)
    assert plan.issue_serving == "renewal requested (airlock.dev/renew)"
    assert plan.issue_ca is None
    assert plan.retire == ()
    renewed = execute(plan, data, now, SETTINGS)
    assert _leaf(renewed).serial_number != _leaf(data).serial_number
    assert renewed["ca.crt"] == data["ca.crt"]  # the API server's trust does not change
    assert _signed_by(_leaf(renewed), _bundle(data))
    assert _leaf(renewed).not_valid_after_utc == now + dt.timedelta(days=90)


def test_ca_rollover_is_staged_so_every_served_certificate_stays_trusted() -> None:
    data, _ = _advance({}, T0)
    old_ca = _bundle(data)[0]
    now = T0
    # What replicas may serve: the current leaf, and the previous one until the grace period
    # after the switch has passed (kubelet and the webhook's file check have caught up by then).
    served = [_leaf(data)]
    switched = T0
    stages: list[str] = []
    while now < T0 + dt.timedelta(days=800):
        now += dt.timedelta(minutes=7) if stages and stages[-1] != "settled" else DAY
        data, plan = _advance(data, now)
        bundle = _bundle(data)
        leaf = _leaf(data)
        if leaf.serial_number != served[-1].serial_number:
            served, switched = [served[-1], leaf], now
        elif len(served) == 2 and now - switched >= SETTINGS.propagation_grace:
            served = [leaf]
        for cert in served:
            assert _signed_by(cert, bundle), f"a served certificate is untrusted at {now}"
        if plan.issue_ca:
            stages.append("new-ca")
            assert len(bundle) == 2
            assert bundle[1].subject == old_ca.subject  # the old CA stays next to the new one
            assert plan.issue_serving is None  # ... and the old serving cert stays in use
        elif plan.issue_serving and "CA rollover" in plan.issue_serving:
            stages.append("re-signed")
            assert now - read_state(data).cas[0].not_valid_before_utc >= (
                SETTINGS.propagation_grace + SETTINGS.clock_skew
            )
        elif plan.retire:
            stages.append("settled")
            assert len(bundle) == 1
            assert plan.retire[0] == old_ca.fingerprint(hashes.SHA256()).hex()[:16]
            old_ca = bundle[0]
    # rollovers at days 243, 486 and 729 (two thirds of a year each), three stages each
    assert stages[:3] == ["new-ca", "re-signed", "settled"]
    assert stages == ["new-ca", "re-signed", "settled"] * 3
    assert stages[3:6] == ["new-ca", "re-signed", "settled"]


def test_rollover_starts_at_two_thirds_of_the_ca_lifetime() -> None:
    data, _ = _advance({}, T0)
    start = T0 + dt.timedelta(days=365) - SETTINGS.ca_renew_before
    # keep the serving certificate fresh so only the CA is in question
    data = execute(Plan(issue_serving="test"), data, start - DAY, SETTINGS)
    assert not plan_rotation(data, start - dt.timedelta(minutes=1), SETTINGS).issue_ca
    assert plan_rotation(data, start, SETTINGS).issue_ca == (
        "the CA is near the end of its lifetime (rollover)"
    )


def test_rollover_waits_for_the_grace_period_before_switching_the_serving_certificate() -> None:
    data, _ = _advance({}, T0)
    start = T0 + dt.timedelta(days=243)
    # a serving certificate renewed shortly before, as the controller keeps it
    data = execute(Plan(issue_serving="test"), data, start - DAY, SETTINGS)
    data, plan = _advance(data, start)
    assert plan.issue_ca is not None
    # within the grace period the old serving certificate stays; next_check is when it ends
    early = plan_rotation(data, start + dt.timedelta(minutes=3), SETTINGS)
    assert not early.changed
    assert early.next_check == start + SETTINGS.propagation_grace
    late = plan_rotation(data, start + SETTINGS.propagation_grace, SETTINGS)
    assert late.issue_serving == "CA rollover: re-signing with the new CA"
    data = execute(late, data, start + SETTINGS.propagation_grace, SETTINGS)
    # right after the switch both CAs stay; once the new leaf had time to spread, the old goes
    switched = start + SETTINGS.propagation_grace
    assert not plan_rotation(data, switched + dt.timedelta(minutes=1), SETTINGS).changed
    final = plan_rotation(data, switched + SETTINGS.propagation_grace, SETTINGS)
    assert len(final.retire) == 1
    assert len(_bundle(execute(final, data, switched + SETTINGS.propagation_grace, SETTINGS))) == 1


def test_expired_everything_is_replaced_at_once() -> None:
    data, _ = _advance({}, T0)
    later = T0 + dt.timedelta(days=400)
    plan = plan_rotation(data, later, SETTINGS)
    assert plan.issue_ca == "the CA has expired"
    assert plan.issue_serving == "the serving certificate has expired"
    data = execute(plan, data, later, SETTINGS)
    bundle = _bundle(data)
    assert len(bundle) == 1  # the expired CA is not carried along
    assert bundle[0].not_valid_after_utc > later
    assert _signed_by(_leaf(data), bundle)


@pytest.mark.parametrize(
    ("mangle", "serving_reason"),
    [
        (lambda d: d.pop("tls.key"), "no serving certificate"),
        (lambda d: d.update({"tls.crt": b"not a pem"}), "no serving certificate"),
        (
            lambda d: d.update({"tls.key": _advance({}, T0)[0]["tls.key"]}),
            "the serving key does not match the certificate",
        ),
    ],
)
def test_broken_serving_pair_is_reissued_by_the_existing_ca(
    mangle: object, serving_reason: str
) -> None:
    data, _ = _advance({}, T0)
    broken = dict(data)
    mangle(broken)  # type: ignore[operator]
    plan = plan_rotation(broken, T0 + DAY, SETTINGS)
    assert plan.issue_ca is None
    assert plan.issue_serving == serving_reason
    fixed = execute(plan, broken, T0 + DAY, SETTINGS)
    assert fixed["ca.crt"] == data["ca.crt"]
    assert _signed_by(_leaf(fixed), _bundle(fixed))


def test_lost_ca_key_starts_a_new_ca_but_keeps_trusting_the_old_one() -> None:
    data, _ = _advance({}, T0)
    broken = dict(data)
    del broken["ca.key"]
    plan = plan_rotation(broken, T0 + DAY, SETTINGS)
    assert plan.issue_ca == "no usable CA (missing, unreadable, or its key does not match)"
    # the serving certificate is still valid and trusted: it stays while the new CA spreads
    assert plan.issue_serving is None
    fixed = execute(plan, broken, T0 + DAY, SETTINGS)
    assert len(_bundle(fixed)) == 2
    assert _signed_by(_leaf(fixed), _bundle(fixed))


def test_renamed_service_gets_a_certificate_for_the_new_name() -> None:
    data, _ = _advance({}, T0)
    renamed = CertSettings(namespace="security", service_name="gate")
    plan = plan_rotation(data, T0 + DAY, renamed)
    assert plan.issue_serving == "the Service's DNS names changed"
    leaf = _leaf(execute(plan, data, T0 + DAY, renamed))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == set(serving_dns_names(renamed))
    assert "gate.security.svc" in serving_dns_names(renamed)


def test_serving_key_material_never_appears_in_reasons() -> None:
    data, _ = _advance({}, T0)
    plan = plan_rotation(data, T0 + dt.timedelta(days=400), SETTINGS)
    text = " ".join(plan.describe())
    assert "PRIVATE" not in text
    assert data["tls.key"].decode() not in repr(plan)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cert_renew_before": dt.timedelta(days=90)},
        {"ca_renew_before": dt.timedelta(days=60)},
        {"ca_renew_before": dt.timedelta(days=400)},
        {"mode": "vault"},
    ],
)
def test_inconsistent_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(AirlockError):
        CertSettings(**kwargs)  # type: ignore[arg-type]


def test_flags_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRLOCK_CONTROLLER_TLS_SECRET", "from-env")
    monkeypatch.setenv("AIRLOCK_CONTROLLER_CA_VALIDITY_DAYS", "tcp://10.0.0.7:443")
    parser = argparse.ArgumentParser()
    add_cert_arguments(parser)
    args = parser.parse_args(
        [
            "--certificates",
            "external",
            "--webhook-configuration",
            "gate",
            "--cert-validity-days",
            "60",
            "--cert-check-interval",
            "5",
        ]
    )
    settings = cert_settings_from_args(args, namespace="sec")
    assert settings.mode == "external"
    assert settings.secret_name == CertSettings().secret_name
    assert settings.webhook_configurations == ("gate",)
    assert settings.check_interval == 5.0
    assert settings.cert_validity == dt.timedelta(days=60)
    assert settings.namespace == "sec"


def test_bundle_patch_touches_only_stale_webhooks_and_guards_each_by_name() -> None:
    from airlock.controller.certs import _bundle_patch
    from kubernetes import client

    def hook(name: str, bundle: str | None) -> client.V1ValidatingWebhook:
        return client.V1ValidatingWebhook(
            name=name,
            admission_review_versions=["v1"],
            side_effects="None",
            client_config=client.AdmissionregistrationV1WebhookClientConfig(ca_bundle=bundle),
        )

    hooks = [
        hook("pods.validate.airlock.dev", "TkVX"),
        hook("workloads.validate.airlock.dev", None),
    ]
    assert _bundle_patch(hooks, "TkVX") == [
        {"op": "test", "path": "/webhooks/1/name", "value": "workloads.validate.airlock.dev"},
        {"op": "add", "path": "/webhooks/1/clientConfig/caBundle", "value": "TkVX"},
    ]
    assert _bundle_patch([hook("pods.validate.airlock.dev", "TkVX")], "TkVX") == []
