"""Hostile clients: wrong types, compressed bodies, malformed HTTP, deep nesting, slow senders,
connection floods. Each gets a 4xx (or an AdmissionReview denying with code 400) or is dropped,
others keep being served, and nothing is logged with a stack trace.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import json
import logging
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from airlock.model import MAX_NESTING

from tests.admission.conftest import (
    POLICY,
    ServerFactory,
    ServerThread,
    admission_review,
    test_settings,
)
from tests.admission.rawhttp import connect, dribble, exchange, read_answer, request_bytes
from tests.support.objects import clean_pod, leaky_pod, policy_exception
from tests.support.pki import TLSFiles


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test here: no record with a stack trace, none at ERROR, whatever the client did."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()
        assert "Traceback" not in record.getMessage(), record.getMessage()
        assert record.levelno < logging.ERROR, record.getMessage()


def _server(make_server: ServerFactory, tls_files: TLSFiles, **server: Any) -> ServerThread:
    base = test_settings(tls_files)
    return make_server(settings=replace(base, server=replace(base.server, **server)))


def _review_body(obj: dict[str, Any] | None = None, **kw: Any) -> bytes:
    return json.dumps(admission_review(obj or leaky_pod("ml-prod"), **kw)).encode()


# -- every field of the request, every wrong type ------------------------------------------------

_NOT_STRING = (["CREATE"], {"a": 1}, 42, 1.5, True)
_NOT_OBJECT = (["x"], "x", 42, True)

# (path under request, wrong values, what the message names)
_WRONG_TYPES: list[tuple[tuple[str, ...], tuple[Any, ...]]] = [
    (("kind",), (*_NOT_OBJECT, None)),
    (("kind", "group"), _NOT_STRING),
    (("kind", "version"), _NOT_STRING),
    (("kind", "kind"), (*_NOT_STRING, None, "")),
    (("resource",), _NOT_OBJECT),
    (("resource", "group"), _NOT_STRING),
    (("resource", "version"), _NOT_STRING),
    (("resource", "resource"), _NOT_STRING),
    (("subResource",), _NOT_STRING),
    (("requestKind",), _NOT_OBJECT),
    (("requestKind", "kind"), _NOT_STRING),
    (("requestResource",), _NOT_OBJECT),
    (("requestResource", "resource"), _NOT_STRING),
    (("requestSubResource",), _NOT_STRING),
    (("namespace",), (*_NOT_STRING, "n" * 64)),
    (("name",), (*_NOT_STRING, "n" * 254)),
    (("operation",), (*_NOT_STRING, None, "PATCH")),
    (("userInfo",), _NOT_OBJECT),
    (("userInfo", "username"), _NOT_STRING),
    (("userInfo", "uid"), _NOT_STRING),
    (("userInfo", "groups"), ("admins", {"a": "b"}, [1], [None], 7)),
    (("userInfo", "extra"), (["x"], {"scopes": "a"}, {"scopes": [1]}, 7)),
    (("object",), _NOT_OBJECT),
    (("oldObject",), _NOT_OBJECT),
    (("dryRun",), ("true", 1, [], {})),
    (("options",), _NOT_OBJECT),
]


def _wrong_type_cases() -> Iterator[Any]:
    for path, values in _WRONG_TYPES:
        for value in values:
            yield pytest.param(path, value, id=".".join(path) + "=" + json.dumps(value)[:12])


@pytest.mark.parametrize(("path", "value"), list(_wrong_type_cases()))
def test_a_wrong_type_anywhere_in_the_request_is_a_400_naming_the_field(
    webhook: ServerThread, path: tuple[str, ...], value: Any
) -> None:
    review = json.loads(_review_body())  # no shared dicts (kind and requestKind are one)
    holder = review["request"]
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    for endpoint in ("/validate", "/mutate"):
        status, raw = webhook.request(
            "POST", endpoint, json.dumps(review).encode(), {"Content-Type": "application/json"}
        )
        assert status == 200, raw
        response = json.loads(raw)["response"]
        assert response["uid"] == review["request"]["uid"]
        assert response["allowed"] is False
        assert response["status"]["code"] == 400
        assert "request." + ".".join(path) in response["status"]["message"]


@pytest.mark.parametrize("uid", [["u"], {"u": 1}, 42, None, True, "", "u" * 129])
def test_a_wrong_uid_is_an_http_400_with_a_one_line_json_reason(
    webhook: ServerThread, uid: Any
) -> None:
    review = admission_review(leaky_pod("ml-prod"))
    review["request"]["uid"] = uid
    status, raw = webhook.request(
        "POST", "/validate", json.dumps(review).encode(), {"Content-Type": "application/json"}
    )
    assert status == 400
    answer = json.loads(raw)
    assert set(answer) == {"error"}
    assert "request.uid" in answer["error"]
    assert "\n" not in answer["error"]


# -- Content-Encoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("gzip", lambda b: b),  # says gzip, is not: aiohttp used to fail on it with a 500
        ("deflate", zlib.compress),
        ("br", lambda b: b"\x8b\x03\x80garbage"),
        ("x-garbage", lambda b: b),
        ("gzip, identity", gzip.compress),
    ],
)
def test_a_compressed_body_gets_415_before_it_is_read(
    webhook: ServerThread, encoding: str, compress: Any
) -> None:
    body = compress(_review_body())
    for endpoint in ("/validate", "/mutate"):
        status, raw = webhook.request(
            "POST",
            endpoint,
            body,
            {"Content-Type": "application/json", "Content-Encoding": encoding},
        )
        assert status == 415
        assert "Content-Encoding" in json.loads(raw)["error"]
    # identity is no encoding at all
    status, _ = webhook.request(
        "POST",
        "/validate",
        _review_body(),
        {"Content-Type": "application/json", "Content-Encoding": "identity"},
    )
    assert status == 200


# -- malformed HTTP --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"GARBAGE\r\n\r\n", id="request-line"),
        pytest.param(b"POST /validate HTTP/1.1\r\nHost x\r\n\r\n", id="header-without-colon"),
        pytest.param(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
            id="content-length-not-a-number",
        ),
        pytest.param(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
            b"\r\n{}",
            id="two-content-lengths",
        ),
        pytest.param(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="bad-chunk-size",
        ),
        pytest.param(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
            id="header-too-long",
        ),
        pytest.param(
            b"POST /validate HTTP/1.1\r\n"
            + b"".join(b"X-%d: y\r\n" % i for i in range(200))
            + b"\r\n",
            id="too-many-headers",
        ),
        pytest.param(
            b"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}NOT HTTP\r\n\r\n",
            id="body-longer-than-content-length",
        ),
    ],
)
def test_malformed_http_gets_a_json_400(
    webhook: ServerThread, tls_files: TLSFiles, raw: bytes
) -> None:
    answer = exchange(webhook.server_port, tls_files.client_context(), raw)
    assert answer is not None
    assert 400 <= answer.status < 500
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"].startswith("malformed HTTP request")
    # the server is fine afterwards
    assert webhook.post_review("/validate", admission_review(clean_pod()))["response"]["allowed"]


def test_garbage_instead_of_tls_is_dropped_without_a_word(
    webhook: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    for garbage in (b"GET /validate HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
        with socket.create_connection(("127.0.0.1", webhook.server_port), timeout=5) as sock:
            sock.sendall(garbage)
            with contextlib.suppress(ConnectionError):
                while sock.recv(100):  # a TLS alert at most, then the server closes
                    pass
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and r.name == "asyncio"]


# -- deadlines ---------------------------------------------------------------------------------


def test_a_slow_head_is_dropped_after_the_header_timeout_while_others_are_served(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    srv = _server(make_server, tls_files, header_timeout=1.0, body_timeout=5.0)
    ctx = tls_files.client_context()
    head = request_bytes(_review_body())[:200]
    outcome: dict[str, Any] = {}

    def slow() -> None:
        with connect(srv.server_port, ctx) as conn:
            outcome["seconds"], outcome["received"] = dribble(conn, head, 0.1)

    thread = threading.Thread(target=slow)
    thread.start()
    served = 0
    while thread.is_alive():  # a normal client meanwhile, one review after the other
        answer = srv.post_review("/validate", admission_review(clean_pod()))
        assert answer["response"]["allowed"] is True
        served += 1
    thread.join()
    assert served >= 5
    assert 1.0 <= outcome["seconds"] < 3.0
    assert outcome["received"] == b""  # dropped without an answer


def test_a_slow_body_is_dropped_after_the_body_timeout(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    srv = _server(make_server, tls_files, header_timeout=5.0, body_timeout=1.0)
    ctx = tls_files.client_context()
    body = _review_body()
    with connect(srv.server_port, ctx) as conn:
        conn.sendall(request_bytes(b"", content_length=len(body)))  # the head, at once
        seconds, received = dribble(conn, body, 0.1)
    assert 1.0 <= seconds < 3.0
    assert received == b""
    assert srv.post_review("/validate", admission_review(clean_pod()))["response"]["allowed"]
    deadline = time.monotonic() + 5
    while srv.server.open_connections:  # the dropped connection is gone, not lingering
        assert time.monotonic() < deadline, srv.server.open_connections
        time.sleep(0.05)


def test_a_content_length_longer_than_the_body_is_dropped_after_the_body_timeout(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    srv = _server(make_server, tls_files, body_timeout=0.5)
    start = time.monotonic()
    raw = request_bytes(b"{}", content_length=100)
    assert exchange(srv.server_port, tls_files.client_context(), raw) is None
    assert time.monotonic() - start < 3.0


def test_silent_connections_and_stalled_handshakes_are_dropped(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    srv = _server(make_server, tls_files, header_timeout=0.5)
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", srv.server_port), timeout=5) as silent:
        assert silent.recv(100) == b""  # closed by the server, no TLS handshake ever started
    with connect(srv.server_port, tls_files.client_context()) as idle:
        assert read_answer(idle) is None  # TLS done, no request sent
    assert time.monotonic() - start < 4.0


def test_idle_keep_alive_connections_outlive_the_header_timeout(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    """The API server pools connections: between requests only keepalive_timeout applies."""
    srv = _server(make_server, tls_files, header_timeout=0.3, keepalive_timeout=30.0)
    with connect(srv.server_port, tls_files.client_context()) as conn:
        for _ in range(2):
            conn.sendall(request_bytes(_review_body(clean_pod())))
            answer = read_answer(conn)
            assert answer is not None
            assert answer.status == 200
            time.sleep(0.8)  # idle, well past the header timeout


# -- caps ----------------------------------------------------------------------------------------


def test_connections_over_the_cap_are_closed_at_once_and_logged_once(
    make_server: ServerFactory, tls_files: TLSFiles, caplog: pytest.LogCaptureFixture
) -> None:
    srv = _server(make_server, tls_files, max_connections=4, header_timeout=10.0)
    ctx = tls_files.client_context()
    held = [connect(srv.server_port, ctx) for _ in range(4)]
    try:
        assert srv.server.open_connections == 4
        for _ in range(3):
            start = time.monotonic()
            with (
                pytest.raises((ConnectionError, OSError)),
                connect(srv.server_port, ctx, timeout=5),
            ):
                pass
            assert time.monotonic() - start < 2.0  # at once, not after a TLS timeout
        assert srv.server.open_connections == 4
    finally:
        for conn in held:
            conn.close()
    deadline = time.monotonic() + 5
    while srv.server.open_connections:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert srv.post_review("/validate", admission_review(clean_pod()))["response"]["allowed"]
    refusals = [r for r in caplog.records if "refusing connections" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.WARNING


def test_bodies_past_the_pending_budget_get_429(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    limit = 64 * 1024
    srv = _server(
        make_server,
        tls_files,
        max_body_bytes=limit,
        max_pending_body_bytes=limit,
        body_timeout=5.0,
    )
    ctx = tls_files.client_context()
    with connect(srv.server_port, ctx) as holder:
        holder.sendall(request_bytes(b"{", content_length=limit - 100))  # reserves, then stalls
        time.sleep(0.2)
        answer = exchange(srv.server_port, ctx, request_bytes(_review_body()))
        assert answer is not None
        assert answer.status == 429
        assert "retry" in answer.json()["error"]
    time.sleep(0.2)  # the holder is gone: its reservation with it
    assert srv.post_review("/validate", admission_review(clean_pod()))["response"]["allowed"]


# -- deep nesting ------------------------------------------------------------------------------

_DEEP = "__deep__"


def _deep_json(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def _with_deep(review: dict[str, Any], levels: int = 1000) -> bytes:
    """The review as JSON with every ``"__deep__"`` string replaced by a deeply nested object
    (built as text: the json modules refuse to encode that deep)."""
    return json.dumps(review).replace(f'"{_DEEP}"', _deep_json(levels)).encode()


def _assert_depth_refused(srv: ServerThread, path: str, body: bytes, where: str) -> None:
    status, raw = srv.request("POST", path, body, {"Content-Type": "application/json"})
    assert status == 200, raw
    response = json.loads(raw)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert f"{where} is nested deeper than {MAX_NESTING} levels" in response["status"]["message"]


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_a_deeply_nested_policy_exception_is_refused_naming_the_depth(
    webhook: ServerThread, path: str
) -> None:
    exc = policy_exception()
    exc["spec"]["match"]["labels"] = _DEEP
    _assert_depth_refused(webhook, path, _with_deep(admission_review(exc)), "request.object")
    old = copy.deepcopy(exc)
    new = policy_exception()
    review = admission_review(new, operation="UPDATE", old=old)
    _assert_depth_refused(webhook, path, _with_deep(review), "request.oldObject")


def test_a_deeply_nested_baseline_policy_is_refused_naming_the_depth(
    webhook: ServerThread,
) -> None:
    policy = copy.deepcopy(POLICY)
    policy["spec"]["environments"][0]["extra"] = _DEEP
    _assert_depth_refused(
        webhook, "/validate", _with_deep(admission_review(policy)), "request.object"
    )


def test_a_deep_workload_that_trips_a_generic_operation_is_a_400_not_an_internal_error(
    webhook: ServerThread,
) -> None:
    """A metadata-only UPDATE compares the objects: ~1,000 levels exhaust Python's recursion."""
    pod = leaky_pod("ml-prod")
    pod["spec"]["extra"] = _DEEP
    old = copy.deepcopy(pod)
    pod["metadata"]["labels"]["touched"] = "yes"
    review = admission_review(pod, operation="UPDATE", old=old)
    _assert_depth_refused(webhook, "/validate", _with_deep(review, 990), "request.object")
    # a deep object that trips nothing is simply evaluated
    shallow = leaky_pod("ml-dev")
    shallow["spec"]["extra"] = _DEEP
    body = _with_deep(admission_review(shallow), 300)
    status, raw = webhook.request("POST", "/validate", body, {"Content-Type": "application/json"})
    assert status == 200
    assert json.loads(raw)["response"]["allowed"] is True


def test_a_refused_request_whose_unread_body_turns_out_broken_is_closed_quietly(
    make_server: ServerFactory, tls_files: TLSFiles
) -> None:
    """aiohttp discards what is left of a body answered without reading it; broken chunks
    there end the connection within the head deadline (the bytes after an answer are the next
    request's), without a word in the log."""
    srv = _server(make_server, tls_files, header_timeout=1.0)
    head = request_bytes(b"", headers={"Transfer-Encoding": "chunked", "Content-Encoding": "gzip"})
    with connect(srv.server_port, tls_files.client_context()) as conn:
        conn.sendall(head + b"5\r\nhello\r\n")
        answer = read_answer(conn)
        assert answer is not None
        assert answer.status == 415
        start = time.monotonic()
        conn.sendall(b"zz\r\nnot a chunk\r\n")
        conn.settimeout(10)
        assert conn.recv(100) == b""
    assert time.monotonic() - start < 3.0
