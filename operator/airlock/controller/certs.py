"""The webhook's TLS: a private CA, a serving certificate, and rotation that never drops a request.

The API server trusts exactly the CAs in each webhook's ``clientConfig.caBundle``; the webhook
replicas serve the certificate mounted from the Secret (``tls.crt``/``tls.key``) and reload it
when the files change. Three places therefore change at different speeds: the Secret (now), the
webhook configurations (seconds, through the API server's informer) and the files in every
webhook pod (kubelet resyncs mounted Secrets within a minute or two). Rotation is staged so that
at every moment the certificate any replica serves is signed by a CA the API server trusts:

1. A new CA is added to the bundle *next to* the old one; the serving certificate is unchanged.
2. Once the new CA has been in the bundle for ``propagation_grace``, a serving certificate
   signed by it replaces the old one.
3. Once that certificate has been out for ``propagation_grace``, the old CA leaves the bundle.

Everything that decides is pure (:func:`plan_rotation` takes the Secret's data, the time and the
settings and returns a :class:`Plan`), so tests walk a frozen clock through years of rotations.
:func:`execute` does the cryptography; :class:`CertRotator` is the part that talks to the cluster.

Secret layout (``airlock-webhook-tls`` by default): ``tls.crt``/``tls.key`` the serving pair,
``ca.crt`` every CA the API server should trust (the active one first, the same bytes as the
caBundle), ``ca.key`` the active CA's key. The webhook pods mount only ``tls.crt`` and
``tls.key`` (the chart projects those two keys), so the CA key never leaves the API server and
the controller.

With cert-manager (``mode="external"``) none of this writes anything: cert-manager fills the
Secret and its CA injector the caBundle; the rotator only reports the expiry metric.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import kopf
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from airlock import metrics
from airlock.controller.kube import REQUEST_TIMEOUT, Kube
from airlock.errors import AirlockError, KubeError

__all__ = [
    "RENEWED_ANNOTATION",
    "RENEW_ANNOTATION",
    "CertRotator",
    "CertSettings",
    "Plan",
    "TLSState",
    "add_cert_arguments",
    "cert_settings_from_args",
    "execute",
    "plan_rotation",
    "read_state",
    "register_certs",
    "remove_webhook_configurations",
    "serving_dns_names",
]

_log = logging.getLogger("airlock.controller.certs")

CertMode = Literal["self-signed", "external"]

_MAX_TRUSTED_CAS: Final = 4
RENEW_ANNOTATION: Final = "airlock.dev/renew"
"""On the TLS Secret: any new value asks for a new serving certificate at the next check
(``kubectl annotate secret airlock-webhook-tls airlock.dev/renew="$(date +%s)" --overwrite``)."""
RENEWED_ANNOTATION: Final = "airlock.dev/renewed"
"""On the TLS Secret: the ``airlock.dev/renew`` value last honoured."""
"""Bound on the bundle: a CA is kept only while it may still have signed a served certificate,
so more than two means something went wrong; four leaves room without growing forever."""


@dataclass(frozen=True, slots=True)
class CertSettings:
    """How the controller issues and rotates the webhook's certificates."""

    mode: CertMode = "self-signed"
    """``self-signed``: the controller runs its own CA (the default; no dependency). ``external``:
    something else (cert-manager) fills the Secret and the caBundle; only the metric is kept."""

    namespace: str = "airlock-system"
    """Namespace of the Secret and of the webhook Service."""

    secret_name: str = "airlock-webhook-tls"  # noqa: S105 - a Secret's name, not a password
    """The Secret the webhook pods mount. The chart creates it empty, so the controller needs
    only get/update on this one name (RBAC cannot restrict ``create`` by name)."""

    service_name: str = "airlock-webhook"
    """The webhook's Service; its DNS names are the serving certificate's SANs."""

    cluster_domain: str = "cluster.local"
    """Cluster DNS domain, for the fully qualified SAN. The API server itself dials
    ``<service>.<namespace>.svc``, which is always included."""

    webhook_configurations: tuple[str, ...] = ("airlock",)
    """Names of the Validating- and MutatingWebhookConfigurations whose caBundle is kept equal
    to ``ca.crt`` (both kinds share the name)."""

    ca_validity: dt.timedelta = dt.timedelta(days=365)
    """Lifetime of a CA. A year keeps a leaked CA key useful only for a bounded time while
    rollovers stay rare (one a year at two thirds of the lifetime)."""

    ca_renew_before: dt.timedelta = dt.timedelta(days=122)
    """Start a CA rollover this long before the CA expires (a third of a year: a controller that
    is down for weeks still rolls over in time). Must exceed ``cert_validity`` so a serving
    certificate never has to be cut short by its CA's expiry."""

    cert_validity: dt.timedelta = dt.timedelta(days=90)
    """Lifetime of a serving certificate."""

    cert_renew_before: dt.timedelta = dt.timedelta(days=30)
    """Renew the serving certificate when less than this is left: a month of margin for a
    controller outage, visible on the expiry metric long before it matters."""

    propagation_grace: dt.timedelta = dt.timedelta(minutes=10)
    """How long a change takes to reach everyone who must see it: kubelet's Secret resync (up
    to about two minutes), the webhook's file check (seconds) and the API server's view of the
    webhook configuration (seconds). Each rollover stage waits this long for the previous one."""

    clock_skew: dt.timedelta = dt.timedelta(minutes=5)
    """New certificates are valid from this long ago, so a node or API server whose clock lags a
    little does not reject a certificate that was just issued."""

    check_interval: float = 300.0
    """Seconds between checks when nothing is due sooner. A check is one GET of the Secret and
    of each webhook configuration; it also repairs a caBundle someone overwrote."""

    def __post_init__(self) -> None:
        if self.mode not in ("self-signed", "external"):
            raise AirlockError(f"certificate mode must be self-signed or external, not {self.mode}")
        if not dt.timedelta(0) < self.cert_renew_before < self.cert_validity:
            raise AirlockError("cert_renew_before must be positive and shorter than cert_validity")
        if not self.cert_validity < self.ca_renew_before < self.ca_validity:
            raise AirlockError(
                "ca_renew_before must be longer than cert_validity and shorter than ca_validity"
            )
        if self.propagation_grace < dt.timedelta(0) or self.check_interval <= 0:
            raise AirlockError("propagation_grace and check_interval must be positive")


