"""Fuzzing the real server over TLS: wrong types at every level of the AdmissionReview, deep
nesting, malformed JSON, huge bodies, bad headers.

Whatever is sent, the answer is a valid AdmissionReview (with the request's uid whenever that uid
was a usable string) or a 4xx whose body is ``{"error": "..."}``; never a 5xx, never an answer the
API server could misread, and nothing logged with a stack trace. A connection may be dropped
without an answer only when its body never completes (a ``Content-Length`` longer than what is
sent). ``make fuzz`` runs the same idea with tens of thousands of requests
(``bench/fuzz_webhook.py``); here a few hundred examples keep ``make test`` quick.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.admission.conftest import (
    POLICY,
    ServerFactory,
    ServerThread,
    admission_review,
    test_settings,
)
from tests.admission.rawhttp import Answer, exchange, request_bytes
from tests.support.objects import (
    clean_pod,
    configmap,
    deployment,
    leaky_pod,
    policy_exception,
    pytorchjob,
)
from tests.support.pki import TLSFiles

MAX_BODY = 256 * 1024  # the fuzzed server's body limit: huge bodies stay cheap to send

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


def _objects() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, admission_review keyword arguments) for every kind of object Airlock checks."""
    exc = policy_exception()
    return [
        (leaky_pod("ml-prod"), {}),
        (clean_pod("ml-dev"), {}),
        (leaky_pod("ml-prod"), {"operation": "UPDATE", "old": leaky_pod("ml-prod")}),
        (deployment(leaky_pod("ml-prod")), {}),
        (pytorchjob(leaky_pod("ml-staging")), {}),
        (configmap("ml-prod", {"token": "hf_" + "x" * 30}), {}),
        (copy.deepcopy(POLICY), {}),
        (exc, {}),
        (exc, {"operation": "UPDATE", "old": copy.deepcopy(exc)}),
        (leaky_pod("ml-prod"), {"operation": "DELETE"}),
    ]


OBJECTS = _objects()


@pytest.fixture
def fuzzed(make_server: ServerFactory, tls_files: TLSFiles) -> ServerThread:
    base = test_settings(tls_files)
    return make_server(
        settings=replace(
            base,
            server=replace(
                base.server,
                header_timeout=2.0,
                body_timeout=0.25,  # a lying Content-Length costs a quarter second
                max_body_bytes=MAX_BODY,
                max_pending_body_bytes=4 * MAX_BODY,
            ),
        )
    )


class Checked:
    """The oracle: what any answer must look like, and the log it leaves."""

    def __init__(self, srv: ServerThread, tls: TLSFiles, caplog: pytest.LogCaptureFixture):
        self.srv, self.ctx, self.caplog = srv, tls.client_context(), caplog
        caplog.set_level(logging.DEBUG)

    def send(self, raw: bytes, *, review: bool, uid: str | None, may_drop: bool) -> Answer | None:
        seen = len(self.caplog.records)
        answer = exchange(self.srv.server_port, self.ctx, raw, timeout=15)
        for record in self.caplog.records[seen:]:
            assert record.exc_info is None, record.getMessage()
            assert "Traceback" not in record.getMessage(), record.getMessage()
            assert record.levelno < logging.ERROR, record.getMessage()
        if answer is None:
            assert may_drop, "the connection was closed without an answer"
            return None
        assert answer.status < 500, answer
        body = answer.json()  # every answer is JSON
        if answer.status >= 400:
            assert set(body) == {"error"}, body
            assert isinstance(body["error"], str)
            assert "\n" not in body["error"]
        elif review:
            assert body["apiVersion"] == "admission.k8s.io/v1"
            assert body["kind"] == "AdmissionReview"
            response = body["response"]
            assert isinstance(response["allowed"], bool)
            assert isinstance(response["uid"], str)
            if uid is not None:
                assert response["uid"] == uid
            if not response["allowed"]:
                assert isinstance(response["status"]["code"], int)
                assert 400 <= response["status"]["code"] < 600
        return answer


@pytest.fixture
def check(fuzzed: ServerThread, tls_files: TLSFiles, caplog: pytest.LogCaptureFixture) -> Checked:
    return Checked(fuzzed, tls_files, caplog)


# -- documents ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)

_DEEP = "\u0000deep\u0000"  # a placeholder no generated text can produce: json.dumps escapes NUL


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, (*prefix, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    holder = doc
    for key in path[:-1]:
        holder = holder[key]
    if delete:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return doc


def _render(doc: Any, deep: int) -> bytes:
    text = json.dumps(doc)
    return text.replace(json.dumps(_DEEP), '{"a":' * deep + "[]" + "}" * deep).encode()


def _usable_uid(doc: Any) -> str | None:
    """The uid the answer must carry: the request's, when it is a usable string."""
    if not isinstance(doc, dict) or not isinstance(doc.get("request"), dict):
        return None
    uid = doc["request"].get("uid")
    return uid if isinstance(uid, str) and 0 < len(uid) <= 128 else None


@st.composite
def fuzzed_reviews(draw: Callable[..., Any]) -> tuple[Any, int]:
    """A review with one to three of its nodes replaced, deleted, deepened or inflated."""
    obj, kw = draw(st.sampled_from(OBJECTS))
    doc: Any = json.loads(json.dumps(admission_review(copy.deepcopy(obj), **kw)))
    deep = 0
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "deep", "big"]))
        if how == "delete" and path:
            doc = _set(doc, path, None, delete=True)
        elif how == "deep" and not deep:
            deep = draw(st.sampled_from([2, 50, 99, 100, 101, 300, 990, 1100]))
            doc = _set(doc, path, _DEEP)
        elif how == "big":
            doc = _set(doc, path, "x" * draw(st.sampled_from([1000, 100_000, MAX_BODY])))
        else:
            doc = _set(doc, path, draw(json_values))
    return doc, deep


