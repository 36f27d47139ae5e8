"""The HTTPS admission server: aiohttp's HTTP/1.1 protocol, TLS with certificate reload, four
routes (dispatched by path: aiohttp's low-level server, no router).

``POST /validate`` and ``POST /mutate`` take AdmissionReview v1 and answer it; ``GET /healthz``
says the process serves; ``GET /readyz`` says the watches have delivered their initial state
(a replica that answered before that would judge workloads against a half-known cluster).
Metrics are served on a separate plain-HTTP port (:mod:`airlock.metrics_http`).

The hot path decodes JSON, calls the handler and encodes JSON: no logging of objects, no awaits
besides reading the body. Certificates are checked every ``reload_interval`` seconds; a changed
pair is loaded *into the existing* :class:`ssl.SSLContext`, which makes every new TLS connection
use it while established keep-alive connections finish with the old one, so rotation needs no
restart and drops nothing. A pair that fails to load (the key written before the certificate, a
mismatch) is ignored and the old one stays in use until a loadable pair appears.

Hostile clients
---------------

The port is reachable by every pod that can reach the Service, so what a connection may cost is
bounded here (settings in :class:`~.settings.ServerSettings`):

* **Every answer is a JSON document**: an AdmissionReview, or a 4xx ``{"error": "..."}`` of one
  line, including for requests aiohttp cannot parse. Nothing a client sends is logged with a
  stack trace, and no log line quotes what it sent.
* **No decompression**: a ``Content-Encoding`` other than ``identity`` gets 415 before the body
  is read (the API server never compresses reviews), and aiohttp's own decompression is off.
* **Deadlines** for the request head (``header_timeout``, from the TLS handshake or from the
  first byte of a later request on a keep-alive connection) and the body (``body_timeout``, from
  the end of the head). aiohttp's server has only an idle keep-alive timeout, which a client
  sending one byte every few seconds never triggers; so each connection carries the deadline of
  the phase it is in (two float stores per request, no timer objects), one task checks them
  four times per timeout (at most once a second), and a connection past its deadline is
  aborted without an answer. The TLS handshake and a closing connection's TLS goodbye get
  ``header_timeout`` too. Idle keep-alive connections have no deadline: aiohttp closes them
  after ``keepalive_timeout``.
* **A cap on connections** (``max_connections``), decided the moment a connection is accepted,
  before any TLS work: over the cap it is closed at once. That is why TLS is layered on each
  accepted connection here (with asyncio's own TLS protocol), not by ``create_server(ssl=...)``,
  where a connection only reaches the application after its handshake. The TLS read buffer is
  64 KiB instead of asyncio's 256 KiB, allocated up front for every connection: a connection
  costs about 100 KB instead of 300 KB. (``asyncio.sslproto.SSLProtocol`` is what
  ``create_server(ssl=...)`` itself uses; its constructor is the same from Python 3.11 on, and
  the tests exercise every path through it.)
* **Bodies**: ``max_body_bytes`` per request, and ``max_pending_body_bytes`` over all requests
  being received at once (429 past it), so slow senders of large bodies cannot add up.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import os
import ssl
import tempfile
import traceback
import weakref
from asyncio import sslproto
from collections.abc import Callable, Iterator
from pathlib import Path
from time import monotonic, perf_counter
from typing import Any, ClassVar, Final, cast

import orjson
from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import HttpProcessingError, HttpVersion11, RawRequestMessage
from aiohttp.streams import StreamReader
from cryptography import x509

from airlock import metrics
from airlock.compilecache import regex
from airlock.errors import AdmissionError
from airlock.metrics_http import bound_port, start_metrics_server

from .handler import Handler, handle_mutate, handle_validate
from .review import encode
from .settings import AdmissionSettings, WebhookSettings
from .store import StateStore
from .supply import ImageFacts, SupplyChain

__all__ = ["WebhookServer", "run_webhook", "server_ssl_context"]

log = logging.getLogger("airlock.admission")

_JSON: Final = "application/json"


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


_IDENTITY: Final = frozenset({"", "identity"})
# A Go duration (time.ParseDuration's syntax), as the API server writes its deadline in a
# webhook's URL: ``?timeout=5s``, rounded up to whole seconds.
_GO_UNIT: Final = "(ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
_GO_DURATION: Final = regex(
    r"[-+]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)" + _GO_UNIT.replace("(", "(?:") + r")+|[-+]?0"
)
_GO_PART: Final = regex(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)" + _GO_UNIT)
_GO_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_UNREADY_POLL: Final = 0.05


def go_duration(text: str | None) -> float | None:
    """Seconds in a Go duration such as ``10s`` or ``1m30s``; None when absent or not one."""
    if not text or _GO_DURATION.fullmatch(text) is None:
        return None
    seconds = sum(float(n) * _GO_UNITS[unit] for n, unit in _GO_PART.findall(text))
    return -seconds if text[0] == "-" else seconds


# What a client can make aiohttp raise: its connection failing, or bytes that are not HTTP.
_CLIENT_ERRORS: Final = (OSError, HttpProcessingError, web.RequestPayloadError)
_TLS_READ_BUFFER: Final = 64 * 1024


class _Warning:
    """A warning about load, logged at most once a minute with how often it happened."""

    __slots__ = ("_clock", "_count", "_message", "_next")

    def __init__(self, message: str, clock: Callable[[], float]) -> None:
        self._message, self._clock = message, clock
        self._count, self._next = 0, 0.0

    def __call__(self, *args: object) -> None:
        self._count += 1
        now = self._clock()
        if now >= self._next:
            log.warning(self._message + " (%d time(s) in the last minute)", *args, self._count)
            self._count, self._next = 0, now + 60.0


class _Connection(web.RequestHandler):
    """aiohttp's HTTP/1.1 protocol, with the deadline of the request phase it is in.

    ``deadline`` (loop time) is set for the head when the connection starts (after the TLS
    handshake) and at the first byte after a finished request, moved to the body's when the head
    is parsed (:meth:`WebhookServer._request`), and cleared when the route handler returns.
    ``None`` means idle (or a request being answered): only aiohttp's keep-alive timeout applies.
    """

    __slots__ = ("_dropping", "_head_timeout", "body", "deadline")

    def __init__(
        self,
        manager: web.Server,
        *,
        loop: asyncio.AbstractEventLoop,
        head_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._head_timeout = head_timeout
        self.deadline: float | None = None
        self._dropping = False  # reading a body left unread by an early answer
        self.body: StreamReader | None = None
        """The body of the latest request (set by :meth:`WebhookServer._request`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.deadline = self._loop.time() + self._head_timeout

    def data_received(self, data: bytes) -> None:
        body = self.body
        if data and self.deadline is None:
            # the first byte after an answer: of the next request's head, or of a body left
            # unread by an early answer (a 413, a 503), which aiohttp reads and drops; either
            # must come in time
            self.deadline = self._loop.time() + self._head_timeout
            self._dropping = body is not None and not body.is_eof()
        super().data_received(data)
        if (
            self._dropping
            and self.body is body  # no next request parsed meanwhile (it has its own deadline)
            and body is not None
            and body.is_eof()
            and body.exception() is None
        ):
            # the dropped body is whole: the connection idles under the keep-alive timeout (the
            # API server reuses pooled connections; one closed under it fails a Pod's POST)
            self.deadline = None
            self._dropping = False

    def connection_lost(self, exc: BaseException | None) -> None:
        body, self.body = self.body, None
        super().connection_lost(exc)  # fails the body a route handler is still reading
        if body is not None and not body.is_eof() and body.exception() is None:
            # Nobody reads it but aiohttp, discarding what is left of a request answered
            # without its body (a 413, a 415): it would wait its whole lingering time (10 s)
            # for bytes that can no longer come, holding the connection's task.
            body.feed_eof()

    def expire(self) -> None:
        """Drop the connection at once: no answer, no TLS goodbye (the client is too slow)."""
        self.deadline = None
        if self.transport is not None:
            self.transport.abort()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer when aiohttp cannot parse a request (4xx) or a route handler raised (500).

        aiohttp logs both with a stack trace and answers in plain text; a malformed request is
        the client's doing, so it gets one debug line and a JSON error, and the connection is
        closed (the stream cannot be trusted past a parse error).
        """
        if status >= 500:  # a bug in this module, not the client's bytes
            log.error(
                "internal error in the admission server: %s\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__ if exc else None)).rstrip(),
            )
            reason = "internal error"
        else:
            what = type(exc).__name__ if exc is not None else str(status)
            log.debug("malformed HTTP request from %s: %s", request.remote, what)
            reason = f"malformed HTTP request ({what})"
        if request.writer.output_size > 0:
            raise ConnectionError("an answer was already started: cannot send an error")
        response = _error(status, reason)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """What aiohttp's protocol loop reports outside route handlers.

        A client's doing (a broken body fed while aiohttp discarded the rest of a refused
        request, a peer gone mid-answer) is one line without a stack trace; anything else is a
        bug, in aiohttp or here, and keeps its stack.
        """
        exc = kwargs.get("exc_info")
        if isinstance(exc, _CLIENT_ERRORS):
            log.info("admission connection closed after %s", type(exc).__name__)
        else:
            log.error(*args, **kwargs)


class _TLSConnection(sslproto.SSLProtocol):
    """asyncio's server-side TLS over one accepted TCP connection, counted while it is open."""

    max_size: ClassVar[int] = _TLS_READ_BUFFER  # asyncio's default is 256 KiB per connection

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        app: _Connection,
        context: ssl.SSLContext,
        *,
        timeout: float,
        closed: Callable[[_TLSConnection], None],
    ) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        waiter.add_done_callback(_consume)  # a failed handshake is no one's business
        super().__init__(
            loop,
            app,
            context,
            waiter,
            server_side=True,
            ssl_handshake_timeout=timeout,  # type: ignore[arg-type]  # typeshed: int; any number
            ssl_shutdown_timeout=timeout,
        )
        self._closed_callback = closed
        self.tcp: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tcp = transport
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            self.tcp = None
            self._closed_callback(self)


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class _Refused(asyncio.Protocol):
    """A connection over the cap: closed as soon as it is accepted, before any TLS work."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).abort()


class WebhookServer:
    """The admission listener, the metrics listener and the certificate watcher, as one unit.

    ``await start()`` binds the ports (0 picks free ones: see :attr:`port` and
    :attr:`metrics_port`); ``await stop()`` lets in-flight requests finish and closes everything.
    """

    def __init__(
        self, settings: WebhookSettings, store: StateStore, supply: SupplyChain | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.supply = supply
        """Registry lookups (tag pins, signatures) before the handler; None: no registry I/O."""
        self.ssl_context = server_ssl_context(settings.tls.cert_file, settings.tls.key_file)
        self._stamps = self._read_stamps()
        self._failed_stamps: tuple[tuple[int, int, int], ...] | None = None
        _record_expiry(settings.tls.cert_file.read_bytes())
        self._http: web.Server | None = None
        self._listener: asyncio.Server | None = None
        self._open: weakref.WeakSet[_TLSConnection] = weakref.WeakSet()
        self._pending_body = 0
        self._metrics_runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._refused = _Warning(
            "refusing connections: %d open, the limit (--max-connections)", monotonic
        )
        self._unready = _Warning(
            "answering reviews with 503: the initial listings are not loaded yet (/readyz fails)",
            monotonic,
        )
        self._busy = _Warning(
            "refusing requests (429): their bodies would exceed %d bytes being received at "
            "once (--max-pending-body-bytes)",
            monotonic,
        )
        self.draining = False
        """Set by :meth:`stop`: answers close their connection, ``/readyz`` fails."""

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        server = self.settings.server
        loop = asyncio.get_running_loop()
        self._http = http = web.Server(self._answer, request_factory=self._request, loop=loop)
        self._listener = await loop.create_server(
            functools.partial(self._accept, http, loop),
            server.host,
            server.port,
            backlog=1024,
            reuse_address=True,
        )
        if self.settings.metrics.enabled:
            self._metrics_runner = await start_metrics_server(
                self.settings.metrics.host, self.settings.metrics.port
            )
        self._tasks = [
            asyncio.create_task(self._watch_certificate(), name="airlock-cert-watch"),
            asyncio.create_task(self._enforce_deadlines(), name="airlock-deadlines"),
        ]
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
        server = self.settings.server
        if self._listener is not None and server.drain_seconds > 0 and not self.draining:
            self.draining = True
            log.info("draining for %.0f s: answering with Connection: close", server.drain_seconds)
            await asyncio.sleep(server.drain_seconds)
        self.draining = True
        if self._listener is not None:
            self._listener.close()  # no new connections
        if self._http is not None:
            self._http.pre_shutdown()  # idle keep-alive connections close now, busy ones after
            await self._http.shutdown(server.shutdown_timeout)
        for tls in list(self._open):  # handshakes in progress, TLS goodbyes not yet said
            if tls.tcp is not None:
                cast(asyncio.Transport, tls.tcp).abort()
        for _ in range(100):  # their callbacks run on the next turns of the loop
            if not self._open:
                break
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._listener is not None:
            await self._listener.wait_closed()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        self._listener = self._http = self._metrics_runner = None

    @property
    def port(self) -> int:
        if self._listener is None or not self._listener.sockets:
            raise RuntimeError("server not started")
        return int(self._listener.sockets[0].getsockname()[1])

    @property
    def metrics_port(self) -> int | None:
        return None if self._metrics_runner is None else bound_port(self._metrics_runner)

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed (TLS handshakes in progress included)."""
        return len(self._open)

    # -- connections ----------------------------------------------------------------------------

    def _accept(self, http: web.Server, loop: asyncio.AbstractEventLoop) -> asyncio.BaseProtocol:
        """The protocol of a connection just accepted (asyncio's protocol factory)."""
        server = self.settings.server
        if len(self._open) >= server.max_connections:
            self._refused(len(self._open))
            return _Refused()
        conn = _Connection(
            http,
            loop=loop,
            head_timeout=server.header_timeout,
            keepalive_timeout=server.keepalive_timeout,
            access_log=None,
            auto_decompress=False,
        )
        tls = _TLSConnection(
            loop,
            conn,
            self.ssl_context,
            timeout=server.header_timeout,
            closed=self._open.discard,
        )
        self._open.add(tls)
        return tls

    def _request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: web.RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        """aiohttp's request factory, called once a request's head is parsed."""
        loop = asyncio.get_running_loop()
        conn = cast(_Connection, protocol)
        conn.deadline = loop.time() + self.settings.server.body_timeout
        conn.body = payload
        return web.BaseRequest(
            message,
            payload,
            protocol,
            writer,
            task,
            loop,
            client_max_size=self.settings.server.max_body_bytes,
        )

    async def _enforce_deadlines(self) -> None:
        server = self.settings.server
        tick = min(1.0, max(0.05, min(server.header_timeout, server.body_timeout) / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(tick)
            if self._http is None:
                continue
            now = loop.time()
            for conn in self._http.connections:
                deadline = cast(_Connection, conn).deadline
                if deadline is not None and now > deadline:
                    cast(_Connection, conn).expire()

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

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            path = request.path
            if path == "/validate":
                return await self._review(request, handle_validate)
            if path == "/mutate":
                return await self._review(request, handle_mutate)
            if path in ("/healthz", "/readyz"):
                if request.method not in ("GET", "HEAD"):
                    return _not_allowed("GET")
                return self._healthz() if path == "/healthz" else self._readyz()
            return _error(404, "not found: the endpoints are /validate, /mutate, /healthz, /readyz")
        finally:
            cast(_Connection, request.protocol).deadline = None

    async def _answer(self, request: web.BaseRequest) -> web.StreamResponse:
        response = await self._dispatch(request)
        if hdrs.EXPECT in request.headers and not request.content.is_eof():
            # answered before "100 Continue": the client may not send the body and reuse the
            # connection, and its next request would be read as this body
            response.force_close()
        return response

    async def _review(self, request: web.BaseRequest, handler: Handler) -> web.StreamResponse:
        if request.method != "POST":
            return _not_allowed("POST")
        if not self.store.ready and not await self._await_sync(request):
            self._unready()
            waiting = ", ".join(self.store.pending_sync) or "nothing (stopping)"
            unready = _error(
                503,
                f"airlock is not ready: the initial listing of {waiting} is not loaded, so the "
                "request is not judged (the webhook's failurePolicy applies)",
            )
            return self._closing(unready)  # aiohttp reads and drops the unread body
        server = self.settings.server
        encodings = request.headers.getall(hdrs.CONTENT_ENCODING, None)
        if encodings is not None and any(e.strip().lower() not in _IDENTITY for e in encodings):
            return self._closing(
                _error(
                    415, "Content-Encoding is not supported: send the AdmissionReview uncompressed"
                )
            )
        limit = server.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            return self._closing(_error(413, f"request body larger than {limit} bytes"))
        reserved = limit if length is None else length
        if self._pending_body + reserved > server.max_pending_body_bytes:
            self._busy(server.max_pending_body_bytes)
            return self._closing(
                _error(429, "too many request bodies being received at once; retry")
            )
        self._pending_body += reserved
        try:
            if hdrs.EXPECT in request.headers:
                refused = await _continue(request)
                if refused is not None:
                    return self._closing(refused)
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._closing(_error(413, f"request body larger than {limit} bytes"))
        except Exception as exc:  # the client's bytes or its connection, never Airlock's doing
            log.debug("request body not read: %s", type(exc).__name__)
            return self._closing(_error(400, "request body could not be read"))
        finally:
            self._pending_body -= reserved
        started = perf_counter()
        try:
            data = orjson.loads(body)
        except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
            return self._closing(_error(400, "body is not valid JSON (or nested too deeply)"))
        admission: AdmissionSettings = self.settings.admission
        images = None
        if self.supply is not None:
            images = await self._images(data, mutating=handler is handle_mutate)
        try:
            answer = handler(data, self.store, admission, started=started, images=images)
        except AdmissionError as exc:
            return self._closing(_error(400, str(exc)))
        return self._closing(web.Response(body=encode(answer), content_type=_JSON))

    async def _await_sync(self, request: web.BaseRequest) -> bool:
        """Wait for the initial listings, before the body is read (it is not counted against
        ``max_pending_body_bytes``: it waits in the connection's read buffers, under 1 MB a
        connection, and only until the listings are in); True once the store is ready, False
        when ``unready_wait`` ends, the server stops, or the API server's deadline nears: the
        answer must reach it a second before its ``?timeout=`` (rounded up to whole seconds),
        leaving the registry step its budget."""
        server = self.settings.server
        wait = server.unready_wait
        deadline = go_duration(request.query.get("timeout"))
        if deadline is not None:
            budget = self.supply.budget if self.supply is not None else 0.0
            wait = min(wait, deadline - 1.0 - budget)
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        conn = cast(_Connection, request.protocol)
        conn.deadline = until + server.body_timeout  # the body's clock starts after the wait
        try:
            while not self.store.ready:
                left = until - loop.time()
                if left <= 0 or self.draining:
                    return False
                await asyncio.sleep(min(_UNREADY_POLL, left))
            return True
        finally:
            conn.deadline = loop.time() + server.body_timeout

    async def _images(self, data: object, *, mutating: bool) -> ImageFacts | None:
        """The registry answers this review needs (None: none, or the step failed: a bug here
        must not cost an admission; the validating webhook still judges what was admitted)."""
        assert self.supply is not None
        try:
            return await self.supply.facts(data, self.store, mutating=mutating)
        except Exception as exc:
            log.error(
                "internal error in the registry step: %s\n%s",
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            return None

    def _closing(self, response: web.Response) -> web.Response:
        if self.draining:
            response.force_close()  # Connection: close, then the socket is closed
        return response

    def _healthz(self) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type=_JSON)

    def _readyz(self) -> web.Response:
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


def _not_allowed(method: str) -> web.Response:
    response = _error(405, f"method not allowed: use {method}")
    response.headers[hdrs.ALLOW] = method if method == "POST" else "GET, HEAD"
    return response


async def _continue(request: web.BaseRequest) -> web.Response | None:
    """Answer ``Expect: 100-continue`` (curl sends it for large bodies) as aiohttp's router does."""
    if request.headers[hdrs.EXPECT].lower() != "100-continue" or request.version != HttpVersion11:
        return _error(417, "only 'Expect: 100-continue' is supported")
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.writer.output_size = 0
    return None


async def run_webhook(
    settings: WebhookSettings, store: StateStore, supply: SupplyChain | None = None
) -> None:
    """Serve admission and metrics until cancelled; then stop gracefully."""
    server = WebhookServer(settings, store, supply)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
        if supply is not None:
            await supply.resolver.client.close()