def add_cert_arguments(parser: argparse.ArgumentParser) -> None:
    """The certificate flags of ``airlock controller`` (flags only, like its other flags)."""
    d = CertSettings()

    days = d.ca_validity.days, d.ca_renew_before.days, d.cert_validity.days
    parser.add_argument(
        "--certificates",
        choices=("self-signed", "external"),
        default=d.mode,
        help="self-signed: issue and rotate the webhook CA and certificate (default); "
        "external: cert-manager does, only export the expiry metric",
    )
    parser.add_argument("--tls-secret", default=d.secret_name)
    parser.add_argument("--webhook-service", default=d.service_name)
    parser.add_argument(
        "--webhook-configuration",
        default=d.webhook_configurations[0],
        help="name of the Validating- and MutatingWebhookConfiguration whose caBundle is kept",
    )
    parser.add_argument("--cluster-domain", default=d.cluster_domain)
    parser.add_argument("--ca-validity-days", type=int, default=days[0])
    parser.add_argument("--ca-renew-before-days", type=int, default=days[1])
    parser.add_argument("--cert-validity-days", type=int, default=days[2])
    parser.add_argument(
        "--cert-renew-before-days",
        type=int,
        default=d.cert_renew_before.days,
    )
    parser.add_argument(
        "--cert-check-interval",
        type=float,
        default=d.check_interval,
        help="seconds between certificate checks when nothing is due sooner (300); also how "
        f"soon a {RENEW_ANNOTATION} request on the Secret is honoured",
    )


def cert_settings_from_args(args: argparse.Namespace, *, namespace: str) -> CertSettings:
    """Settings from :func:`add_cert_arguments`' flags; ``namespace`` is the controller's."""
    return CertSettings(
        mode="external" if args.certificates == "external" else "self-signed",
        namespace=namespace,
        secret_name=args.tls_secret,
        service_name=args.webhook_service,
        webhook_configurations=(args.webhook_configuration,),
        cluster_domain=args.cluster_domain,
        ca_validity=dt.timedelta(days=int(args.ca_validity_days)),
        ca_renew_before=dt.timedelta(days=int(args.ca_renew_before_days)),
        cert_validity=dt.timedelta(days=int(args.cert_validity_days)),
        cert_renew_before=dt.timedelta(days=int(args.cert_renew_before_days)),
        check_interval=float(args.cert_check_interval),
    )


