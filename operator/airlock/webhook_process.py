"""The ``airlock webhook`` process: the admission server and its read-only watches, together.

Both run in one event loop over one :class:`~airlock.admission.store.StateStore`. What matters
is the order in which they stop. On SIGTERM (a rolling update, a deleted pod, a drained node):

1. the server drains (``ServerSettings.drain_seconds``): it keeps answering, each answer closing
   its keep-alive connection, so the API server moves its pooled connections to the other
   replicas; meanwhile the watches keep the state current;
2. the server stops listening and finishes what is in flight;
3. only then does kopf stop. kopf treats every task created after it started as its own and
   cancels those still running shortly after it stops: stopping it first would cut the
   connections aiohttp opened meanwhile, and the API server would see ``EOF`` on a review of a
   Pod, which the fail-closed Pod webhook turns into a failed creation.

If either part ends by itself (the port is taken, kopf fails), the other is stopped too: better
no webhook than one serving a picture that no longer updates.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from airlock.admission.server import run_webhook
from airlock.admission.settings import (
    AdmissionSettings,
    MetricsSettings,
    RegistrySettings,
    ServerSettings,
    TLSSettings,
    WebhookSettings,
)
from airlock.admission.store import StateStore
from airlock.admission.supply import SupplyChain
from airlock.controller.kube import Kube, api_client
from airlock.controller.watch import run_watchers
from airlock.detectors import FingerprintKey
from airlock.errors import AirlockError, KubeError
from airlock.registry import ImageResolver, Keychain, LookupCache, RegistryClient

__all__ = [
    "KubePullSecrets",
    "add_arguments",
    "serve_webhook",
    "settings_from_args",
    "supply_chain",
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``airlock webhook``; their defaults are the settings' defaults.

    Flags only: no setting is read from an environment variable, because the kubelet injects
    ``AIRLOCK_WEBHOOK_PORT=tcp://…`` and friends for the chart's Service ``airlock-webhook``.
    """
    server, metrics, tls = ServerSettings(), MetricsSettings(), TLSSettings()
    p.description = (
        "Serve AdmissionReviews over HTTPS (/validate, /mutate, /healthz, /readyz), with the "
        "policy, exceptions and namespace environments kept current by read-only watches. "
        "Settings come from flags only: environment variables such as AIRLOCK_WEBHOOK_PORT are "
        "what Kubernetes injects for a Service named airlock-webhook, so they are never read."
    )
    p.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="kubeconfig file (default: $KUBECONFIG, else in-cluster)",
    )
    p.add_argument("--host", default=server.host, help=f"address to bind ({server.host})")
    p.add_argument("--port", type=int, default=server.port, help=f"HTTPS port ({server.port})")
    p.add_argument("--metrics-host", default=metrics.host)
    p.add_argument(
        "--metrics-port",
        type=int,
        default=metrics.port,
        help=f"plain-HTTP /metrics port ({metrics.port}); 0 picks a free port",
    )
    p.add_argument(
        "--tls-cert-file",
        type=Path,
        default=tls.cert_file,
        help="PEM serving certificate chain, re-read when it changes on disk",
    )
    p.add_argument("--tls-key-file", type=Path, default=tls.key_file)
    p.add_argument("--policy-name", default="default", help="the BaselinePolicy in force (default)")
    p.add_argument(
        "--fingerprint-key-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="the installation's key for the fingerprints of detected credentials (the chart "
        "mounts its Secret; the controller reads the same file); without it fingerprints are "
        "unkeyed and confirm a guessed weak password",
    )
    p.add_argument(
        "--fail-open",
        action="store_true",
        default=AdmissionSettings().fail_open,
        help="admit (with a warning) when Airlock itself fails; default: deny",
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=server.drain_seconds,
        help="after SIGTERM, keep answering this long with Connection: close so the API server "
        f"moves its keep-alive connections to other replicas ({server.drain_seconds:g}; 0 stops "
        "at once)",
    )
    p.add_argument(
        "--unready-wait",
        type=float,
        default=server.unready_wait,
        metavar="SECONDS",
        help="a review received before the policy, namespaces and exceptions are first listed "
        "waits this long for them (bounded by the API server's timeout), then gets HTTP 503 so "
        f"the webhook's failurePolicy applies; never judged without them ({server.unready_wait:g})",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=server.header_timeout,
        metavar="SECONDS",
        help="close a connection that has not sent a request's head within this time: from the "
        "connection's start (TLS handshake included) or a later request's first byte "
        f"({server.header_timeout:g})",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=server.body_timeout,
        metavar="SECONDS",
        help="close a connection that has not sent a request's body within this time after "
        f"its head ({server.body_timeout:g})",
    )
    p.add_argument(
        "--keepalive-timeout",
        type=float,
        default=server.keepalive_timeout,
        metavar="SECONDS",
        help="close an idle keep-alive connection after this time; longer than the API "
        f"server's 90 s, so the API server closes its pooled connections first "
        f"({server.keepalive_timeout:g})",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=server.max_connections,
        metavar="N",
        help="open connections (TLS handshakes included) past which new ones are closed at "
        f"once ({server.max_connections}; about 100 KB each)",
    )
    p.add_argument(
        "--max-pending-body-bytes",
        type=int,
        default=server.max_pending_body_bytes,
        metavar="BYTES",
        help="request bodies being received at once, over all connections, past which a "
        "request is answered 429 unread (16 MiB; at least the 3 MiB largest review)",
    )
    registry = RegistrySettings()
    p.add_argument(
        "--registry-budget",
        type=float,
        default=registry.budget,
        metavar="SECONDS",
        help="time all registry lookups of one review may take (digest pins, signatures); "
        f"past it the object is admitted unpinned with a warning ({registry.budget:g})",
    )
    p.add_argument(
        "--read-pull-secrets",
        action="store_true",
        default=registry.read_pull_secrets,
        help="read the pod's and its ServiceAccount's imagePullSecrets to look up private "
        "images (needs get on secrets and serviceaccounts); default: anonymous lookups",
    )
    p.add_argument(
        "--registry-ca-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="PEM CAs trusted for every registry besides the system's",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def settings_from_args(args: argparse.Namespace) -> WebhookSettings:
    """:class:`WebhookSettings` from :func:`add_arguments`' flags; a bad value is an
    :class:`~airlock.errors.AirlockError` naming the flag."""
    for f in (args.tls_cert_file, args.tls_key_file):
        if not f.is_file():
            raise AirlockError(f"TLS file {f} does not exist (see --tls-cert-file/--tls-key-file)")
    key_file = getattr(args, "fingerprint_key_file", None)
    if key_file is not None:
        try:  # unreadable or too short: fail at start, naming the flag
            FingerprintKey.read(key_file)
        except AirlockError as exc:
            raise AirlockError(f"--fingerprint-key-file: {exc}") from None
    limits = {
        "--header-timeout": args.header_timeout,
        "--body-timeout": args.body_timeout,
        "--keepalive-timeout": args.keepalive_timeout,
        "--max-connections": args.max_connections,
    }
    for flag, value in limits.items():
        if not value > 0:
            raise AirlockError(f"{flag} must be positive, not {value}")
    if not args.drain_seconds >= 0:  # nan too
        raise AirlockError(f"--drain-seconds must not be negative, not {args.drain_seconds}")
    unready_wait = getattr(args, "unready_wait", ServerSettings().unready_wait)
    if not 0 <= unready_wait <= 30:  # nan too
        raise AirlockError(
            f"--unready-wait must be 0 to 30 seconds (the API server waits 30 s at most), "
            f"not {unready_wait}"
        )
    budget = getattr(args, "registry_budget", RegistrySettings().budget)
    if not 0 < budget <= 25:
        raise AirlockError(f"--registry-budget must be in (0, 25] seconds, not {budget}")
    ca_file = getattr(args, "registry_ca_file", None)
    if ca_file is not None and not ca_file.is_file():
        raise AirlockError(f"--registry-ca-file {ca_file} does not exist")
    server = ServerSettings(
        host=args.host,
        port=args.port,
        drain_seconds=args.drain_seconds,
        unready_wait=unready_wait,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keepalive_timeout=args.keepalive_timeout,
        max_connections=args.max_connections,
        max_pending_body_bytes=args.max_pending_body_bytes,
    )
    if server.max_pending_body_bytes < server.max_body_bytes:
        raise AirlockError(
            f"--max-pending-body-bytes must be at least {server.max_body_bytes} (the largest "
            "review), or the largest objects could never be admitted"
        )
    return WebhookSettings(
        tls=TLSSettings(cert_file=args.tls_cert_file, key_file=args.tls_key_file),
        server=server,
        metrics=MetricsSettings(host=args.metrics_host, port=args.metrics_port),
        admission=AdmissionSettings(fail_open=args.fail_open),
        registry=RegistrySettings(
            budget=budget,
            read_pull_secrets=getattr(args, "read_pull_secrets", False),
            ca_file=ca_file,
        ),
        policy_name=args.policy_name,
        fingerprint_key_file=key_file,
    )


_log = logging.getLogger(__name__)

_PULL_SECRET_TTL: Final = 30.0
_PULL_SECRET_ENTRIES: Final = 1024


class KubePullSecrets:
    """Pull Secrets through the Kubernetes API: the pod's ``imagePullSecrets``, then its
    ServiceAccount's, as kubelet uses them. Answers are kept ``ttl`` seconds per (namespace,
    names, ServiceAccount), and concurrent admissions wait for one read, so a Deployment's fifty
    pods cost one. A failed read is not kept. A Secret's content is never logged; a Secret that
    is missing or unreadable is skipped (kubelet skips it too)."""

    def __init__(self, kube: Kube, *, ttl: float = _PULL_SECRET_TTL) -> None:
        self.kube = kube
        self._cache: LookupCache[tuple[str, tuple[str, ...], str], Keychain] = LookupCache(
            ttl=ttl, failure_ttl=0, max_entries=_PULL_SECRET_ENTRIES
        )

    async def keychain(
        self, namespace: str, secret_names: Sequence[str], service_account: str
    ) -> Keychain:
        names = tuple(secret_names)
        found, _cached = await self._cache.get(
            (namespace, names, service_account),
            lambda: self._read(namespace, names, service_account),
        )
        return found

    async def _read(
        self, namespace: str, secret_names: tuple[str, ...], service_account: str
    ) -> Keychain:
        names = list(secret_names)
        try:
            account = await self.kube.call(
                self.kube.core.read_namespaced_service_account, service_account, namespace
            )
            names += [r.name for r in (account.image_pull_secrets or []) if r.name]
        except KubeError as exc:
            if exc.status != 404:
                raise
        # the Secrets read side by side: an admission waits for the slowest, not for the sum
        read = await asyncio.gather(*(self._secret(namespace, n) for n in dict.fromkeys(names)))
        return Keychain.from_secrets(s for s in read if s is not None)

    async def _secret(self, namespace: str, name: str) -> tuple[str, Mapping[str, str]] | None:
        try:
            secret = await self.kube.call(self.kube.core.read_namespaced_secret, name, namespace)
        except KubeError as exc:
            if exc.status in (403, 404):
                _log.info("pull secret %s/%s not readable: HTTP %s", namespace, name, exc.status)
                return None
            raise
        return secret.type or "", secret.data or {}


def supply_chain(settings: WebhookSettings, *, kubeconfig: str | None) -> SupplyChain:
    """The registry step of ``airlock webhook`` (it asks nothing unless the policy pins
    digests or lists signature keys)."""
    registry = settings.registry
    ca_file = str(registry.ca_file) if registry.ca_file is not None else None
    resolver = ImageResolver(
        RegistryClient(system_ca_file=ca_file),
        digest_ttl=registry.digest_ttl,
        signature_ttl=registry.signature_ttl,
        max_entries=registry.cache_entries,
    )
    pull_secrets = None
    if registry.read_pull_secrets:
        pull_secrets = KubePullSecrets(Kube(api_client(kubeconfig), timeout=registry.budget / 3))
    return SupplyChain(resolver, pull_secrets, budget=registry.budget)


async def serve_webhook(settings: WebhookSettings, *, kubeconfig: str | None) -> None:
    """Serve until SIGTERM/SIGINT (once kopf is up) or until either part fails; re-raise the
    first failure."""
    key_file = settings.fingerprint_key_file
    key = FingerprintKey.read(key_file) if key_file is not None else None
    if key is None:
        _log.warning(
            "no --fingerprint-key-file: credential fingerprints are unkeyed and can confirm a "
            "guessed password"
        )
    store = StateStore(settings.policy_name, fingerprint_key=key)
    stop_watching = asyncio.Event()
    terminating = asyncio.Event()
    supply = supply_chain(settings, kubeconfig=kubeconfig)
    server = asyncio.create_task(run_webhook(settings, store, supply), name="airlock webhook")
    watch = asyncio.create_task(
        run_watchers(
            store,
            kubeconfig=kubeconfig,
            policy_name=settings.policy_name,
            stop=stop_watching,
            on_signal=terminating.set,
        ),
        name="airlock watchers",
    )
    signalled: asyncio.Task[Any] = asyncio.create_task(terminating.wait())
    done, _ = await asyncio.wait({server, watch, signalled}, return_when=asyncio.FIRST_COMPLETED)
    if signalled in done:
        _log.info("stopping: draining the admission server before the watches")
    # the server first (its cancellation runs the drain), then the watches
    server.cancel()
    server_result = await asyncio.gather(server, return_exceptions=True)
    stop_watching.set()
    watch_result = await asyncio.gather(watch, return_exceptions=True)
    signalled.cancel()
    await asyncio.gather(signalled, return_exceptions=True)
    for task, (result,) in ((server, server_result), (watch, watch_result)):
        if (
            task in done
            and isinstance(result, BaseException)
            and not isinstance(result, asyncio.CancelledError)
        ):
            raise result
