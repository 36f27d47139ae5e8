"""The HTTPS admission server: aiohttp, TLS with certificate reload, four routes.

``POST /validate`` and ``POST /mutate`` take AdmissionReview v1 and answer it; ``GET /healthz``
says the process serves; ``GET /readyz`` says the watches have delivered their initial state
(a replica that answered before that would judge workloads against a half-known cluster).
Metrics are served on a separate plain-HTTP port (:mod:`.metrics_http`).

The hot path decodes JSON, calls the handler and encodes JSON: no logging of objects, no awaits
besides reading the body. Certificates are checked every ``reload_interval`` seconds; a changed
pair is loaded *into the existing* :class:`ssl.SSLContext`, which makes every new TLS connection
use it while established keep-alive connections finish with the old one, so rotation needs no
restart and drops nothing. A pair that fails to load (the key written before the certificate, a
mismatch) is ignored and the old one stays in use until a loadable pair appears.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import ssl
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from time import perf_counter
from typing import Final

import orjson
from aiohttp import web
from cryptography import x509

from airlock import metrics
from airlock.errors import AdmissionError

from .handler import handle_mutate, handle_validate
from .metrics_http import bound_port, start_metrics_server
from .review import AdmissionReview, encode
from .settings import AdmissionSettings, WebhookSettings
from .store import StateStore

__all__ = ["WebhookServer", "run_webhook", "server_ssl_context"]

log = logging.getLogger("airlock.admission")

_JSON: Final = "application/json"

Handler = Callable[..., AdmissionReview]


def server_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context with modern defaults (TLS 1.2+) and the given certificate."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


@contextlib.contextmanager
def _frozen_copy(data: bytes, name: str) -> Iterator[str]:
    """A path whose content is ``data`` and cannot change under us (an in-memory file on Linux)."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:  # not Linux: a private temporary file
        with tempfile.TemporaryDirectory(prefix="airlock-tls-") as tmp:
            path = Path(tmp, name)
            path.write_bytes(data)
            path.chmod(0o600)
            yield str(path)
        return
    fd = memfd_create(name, 0)
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _load_pair(live: ssl.SSLContext, cert_file: Path, key_file: Path) -> bytes:
    """Load a certificate pair into ``live`` only if it loads cleanly on its own.

    ``SSLContext.load_cert_chain`` installs the certificate before it reads the key, so a failed
    call can leave a context with a new certificate and the old key, breaking every handshake.
    The files are therefore read once, the pair is tried on a scratch context, and the very same
    bytes are then loaded into the live one: a rotation racing with the read cannot interleave.
    """
    cert, key = cert_file.read_bytes(), key_file.read_bytes()
    with _frozen_copy(cert, "tls.crt") as cert_path, _frozen_copy(key, "tls.key") as key_path:
        scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        scratch.load_cert_chain(cert_path, key_path)
        live.load_cert_chain(cert_path, key_path)
    return cert


def _stamp(path: Path) -> tuple[int, int, int]:
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _record_expiry(pem: bytes) -> None:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return
    metrics.WEBHOOK_CERTIFICATE_EXPIRY.set(cert.not_valid_after_utc.timestamp())


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=json.dumps({"error": message}).encode(), content_type=_JSON
    )