def serving_dns_names(settings: CertSettings) -> tuple[str, ...]:
    """The Service's DNS names, the first being what the API server dials."""
    svc, ns = settings.service_name, settings.namespace
    return (f"{svc}.{ns}.svc", f"{svc}.{ns}.svc.{settings.cluster_domain}", f"{svc}.{ns}", svc)


# --------------------------------------------------------------------------- reading the Secret

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class TLSState:
    """What a Secret holds, parsed; anything unreadable is simply absent (and gets replaced)."""

    cas: tuple[x509.Certificate, ...] = ()
    ca_key: Any = None
    leaf: x509.Certificate | None = None
    leaf_key: Any = None

    @property
    def active_ca(self) -> x509.Certificate | None:
        """The CA whose key we hold; the only one that signs new certificates."""
        if self.ca_key is None:
            return None
        for ca in self.cas:
            if _same_key(ca, self.ca_key):
                return ca
        return None


def _load_certs(pem: bytes | None) -> tuple[x509.Certificate, ...]:
    if not pem:
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(pem))
    except ValueError:
        return ()


def _load_key(pem: bytes | None) -> Any:
    if not pem:
        return None
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        return None


def _public_der(obj: Any) -> bytes:
    der: bytes = obj.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def _same_key(cert: x509.Certificate, key: Any) -> bool:
    try:
        return _public_der(cert) == _public_der(key)
    except (AttributeError, ValueError, TypeError):
        return False