@FUZZ
@given(case=fuzzed_reviews(), endpoint=st.sampled_from(["/validate", "/mutate"]))
def test_fuzzed_reviews_get_a_review_or_a_json_4xx(
    check: Checked, case: tuple[Any, int], endpoint: str
) -> None:
    doc, deep = case
    body = _render(doc, deep)
    answer = check.send(
        request_bytes(body, path=endpoint), review=True, uid=_usable_uid(doc), may_drop=False
    )
    assert answer is not None
    if len(body) > MAX_BODY:
        assert answer.status == 413


# -- bytes and headers -------------------------------------------------------------------------

_BASE_BODIES = [json.dumps(admission_review(o, **kw)).encode() for o, kw in OBJECTS[:4]]


@st.composite
def bodies(draw: Callable[..., Any]) -> bytes:
    base = draw(st.sampled_from(_BASE_BODIES))
    how = draw(st.sampled_from(["valid", "truncated", "flipped", "random", "brackets", "empty"]))
    if how == "truncated":
        return base[: draw(st.integers(0, len(base) - 1))]
    if how == "flipped":
        data = bytearray(base)
        flips = st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255))
        for at, byte in draw(st.lists(flips, min_size=1, max_size=8)):
            data[at] = byte
        return bytes(data)
    if how == "random":
        return bytes(draw(st.binary(max_size=512)))
    if how == "brackets":
        n = draw(st.sampled_from([10, 1000, 5000]))
        return b"[" * n + b"]" * n
    if how == "empty":
        return b""
    return base


_CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "", "%%%"]
_ENCODINGS = [None, None, None, "identity", "gzip", "deflate", "br", "zstd", "x, y", "GZIP"]
_FRAMINGS = ["exact"] * 6 + ["shorter", "longer", "chunked", "chunked-broken", "none", "twice"]
_PATHS = ["/validate", "/mutate", "/validate?dryRun=1", "/healthz", "/nope", "//validate", "/%zz"]
_METHODS = ["POST"] * 6 + ["GET", "PUT", "BREW", "DELETE"]  # not HEAD: no body to read back


def _framed(
    body: bytes, framing: str, headers: dict[str, str], method: str, path: str
) -> tuple[bytes, bool]:
    """The raw request, and whether the server may drop it (a body that never completes)."""
    if framing == "shorter" and body:
        return request_bytes(
            body, method=method, path=path, headers=headers, content_length=1
        ), False
    if framing == "longer":
        return (
            request_bytes(
                body, method=method, path=path, headers=headers, content_length=len(body) + 10
            ),
            True,
        )
    if framing in ("chunked", "chunked-broken"):
        headers = {**headers, "Transfer-Encoding": "chunked"}
        if framing == "chunked":
            chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
            return request_bytes(chunked, method=method, path=path, headers=headers), False
        return request_bytes(b"zz\r\n" + body, method=method, path=path, headers=headers), False
    if framing == "none":
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        return head + body, False
    if framing == "twice":
        headers = {**headers, "Content-Length": str(len(body))}
        raw = request_bytes(body, method=method, path=path, headers=headers)
        return raw.replace(
            b"\r\n\r\n", f"\r\nContent-Length: {len(body) + 1}\r\n\r\n".encode(), 1
        ), False
    return request_bytes(body, method=method, path=path, headers=headers), False


@FUZZ
@given(
    body=bodies(),
    content_type=st.sampled_from(_CONTENT_TYPES),
    encoding=st.sampled_from(_ENCODINGS),
    framing=st.sampled_from(_FRAMINGS),
    path=st.sampled_from(_PATHS),
    method=st.sampled_from(_METHODS),
)
def test_malformed_bodies_and_headers_get_a_json_4xx(
    check: Checked,
    *,
    body: bytes,
    content_type: str,
    encoding: str | None,
    framing: str,
    path: str,
    method: str,
) -> None:
    headers = {"Content-Type": content_type}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    raw, may_drop = _framed(body, framing, headers, method, path)
    event(framing)
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        doc = None
    is_review = path.split("?", maxsplit=1)[0] in ("/validate", "/mutate")
    exact = framing in ("exact", "chunked")
    answer = check.send(
        raw,
        review=is_review,
        uid=_usable_uid(doc) if exact else None,
        may_drop=may_drop,
    )
    if answer is not None and exact and is_review and method == "POST":
        if encoding is not None and encoding not in ("identity",):
            assert answer.status == 415
        elif answer.status == 200:
            assert doc is not None


@settings(FUZZ, max_examples=10)
@given(
    size=st.sampled_from([MAX_BODY - 1000, MAX_BODY + 1, 3 * MAX_BODY]),
    declared=st.sampled_from(["exact", "chunked", "small"]),
)
def test_huge_bodies_get_413_or_a_review(check: Checked, size: int, declared: str) -> None:
    review = admission_review(clean_pod("ml-dev"))
    review["request"]["object"]["metadata"]["annotations"] = {"blob": ""}
    filler = size - len(json.dumps(review).encode())
    review["request"]["object"]["metadata"]["annotations"]["blob"] = "x" * max(filler, 0)
    body = json.dumps(review).encode()
    if declared == "chunked":
        raw = request_bytes(
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), headers={"Transfer-Encoding": "chunked"}
        )
    else:
        raw = request_bytes(body, content_length=len(body) if declared == "exact" else 100)
    # "small": the server answers the first 100 bytes, finds the rest is not HTTP and closes
    # while it is still being sent, so the answer may be lost to the connection's reset
    answer = check.send(raw, review=True, uid=None, may_drop=declared == "small")
    if declared != "small":
        assert answer is not None
        assert answer.status == (200 if len(body) <= MAX_BODY else 413)
