"""The HTTP contract: malformed bodies, size limits, failure modes, health, metrics, TLS."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from airlock import metrics
from airlock.admission import StateStore
from airlock.admission.server import go_duration
from airlock.state import EvalContext
from cryptography import x509

from tests.admission.conftest import (
    ServerFactory,
    ServerThread,
    admission_review,
    loaded_store,
    test_settings,
)
from tests.admission.rawhttp import connect, exchange, read_answer, request_bytes
from tests.support.objects import SECRET_FRAGMENTS, leaky_pod
from tests.support.pki import TLSFiles, issue_serving_cert


def _post_raw(srv: ServerThread, body: bytes, path: str = "/validate") -> tuple[int, Any]:
    status, raw = srv.request("POST", path, body, {"Content-Type": "application/json"})
    return status, json.loads(raw)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "apiVersion"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "Pod"}', "kind"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request"),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", '
            b'"request": {"kind": {"group": "", "version": "v1", "kind": "Pod"}}}',
            "uid",
        ),
        (
            b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", '
            b'"request": {"uid": 42}}',
            "uid",
        ),
    ],
)
def test_malformed_bodies_get_400_with_a_short_json_error(
    webhook: ServerThread, body: bytes, needle: str
) -> None:
    for path in ("/validate", "/mutate"):
        status, answer = _post_raw(webhook, body, path)
        assert status == 400
        assert set(answer) == {"error"}
        assert needle in answer["error"]
        assert "Traceback" not in answer["error"]


def test_a_bad_request_with_a_known_uid_gets_an_admission_review_with_code_400(
    webhook: ServerThread,
) -> None:
    review = admission_review(leaky_pod("ml-prod"))
    review["request"]["operation"] = "PATCH"
    status, answer = _post_raw(webhook, json.dumps(review).encode())
    assert status == 200
    resp = answer["response"]
    assert resp["uid"] == review["request"]["uid"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 400
    assert "request.operation" in resp["status"]["message"]


def test_unknown_kinds_are_bounded_in_metrics(webhook: ServerThread) -> None:
    review = admission_review(leaky_pod("ml-prod"))
    review["request"]["kind"]["kind"] = "Kind" + "x" * 50
    review["request"]["object"]["kind"] = "Kind" + "x" * 50
    webhook.post_review("/validate", review)
    text = webhook.metrics_text()
    assert 'kind="other"' in text
    assert "Kindxxx" not in text


def test_oversized_body_gets_413(make_server: ServerFactory, tls_files: TLSFiles) -> None:
    from dataclasses import replace

    from tests.admission.conftest import test_settings

    settings = test_settings(tls_files)
    settings = replace(settings, server=replace(settings.server, max_body_bytes=64 * 1024))
    srv = make_server(settings=settings)
    review = admission_review(leaky_pod("ml-prod"))
    review["request"]["object"]["metadata"]["annotations"] = {"blob": "x" * 100_000}
    status, answer = _post_raw(srv, json.dumps(review).encode())
    assert status == 413
    assert "larger than 65536 bytes" in answer["error"]
    # the server still answers normally afterwards
    ok = srv.post_review("/validate", admission_review(leaky_pod("ml-dev")))
    assert ok["response"]["allowed"] is True


class BrokenStore(StateStore):
    """A store whose context cannot be built: stands in for any bug below the handler."""

    @property
    def context(self) -> EvalContext:
        raise ZeroDivisionError("boom " + SECRET_FRAGMENTS[0])


def test_internal_error_fails_closed_by_default(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    srv = make_server(store=loaded_store(store=BrokenStore()))
    review = admission_review(leaky_pod("ml-prod"))
    with caplog.at_level(logging.ERROR, logger="airlock.admission"):
        answer = srv.post_review("/validate", review)
    resp = answer["response"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 500
    assert resp["status"]["message"].startswith("airlock internal error")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert review["request"]["uid"] in logged
    assert "ZeroDivisionError" in logged
    assert "ml-prod/trainer" in logged
    for fragment in SECRET_FRAGMENTS:
        assert fragment not in logged
    # mutation always fails open: its patches are conveniences
    mutated = srv.post_review("/mutate", admission_review(leaky_pod("ml-prod")))
    assert mutated["response"]["allowed"] is True
    assert mutated["response"]["warnings"] == ["airlock internal error: admitted without mutation"]


def test_internal_error_fails_open_when_configured(make_server: ServerFactory) -> None:
    srv = make_server(store=loaded_store(store=BrokenStore()), fail_open=True)
    answer = srv.post_review("/validate", admission_review(leaky_pod("ml-prod")))
    assert answer["response"]["allowed"] is True
    assert answer["response"]["warnings"] == ["airlock internal error: admitted without checks"]
    text = srv.metrics_text()
    assert (
        'airlock_admission_requests_total{decision="error",environment="none",kind="Pod",'
        'operation="CREATE"}'
    ) in text


def test_healthz_and_readyz_follow_the_initial_sync(make_server: ServerFactory) -> None:
    store = loaded_store(synced=False)
    srv = make_server(store=store)
    assert srv.request("GET", "/healthz")[0] == 200
    status, raw = srv.request("GET", "/readyz")
    assert status == 503
    assert json.loads(raw)["waiting_for"] == "exceptions, namespaces, policy"
    srv.run(store.mark_synced, "policy")
    srv.run(store.mark_synced, "namespaces")
    assert srv.request("GET", "/readyz")[0] == 503
    srv.run(store.mark_synced, "exceptions")
    status, raw = srv.request("GET", "/readyz")
    assert status == 200
    assert json.loads(raw) == {"ready": True}


def _unready_server(
    make_server: ServerFactory, tls_files: TLSFiles, wait: float, **server: Any
) -> tuple[ServerThread, StateStore]:
    """A server whose store has not had its initial listings, waiting ``wait`` s for them."""
    base = test_settings(tls_files)
    store = loaded_store(synced=False)
    limits = replace(base.server, unready_wait=wait, **server)
    return make_server(store=store, settings=replace(base, server=limits)), store


def _posted(
    session: aiohttp.ClientSession, srv: ServerThread, tls_files: TLSFiles, review: bytes
) -> asyncio.Future[aiohttp.ClientResponse]:
    """A review POSTed in the background, its answer to be awaited."""
    return asyncio.ensure_future(
        session.post(
            srv.base + "/validate",
            data=review,
            headers={"Content-Type": "application/json"},
            ssl=tls_files.client_context(),
        )
    )


def test_a_review_before_the_initial_listings_is_never_judged_without_them(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    """Without its listings a webhook has no policy, and every namespace would be in audit: a
    privileged Pod would be admitted. The review gets 503 instead, so the API server applies the
    webhook's failurePolicy (the Pod webhook's Fail denies)."""
    base = test_settings(tls_files)
    store = StateStore()  # as a process starts: nothing listed yet
    srv = make_server(
        store=store, settings=replace(base, server=replace(base.server, unready_wait=0.2))
    )
    review = json.dumps(admission_review(leaky_pod("ml-prod"))).encode()
    for path in ("/validate", "/mutate"):
        status, answer = _post_raw(srv, review, path)
        assert status == 503, answer
        assert set(answer) == {"error"}
        assert "exceptions, namespaces, policy" in answer["error"]
        assert "failurePolicy" in answer["error"]
    srv.run(loaded_store, False, store)
    srv.run(store.mark_synced, "policy")
    srv.run(store.mark_synced, "namespaces")
    status, answer = _post_raw(srv, review)
    assert (status, "exceptions" in answer["error"], "policy" in answer["error"]) == (
        503,
        True,
        False,
    )
    srv.run(store.mark_synced, "exceptions")
    status, answer = _post_raw(srv, review)
    assert status == 200
    assert answer["response"]["allowed"] is False


def test_a_review_waits_for_the_initial_listings_then_is_judged(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    srv, store = _unready_server(make_server, tls_files, wait=20)
    review = json.dumps(admission_review(leaky_pod("ml-prod"))).encode()

    async def scenario() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session:
            pending = _posted(session, srv, tls_files, review)
            await asyncio.sleep(0.5)
            assert not pending.done()  # held, not answered without the listings
            for what in ("policy", "namespaces", "exceptions"):
                await asyncio.wrap_future(
                    asyncio.run_coroutine_threadsafe(_mark(store, what), srv.loop)
                )
            async with await pending as resp:
                return resp.status, await resp.json()

    status, answer = asyncio.run(scenario())
    assert status == 200
    assert answer["response"]["allowed"] is False
    assert "(environment prod)" in answer["response"]["status"]["message"]


async def _mark(store: StateStore, what: Any) -> None:
    store.mark_synced(what)


@pytest.mark.parametrize(("timeout", "gives_up"), [("1s", 0.9), ("500ms", 0.4), ("3s", 2.5)])
def test_the_wait_for_the_listings_ends_before_the_api_servers_deadline(
    make_server: ServerFactory, tls_files: TLSFiles, timeout: str, gives_up: float
) -> None:
    """The API server puts its deadline in the URL (``?timeout=3s``, rounded up to whole
    seconds) and gives up then: the 503 must reach it before, so the wait ends a second early.
    The client here gives up before the deadline; with no margin it would get no answer."""
    srv, _ = _unready_server(make_server, tls_files, wait=60)
    review = json.dumps(admission_review(leaky_pod("ml-prod"))).encode()

    async def go() -> int:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=gives_up)) as session,
            session.post(
                f"{srv.base}/validate?timeout={timeout}",
                data=review,
                headers={"Content-Type": "application/json"},
                ssl=tls_files.client_context(),
            ) as resp,
        ):
            return resp.status

    assert asyncio.run(go()) == 503


def test_a_review_waiting_for_the_listings_is_not_cut_by_the_body_deadline(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    """The body's clock starts after the wait: a wait longer than ``body_timeout`` still ends
    in an answer, not in a connection closed without one."""
    srv, _ = _unready_server(make_server, tls_files, 1.5, body_timeout=0.5, header_timeout=0.5)
    raw = request_bytes(json.dumps(admission_review(leaky_pod("ml-prod"))).encode())
    answer = exchange(srv.server_port, tls_files.client_context(), raw)
    assert answer is not None
    assert answer.status == 503


def test_a_server_told_to_stop_ends_the_wait_for_the_listings(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    srv, _ = _unready_server(make_server, tls_files, 30, drain_seconds=0.5)
    review = json.dumps(admission_review(leaky_pod("ml-prod"))).encode()

    async def scenario() -> int:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        ):
            pending = _posted(session, srv, tls_files, review)
            await asyncio.sleep(0.3)
            stopping = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(srv.server.stop(), srv.loop)
            )
            async with await pending as resp:
                status = resp.status
            await stopping
            return status

    assert asyncio.run(scenario()) == 503


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("2h", 7200.0),
        ("250us", 0.00025),
        (None, None),
        ("", None),
        ("10", None),
        ("s", None),
        ("10 s", None),
        ("-1s", -1.0),
        ("+5s", 5.0),
        ("0", 0.0),
        ("1\u03bcs", 0.000001),
        ("1\u00b5s", 0.000001),
        ("\u0661s", None),
        ("\uff15s", None),
        ("1d", None),
    ],
)
def test_go_durations_in_the_api_servers_webhook_url(
    text: str | None, seconds: float | None
) -> None:
    found = go_duration(text)
    assert found == (None if seconds is None else pytest.approx(seconds))


def test_stopping_drains_keep_alive_connections_before_closing(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    """The API server pools keep-alive connections to each replica. Told to stop, the server
    keeps answering for drain_seconds, each answer closing its connection, and fails /readyz;
    only then does it stop listening."""
    base = test_settings(tls_files)
    srv = make_server(settings=replace(base, server=replace(base.server, drain_seconds=1.5)))
    review = json.dumps(admission_review(leaky_pod("ml-dev"))).encode()

    async def exchange(session: aiohttp.ClientSession) -> tuple[int, str | None]:
        async with session.post(
            srv.base + "/validate",
            data=review,
            headers={"Content-Type": "application/json"},
            ssl=tls_files.client_context(),
        ) as resp:
            await resp.read()
            return resp.status, resp.headers.get("Connection")

    async def scenario() -> tuple[list[tuple[int, str | None]], int]:
        async with aiohttp.ClientSession() as session:
            before = await exchange(session)
            stopping = asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(srv.server.stop(), srv.loop)
            )
            await asyncio.sleep(0.3)
            during = await exchange(session)
            async with session.get(srv.base + "/readyz", ssl=tls_files.client_context()) as r:
                ready = r.status
            await stopping
            return [before, during], ready

    (before, during), ready = asyncio.run(scenario())
    assert before == (200, None)
    assert during == (200, "close")
    assert ready == 503
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", srv.server_port), 2),
    ):
        pass


def test_get_on_review_endpoints_is_refused(webhook: ServerThread) -> None:
    assert webhook.request("GET", "/validate")[0] == 405
    assert webhook.request("POST", "/nope", b"{}")[0] == 404


def test_metrics_endpoint_exposes_request_counts(webhook: ServerThread) -> None:
    webhook.post_review("/validate", admission_review(leaky_pod("ml-prod")))
    webhook.post_review("/validate", admission_review(leaky_pod("ml-dev")))
    text = webhook.metrics_text()
    assert (
        'airlock_admission_requests_total{decision="denied",environment="prod",kind="Pod",'
        'operation="CREATE"}'
    ) in text
    assert (
        'airlock_admission_requests_total{decision="warned",environment="dev",kind="Pod",'
        'operation="CREATE"}'
    ) in text
    assert (
        'airlock_admission_duration_seconds_bucket{kind="Pod",le="0.00025",operation="CREATE"}'
        in text
    )
    assert 'airlock_policy_info{generation="3",policy="default"} 1.0' in text
    assert "airlock_webhook_certificate_expiry_timestamp_seconds" in text
    # only Airlock's registry: no process or platform collectors
    names = {
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert all(n.startswith("airlock_") for n in names)


def _served_cert(port: int, tls: TLSFiles) -> bytes:
    ctx = tls.client_context()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls_sock,
    ):
        der = tls_sock.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_certificate_files_are_reloaded_for_new_connections(
    webhook: ServerThread, tls_files: TLSFiles
) -> None:
    port = webhook.server.port
    assert _served_cert(port, tls_files) == tls_files.cert_der
    new_der = issue_serving_cert(
        tls_files.ca, tls_files.cert_file, tls_files.key_file, "airlock-webhook-2", days=3
    )
    deadline = time.monotonic() + 5
    while _served_cert(port, tls_files) != new_der:
        assert time.monotonic() < deadline, "new certificate not served within 5 s"
        time.sleep(0.05)
    ok = webhook.post_review("/validate", admission_review(leaky_pod("ml-dev")))
    assert ok["response"]["allowed"] is True
    expiry = x509.load_der_x509_certificate(new_der).not_valid_after_utc.timestamp()
    assert (
        metrics.REGISTRY.get_sample_value("airlock_webhook_certificate_expiry_timestamp_seconds")
        == expiry
    )


def test_a_broken_certificate_pair_keeps_the_old_one(
    webhook: ServerThread, tls_files: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    port = webhook.server.port
    elsewhere = tls_files.cert_file.parent / "next"
    elsewhere.mkdir()
    issue_serving_cert(tls_files.ca, elsewhere / "tls.crt", elsewhere / "tls.key", "half-way")
    with caplog.at_level(logging.WARNING, logger="airlock.admission"):
        # a rotation caught half-way: the new certificate is written, its key is not yet
        (elsewhere / "tls.crt").replace(tls_files.cert_file)
        deadline = time.monotonic() + 5
        while not any("keeping the old one" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "the broken pair was not noticed"
            time.sleep(0.05)
    # the old pair is still served, and handshakes still succeed
    assert _served_cert(port, tls_files) == tls_files.cert_der
    ok = webhook.post_review("/validate", admission_review(leaky_pod("ml-dev")))
    assert ok["response"]["allowed"] is True


def _pooled_server(
    make_server: ServerFactory, tls_files: TLSFiles, wait: float, *, ready: bool, **server: Any
) -> ServerThread:
    """A short head timeout, a long keep-alive one; the store listed already if ``ready``."""
    srv, store = _unready_server(
        make_server, tls_files, wait, header_timeout=0.5, keepalive_timeout=30.0, **server
    )
    if ready:
        for what in ("policy", "namespaces", "exceptions"):
            srv.run(store.mark_synced, what)
    return srv


@pytest.mark.parametrize("answer", [503, 413])
def test_a_connection_answered_before_its_body_idles_as_a_pooled_one(
    make_server: ServerFactory, tls_files: TLSFiles, answer: int
) -> None:
    """An early answer (unready: 503; too large: 413) leaves the body unread, and aiohttp drops
    it as it arrives. Those bytes are not a new request's head: the connection then idles
    under the keep-alive timeout, not the head's (the API server reuses pooled connections,
    and a POST it sends on one the server closes first is not retried)."""
    srv = _pooled_server(
        make_server, tls_files, 0.2, ready=answer == 413,
        max_body_bytes=64 * 1024, max_pending_body_bytes=64 * 1024,
    )  # fmt: skip
    body = b"x" * 100_000 if answer == 413 else json.dumps(admission_review(leaky_pod("ml-prod")))
    body = body if isinstance(body, bytes) else body.encode()
    with connect(srv.server_port, tls_files.client_context()) as conn:
        conn.sendall(request_bytes(b"", content_length=len(body)))  # the head alone first
        first = read_answer(conn)
        assert first is not None
        assert first.status == answer
        assert first.headers.get("connection", "").lower() != "close"
        conn.sendall(body)
        for what in ("policy", "namespaces", "exceptions"):
            srv.run(srv.store.mark_synced, what)  # ready now, if it was not
        time.sleep(1.2)  # idle past the head timeout (0.5 s), far below the keep-alive one
        conn.sendall(request_bytes(json.dumps(admission_review(leaky_pod("ml-dev"))).encode()))
        again = read_answer(conn)
    assert again is not None, "the idle pooled connection was closed"
    assert again.status == 200


def test_an_early_answer_to_expect_continue_closes_the_connection(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    """Answered before "100 Continue", a client may skip the body and reuse the connection:
    its next request would be read as the body, so the connection closes instead."""
    srv = _pooled_server(make_server, tls_files, 0.1, ready=False)
    raw = request_bytes(b"", content_length=4096, headers={"Expect": "100-continue"})
    with connect(srv.server_port, tls_files.client_context()) as conn:
        conn.sendall(raw)
        answer = read_answer(conn)
    assert answer is not None
    assert answer.status == 503
    assert answer.headers.get("connection", "").lower() == "close"