def read_state(data: Mapping[str, bytes] | None) -> TLSState:
    """Parse a Secret's (decoded) data. Never raises: a broken Secret is one to be replaced."""
    data = data or {}
    leaves = _load_certs(data.get("tls.crt"))
    return TLSState(
        cas=tuple(c for c in _load_certs(data.get("ca.crt")) if _is_ca(c)),
        ca_key=_load_key(data.get("ca.key")),
        leaf=leaves[0] if leaves else None,
        leaf_key=_load_key(data.get("tls.key")),
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _dns_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(san.get_values_for_type(x509.DNSName))


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()[:16]


# --------------------------------------------------------------------------- deciding


@dataclass(frozen=True, slots=True)
class Plan:
    """What must happen now. Reasons are for logs and tests; they never contain key material."""

    issue_ca: str | None = None
    """Why a new CA is needed (None: keep the active one)."""

    issue_serving: str | None = None
    """Why a new serving certificate is needed (None: keep it)."""

    retire: tuple[str, ...] = ()
    """Fingerprints (SHA-256, 16 hex digits) of CAs that leave the bundle."""

    next_check: dt.datetime = field(default_factory=lambda: dt.datetime.max.replace(tzinfo=dt.UTC))
    """When the next step falls due if nothing changes (the rotator sleeps until then at most)."""

    @property
    def changed(self) -> bool:
        return bool(self.issue_ca or self.issue_serving or self.retire)

    def describe(self) -> list[str]:
        out = []
        if self.issue_ca:
            out.append(f"new CA: {self.issue_ca}")
        if self.issue_serving:
            out.append(f"new serving certificate: {self.issue_serving}")
        out.extend(f"CA {fp} leaves the bundle" for fp in self.retire)
        return out


def _issued_at(cert: x509.Certificate, settings: CertSettings) -> dt.datetime:
    return cert.not_valid_before_utc + settings.clock_skew


def plan_rotation(
    secret_data: Mapping[str, bytes] | None,
    now: dt.datetime,
    settings: CertSettings,
    *,
    renew_requested: bool = False,
) -> Plan:
    """Decide what the Secret needs at ``now``: a CA, a serving certificate, fewer trusted CAs.

    ``renew_requested`` (an admin set a new ``airlock.dev/renew`` on the Secret) asks for a new
    serving certificate from the active CA even though the current one is fine.

    Pure: the same data, time, settings and request always give the same plan.
    """
    state = read_state(secret_data)
    active = state.active_ca
    due: list[dt.datetime] = []

    # --- the CA ---------------------------------------------------------------------------
    issue_ca: str | None = None
    if active is None:
        issue_ca = "no usable CA (missing, unreadable, or its key does not match)"
    elif active.not_valid_after_utc <= now:
        issue_ca = "the CA has expired"
    elif active.not_valid_after_utc - now <= settings.ca_renew_before:
        issue_ca = "the CA is near the end of its lifetime (rollover)"
    else:
        due.append(active.not_valid_after_utc - settings.ca_renew_before)

    trusted = [c for c in state.cas if c.not_valid_after_utc > now]

    # --- the serving certificate ------------------------------------------------------------
    issue_serving: str | None = None
    leaf, names = state.leaf, set(serving_dns_names(settings))
    leaf_ca = (
        next((ca for ca in trusted if _signed_by(leaf, ca)), None) if leaf is not None else None
    )
    if leaf is None or state.leaf_key is None:
        issue_serving = "no serving certificate"
    elif not _same_key(leaf, state.leaf_key):
        issue_serving = "the serving key does not match the certificate"
    elif not names <= _dns_names(leaf):
        issue_serving = "the Service's DNS names changed"
    elif leaf.not_valid_after_utc <= now:
        issue_serving = "the serving certificate has expired"
    elif leaf.not_valid_after_utc - now <= settings.cert_renew_before:
        issue_serving = "the serving certificate is due for renewal"
    elif leaf_ca is None:
        issue_serving = "the serving certificate is not signed by a trusted CA"
    elif issue_ca is None and active is not None and leaf_ca is not active:
        # CA rollover, stage 2: switch once the new CA has had time to reach the API server.
        ready_at = _issued_at(active, settings) + settings.propagation_grace
        if now >= ready_at:
            issue_serving = "CA rollover: re-signing with the new CA"
        else:
            due.append(ready_at)
    if issue_serving is None and renew_requested:
        issue_serving = f"renewal requested ({RENEW_ANNOTATION})"
    if issue_serving is None and leaf is not None:
        due.append(leaf.not_valid_after_utc - settings.cert_renew_before)

    # --- which old CAs stay trusted ---------------------------------------------------------
    retire: list[str] = [_fingerprint(c) for c in state.cas if c.not_valid_after_utc <= now]
    if (
        issue_ca is None
        and issue_serving is None
        and leaf is not None
        and active is not None
        and leaf_ca is active
    ):
        # Stage 3: the serving certificate comes from the active CA; once every replica has
        # had time to load it, nothing signed by an older CA is served any more.
        settled_at = _issued_at(leaf, settings) + settings.propagation_grace
        olds = [c for c in trusted if c is not active]
        if olds and now >= settled_at:
            retire.extend(_fingerprint(c) for c in olds)
        elif olds:
            due.append(settled_at)
    for ca in trusted:
        if ca is not active:
            due.append(ca.not_valid_after_utc)
    if issue_ca or issue_serving:
        due.append(now + settings.propagation_grace)

    return Plan(
        issue_ca=issue_ca,
        issue_serving=issue_serving,
        retire=tuple(dict.fromkeys(retire)),
        next_check=min(due) if due else now + settings.propagation_grace,
    )


# --------------------------------------------------------------------------- issuing


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _new_ca(now: dt.datetime, settings: CertSettings) -> tuple[x509.Certificate, PrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    # A distinct subject per CA: during a rollover two CAs are trusted at once, and clients
    # that build chains by subject must never confuse them.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airlock"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"airlock-webhook-ca@{int(now.timestamp())}"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - settings.clock_skew)
        .not_valid_after(now + settings.ca_validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_serving(
    ca: x509.Certificate, ca_key: PrivateKey, now: dt.datetime, settings: CertSettings
) -> tuple[x509.Certificate, PrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = serving_dns_names(settings)
    not_after = min(now + settings.cert_validity, ca.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - settings.clock_skew)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def execute(
    plan: Plan,
    secret_data: Mapping[str, bytes] | None,
    now: dt.datetime,
    settings: CertSettings,
) -> dict[str, bytes]:
    """The Secret's new data after carrying out ``plan`` (unchanged data when nothing is due).

    ``ca.crt`` (the caBundle) lists the active CA first, then the older CAs still trusted.
    """
    data = dict(secret_data or {})
    if not plan.changed:
        return data
    state = read_state(data)
    ca, ca_key = state.active_ca, state.ca_key
    olds = [c for c in state.cas if c is not ca]
    if plan.issue_ca or ca is None:
        if ca is not None:
            olds.insert(0, ca)
        ca, ca_key = _new_ca(now, settings)
        data["ca.key"] = _pem_key(ca_key)
    if plan.issue_serving:
        leaf, leaf_key = _new_serving(ca, ca_key, now, settings)
        data["tls.crt"] = _pem_cert(leaf)
        data["tls.key"] = _pem_key(leaf_key)
    retired = set(plan.retire)
    keep = [c for c in olds if _fingerprint(c) not in retired and c.not_valid_after_utc > now]
    bundle = [ca, *keep[: _MAX_TRUSTED_CAS - 1]]
    data["ca.crt"] = b"".join(_pem_cert(c) for c in bundle)
    return data


def serving_expiry(secret_data: Mapping[str, bytes] | None) -> dt.datetime | None:
    """notAfter of the serving certificate, for the expiry metric."""
    leaf = read_state(secret_data).leaf
    return None if leaf is None else leaf.not_valid_after_utc


# --------------------------------------------------------------------------- the cluster side

Leading = Callable[[], Awaitable[bool]]


def _decode(data: Mapping[str, str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}


def _encode(data: Mapping[str, bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v).decode("ascii") for k, v in sorted(data.items())}


class CertRotator:
    """Keeps the Secret and every webhook's caBundle current; :meth:`run` until stopped.

    Only the active controller replica writes (``leading``, the peering check); a standby
    replica still reads the Secret to export the expiry metric. Every call goes through the
    controller's Kubernetes seam (:class:`~airlock.controller.kube.Kube`).
    """

    def __init__(
        self,
        settings: CertSettings,
        api: Kube | client.ApiClient,
        *,
        leading: Leading | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        """``api`` is the controller's :class:`~airlock.controller.kube.Kube`, or a client one
        is made on."""
        self.settings = settings
        self.kube = api if isinstance(api, Kube) else Kube(api)
        self.leading = leading
        self.clock = clock
        self._wake = asyncio.Event()

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self.kube.call(fn, *args, **kwargs)

    def wake(self) -> None:
        """Check now (for example after the Secret was deleted)."""
        self._wake.set()

    async def check_once(self) -> Plan:
        """One pass: read, decide, write the Secret, patch caBundles, export the metric."""
        s = self.settings
        try:
            secret = await self._call(
                self.kube.core.read_namespaced_secret, s.secret_name, s.namespace
            )
        except KubeError as exc:
            if exc.status != 404:
                raise
            secret = None
        data = _decode(secret.data if secret is not None else None)
        now = self.clock()
        if s.mode == "external":
            self._export(data)
            return Plan(next_check=now + dt.timedelta(seconds=s.check_interval))
        annotations = (secret.metadata.annotations or {}) if secret is not None else {}
        renew = annotations.get(RENEW_ANNOTATION)
        pending = renew if renew and renew != annotations.get(RENEWED_ANNOTATION) else None
        plan = plan_rotation(data, now, s, renew_requested=pending is not None)
        if self.leading is not None and not await self.leading():
            self._export(data)
            return plan
        if plan.changed:
            data = execute(plan, data, now, s)
            if pending is not None and secret is not None:
                secret.metadata.annotations = {**annotations, RENEWED_ANNOTATION: pending}
            await self._write_secret(secret, data)
            for line in plan.describe():
                _log.info("webhook TLS: %s", line)
        await self.patch_ca_bundles(data.get("ca.crt", b""))
        self._export(data)
        return plan

    def _export(self, data: Mapping[str, bytes]) -> None:
        expiry = serving_expiry(data)
        if expiry is not None:
            metrics.WEBHOOK_CERTIFICATE_EXPIRY.set(expiry.timestamp())

    async def _write_secret(self, existing: Any, data: Mapping[str, bytes]) -> None:
        s = self.settings
        if existing is None:
            body = client.V1Secret(
                metadata=client.V1ObjectMeta(
                    name=s.secret_name,
                    namespace=s.namespace,
                    labels={"app.kubernetes.io/name": "airlock"},
                ),
                type="Opaque",
                data=_encode(data),
            )
            await self._call(self.kube.core.create_namespaced_secret, s.namespace, body)
            return
        # Replace with the resourceVersion we read: a concurrent writer makes this fail (409)
        # instead of one rotation silently undoing the other; the next pass re-plans.
        existing.data = _encode(data)
        await self._call(
            self.kube.core.replace_namespaced_secret, s.secret_name, s.namespace, existing
        )

    async def patch_ca_bundles(self, bundle: bytes) -> list[str]:
        """Set every webhook's caBundle in the named configurations; returns what was patched."""
        if not bundle:
            return []
        wanted = base64.b64encode(bundle).decode("ascii")
        patched: list[str] = []
        admission = self.kube.admission
        for name in self.settings.webhook_configurations:
            for read, patch, kind in (
                (
                    admission.read_validating_webhook_configuration,
                    admission.patch_validating_webhook_configuration,
                    "ValidatingWebhookConfiguration",
                ),
                (
                    admission.read_mutating_webhook_configuration,
                    admission.patch_mutating_webhook_configuration,
                    "MutatingWebhookConfiguration",
                ),
            ):
                try:
                    obj = await self._call(read, name)
                except KubeError as exc:
                    if exc.status == 404:
                        continue  # not installed (yet): nothing to patch
                    raise
                ops = _bundle_patch(obj.webhooks or [], wanted)
                if ops:
                    await self._call(patch, name, ops)
                    patched.append(f"{kind}/{name}")
                    _log.info("caBundle updated in %s/%s", kind, name)
        return patched

    async def run(self, stop: asyncio.Event) -> None:
        """Check, sleep until the next step is due (or ``check_interval``), repeat until stop."""
        interval = self.settings.check_interval
        while not stop.is_set():
            delay = interval
            try:
                plan = await self.check_once()
                until_due = (plan.next_check - self.clock()).total_seconds()
                delay = max(1.0, min(interval, until_due))
            except KubeError as exc:
                delay = min(interval, 30.0)
                _log.warning("webhook TLS check failed: %s", exc)
            self._wake.clear()
            waiters = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self._wake.wait()),
            ]
            try:
                await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()


def _bundle_patch(webhooks: Sequence[Any], wanted: str) -> list[dict[str, Any]]:
    """JSON-patch operations setting caBundle on each webhook whose bundle differs.

    Each replace is guarded by a ``test`` of the webhook's name, so a configuration rewritten
    between our read and our patch (a helm upgrade reordering webhooks) fails the patch
    instead of putting a bundle on the wrong entry.
    """
    ops: list[dict[str, Any]] = []
    for i, hook in enumerate(webhooks):
        config = hook.client_config
        if config is not None and config.ca_bundle == wanted:
            continue
        ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": hook.name})
        ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": wanted})
    return ops


def register_certs(
    registry: kopf.OperatorRegistry,
    settings: CertSettings,
    *,
    kube: Kube | client.ApiClient,
    leading: Leading | None = None,
) -> CertRotator:
    """Run a :class:`CertRotator` for as long as the operator of ``registry`` runs.

    Not a kopf timer: kopf puts a finalizer on every object that carries a timer or daemon, and
    a finalizer on a webhook configuration (or the Secret) would block ``helm uninstall`` once
    the controller is gone. A startup handler starts the loop; a cleanup handler stops it.
    """
    rotator = CertRotator(settings, kube, leading=leading)
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    @kopf.on.startup(registry=registry, id="airlock-certificates-start")
    async def _start(**_: Any) -> None:
        stop.clear()
        tasks.append(asyncio.create_task(rotator.run(stop), name="airlock certificates"))

    @kopf.on.cleanup(registry=registry, id="airlock-certificates-stop")
    async def _stop(**_: Any) -> None:
        stop.set()
        while tasks:
            task = tasks.pop()
            await asyncio.gather(task, return_exceptions=True)

    return rotator


def remove_webhook_configurations(api: client.ApiClient, names: Sequence[str]) -> list[str]:
    """Delete the named Validating- and MutatingWebhookConfigurations; returns what was deleted.

    For the emergency runbook (``airlock uninstall-webhooks``): once they are gone the
    API server stops calling Airlock, whatever state the webhook pods are in. Missing ones are
    fine (the call is idempotent). Synchronous on purpose: the command line has no event loop,
    so this is the one call that does not go through :class:`~airlock.controller.kube.Kube`.
    """
    admission = client.AdmissionregistrationV1Api(api)
    deleted: list[str] = []
    for name in names:
        for delete, kind in (
            (admission.delete_validating_webhook_configuration, "ValidatingWebhookConfiguration"),
            (admission.delete_mutating_webhook_configuration, "MutatingWebhookConfiguration"),
        ):
            try:
                delete(name, _request_timeout=REQUEST_TIMEOUT)
            except ApiException as exc:
                if exc.status == 404:
                    continue
                raise AirlockError(f"cannot delete {kind} {name}: HTTP {exc.status}") from None
            deleted.append(f"{kind}/{name}")
    return deleted