class WebhookServer:
    """The admission listener, the metrics listener and the certificate watcher, as one unit.

    ``await start()`` binds the ports (0 picks free ones: see :attr:`port` and
    :attr:`metrics_port`); ``await stop()`` lets in-flight requests finish and closes everything.
    """

    def __init__(self, settings: WebhookSettings, store: StateStore) -> None:
        self.settings = settings
        self.store = store
        self.ssl_context = server_ssl_context(settings.tls.cert_file, settings.tls.key_file)
        self._stamps = self._read_stamps()
        self._failed_stamps: tuple[tuple[int, int, int], ...] | None = None
        _record_expiry(settings.tls.cert_file.read_bytes())
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.draining = False
        """Set by :meth:`stop`: answers close their connection, ``/readyz`` fails."""

    # -- lifecycle ------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.settings.server.max_body_bytes)
        app.router.add_post("/validate", self._validate)
        app.router.add_post("/mutate", self._mutate)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> None:
        server = self.settings.server
        runner = web.AppRunner(
            self.app(),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=server.shutdown_timeout,
        )
        await runner.setup()
        site = web.TCPSite(
            runner,
            server.host,
            server.port,
            ssl_context=self.ssl_context,
            backlog=1024,
            reuse_address=True,
        )
        await site.start()
        self._runner = runner
        if self.settings.metrics.enabled:
            self._metrics_runner = await start_metrics_server(
                self.settings.metrics.host, self.settings.metrics.port
            )
        self._watcher = asyncio.create_task(self._watch_certificate(), name="airlock-cert-watch")
        # Everything imported and built so far lives as long as the process: move it out of the
        # cyclic collector's reach, so full collections (triggered by the many short-lived
        # dicts of decoded reviews) do not rescan a few hundred thousand module-level objects
        # and show up as p99 latency spikes.
        gc.collect()
        gc.freeze()
        log.info(
            "admission server listening on %s:%d (metrics on %s)",
            server.host,
            self.port,
            self.metrics_port if self._metrics_runner is not None else "off",
        )

    async def stop(self) -> None:
        drain = self.settings.server.drain_seconds
        if self._runner is not None and drain > 0 and not self.draining:
            self.draining = True
            log.info("draining for %.0f s: answering with Connection: close", drain)
            await asyncio.sleep(drain)
        self.draining = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for runner in (self._runner, self._metrics_runner):
            if runner is not None:
                await runner.cleanup()
        self._runner = self._metrics_runner = None

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("server not started")
        return bound_port(self._runner)

    @property
    def metrics_port(self) -> int | None:
        return None if self._metrics_runner is None else bound_port(self._metrics_runner)

    # -- certificates ---------------------------------------------------------------------------

    def _read_stamps(self) -> tuple[tuple[int, int, int], ...]:
        tls = self.settings.tls
        return (_stamp(tls.cert_file), _stamp(tls.key_file))

    def reload_certificate(self) -> bool:
        """Reload the certificate pair if either file changed; True when a new pair is in use."""
        tls = self.settings.tls
        try:
            stamps = self._read_stamps()
        except OSError as exc:
            log.warning("cannot stat the serving certificate files: %s", exc)
            return False
        if stamps in (self._stamps, self._failed_stamps):
            return False
        try:
            pem = _load_pair(self.ssl_context, tls.cert_file, tls.key_file)
        except (OSError, ssl.SSLError) as exc:
            # Often a rotation caught between writing the two files: the next change retries.
            self._failed_stamps = stamps
            log.warning("new serving certificate not loaded, keeping the old one: %s", exc)
            return False
        self._stamps = stamps
        self._failed_stamps = None
        _record_expiry(pem)
        log.info("serving certificate reloaded from %s", tls.cert_file)
        return True

    async def _watch_certificate(self) -> None:
        interval = self.settings.tls.reload_interval
        while True:
            await asyncio.sleep(interval)
            self.reload_certificate()

    # -- routes ---------------------------------------------------------------------------------

    async def _validate(self, request: web.Request) -> web.Response:
        return await self._review(request, handle_validate)

    async def _mutate(self, request: web.Request) -> web.Response:
        return await self._review(request, handle_mutate)

    async def _review(self, request: web.Request, handler: Handler) -> web.Response:
        limit = self.settings.server.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            return _error(413, f"request body larger than {limit} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"request body larger than {limit} bytes")
        started = perf_counter()
        try:
            data = orjson.loads(body)
        except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
            return _error(400, "body is not valid JSON (or nested too deeply)")
        admission: AdmissionSettings = self.settings.admission
        try:
            answer = handler(data, self.store, admission, started=started)
        except AdmissionError as exc:
            return self._closing(_error(400, str(exc)))
        return self._closing(web.Response(body=encode(answer), content_type=_JSON))

    def _closing(self, response: web.Response) -> web.Response:
        if self.draining:
            response.force_close()  # Connection: close, then the socket is closed
        return response

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=_JSON)

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self.draining:
            return self._closing(
                web.Response(
                    status=503, body=b'{"ready":false,"draining":true}', content_type=_JSON
                )
            )
        if self.store.ready:
            return web.Response(body=b'{"ready":true}', content_type=_JSON)
        waiting = ", ".join(self.store.pending_sync)
        return web.Response(
            status=503,
            body=json.dumps({"ready": False, "waiting_for": waiting}).encode(),
            content_type=_JSON,
        )


async def run_webhook(settings: WebhookSettings, store: StateStore) -> None:
    """Serve admission and metrics until cancelled; then stop gracefully."""
    server = WebhookServer(settings, store)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
