"""Fuzz the admission webhook over TLS with tens of thousands of hostile and valid requests.

The server is Airlock's own (:class:`airlock.admission.WebhookServer`, production settings, a
pre-loaded :class:`~airlock.admission.StateStore`, as ``bench/bench_webhook.py`` runs it) in a
subprocess that logs as ``airlock webhook`` does (INFO, to a file read afterwards). This process
attacks it on 127.0.0.1 only, for a bounded time:

* **requests** (``--requests``, at least 20,000) from ``--workers`` concurrent clients, each
  one drawn at random: valid reviews (Pods, Deployments, PyTorchJobs, ConfigMaps, Airlock's own
  kinds; the benchmark's realistic 8-40 KB ones among them); reviews with nodes replaced by
  wrong types, deleted, nested up to 1,100 levels deep or inflated past the body limit;
  malformed bodies (truncated, flipped bytes, random bytes, deep brackets); and bad headers
  (Content-Encoding, Content-Type, Transfer-Encoding, a short or duplicated Content-Length,
  garbage request lines, oversized or too many headers, odd methods and paths);
* **abusive clients** meanwhile: ``--slow`` connections sending their head, and as many their
  body, one byte every 2 s; bodies shorter than their Content-Length; silent TCP connections;
  garbage instead of TLS; and a flood of connections past the server's connection cap.

Every answer must be a valid AdmissionReview (carrying the request's uid when that uid was a
usable string) or a 4xx whose body is ``{"error": "..."}``. A request gets no answer only if it
never completes (the abusive clients): those must be dropped within the server's timeouts plus
the 2 s between bytes. The summary: requests per status, answers that were neither (must be 0),
tracebacks and ERROR lines in the server's log (must be 0), p50/p99/max latency of the
requests, how the abusive clients ended, and the server's RSS at most and at the end (target
<= 120 MB). Exit status 1 when a check fails.

Run: ``make fuzz`` or ``.venv/bin/python bench/fuzz_webhook.py`` (``--no-record`` to leave
``bench/RESULTS.md`` alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import gzip
import json
import logging
import os
import random
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import bench_webhook as bw
from results import machine, replace_section

HOST = bw.HOST
MAX_BODY = 3 * 1024 * 1024  # the server's default max_body_bytes
DEEP = "\u0000deep\u0000"  # placeholder for a deeply nested value, substituted as text

# -------------------------------------------------------------------------------------------
# The server (a subprocess)


def serve(port: int, cert: Path, key: Path, header_timeout: float, body_timeout: float) -> None:
    from airlock.admission import (  # noqa: PLC0415
        MetricsSettings,
        ServerSettings,
        TLSSettings,
        WebhookServer,
        WebhookSettings,
    )

    # As `airlock webhook` logs: INFO and above, one line each (tracebacks follow their line).
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    settings = WebhookSettings(
        tls=TLSSettings(cert_file=cert, key_file=key),
        server=ServerSettings(
            host=HOST,
            port=port,
            drain_seconds=0,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
        ),
        metrics=MetricsSettings(host=HOST, port=0),
    )

    async def main() -> None:
        server = WebhookServer(settings, bw._store())
        await server.start()
        print("READY", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(main())


# -------------------------------------------------------------------------------------------
# What is sent


def _review(obj: dict[str, Any], operation: str = "CREATE", old: Any = None) -> dict[str, Any]:
    group, _, version = obj["apiVersion"].rpartition("/")
    kind = obj["kind"]
    meta = obj.get("metadata", {})
    plural = kind.lower() + ("ies" if kind.endswith("y") else "s")
    request: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": plural},
        "name": meta.get("name", ""),
        "operation": operation,
        "userInfo": {"username": "alice@corp.example", "groups": ["system:authenticated"]},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if "namespace" in meta:
        request["namespace"] = meta["namespace"]
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _own_kinds() -> list[dict[str, Any]]:
    policy = copy.deepcopy(bw.POLICY)
    exc = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {"name": "legacy-root", "namespace": "ml-prod"},
        "spec": {
            "rules": ["run-as-root"],
            "match": {"kinds": ["Pod"], "names": ["legacy-*"]},
            "expires": "2099-01-01T00:00:00Z",
            "owner": "team-ml",
            "reason": "vendor image runs as root until the 2.0 release",
        },
    }
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "trainer", "namespace": "ml-prod"},
        "data": {"HF_TOKEN": "hf_" + "Qm7Zx2Lk9Pw4Rt6Yb1Nc3Vd8Gh", "LOG_LEVEL": "info"},
    }
    return [
        _review(policy),
        _review(exc),
        _review(exc, "UPDATE", copy.deepcopy(exc)),
        _review(configmap),
        _review(configmap, "DELETE", copy.deepcopy(configmap)),
    ]


UID = "11111111-2222-4333-8444-555555555555"  # in every body below, replaced per request


def documents() -> list[bytes]:
    """Valid reviews: the benchmark's realistic workloads and Airlock's own kinds."""
    docs = [json.loads(body) for _, body in bw.corpus()] + _own_kinds()
    for doc in docs:
        doc["request"]["uid"] = UID
    return [json.dumps(doc).encode() for doc in docs]


def _random_value(rnd: random.Random, depth: int = 0) -> Any:
    kind = rnd.randrange(12 if depth < 3 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rnd.random() < 0.5
    if kind == 2:
        return rnd.choice([0, -1, 7, 2**31, 2**63 - 1, 2**64, 10**30])
    if kind == 3:
        return rnd.choice([1.5, -0.0, 1e308, 3.14e-300])
    if kind in (4, 5):
        return rnd.choice(["", "x", "CREATE", "ml-prod", "é\u2028\U0001f600", "\\u0000", "a" * 300])
    if kind in (6, 7):
        return "".join(chr(rnd.randrange(0x20, 0x3000)) for _ in range(rnd.randrange(20)))
    if kind in (8, 9):
        return [_random_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {f"k{i}": _random_value(rnd, depth + 1) for i in range(rnd.randrange(4))}


def _random_path(rnd: random.Random, doc: Any) -> tuple[Any, ...]:
    """A random node: from the root, down a random child while there is one, or stop."""
    path: list[Any] = []
    while isinstance(doc, dict | list) and doc and rnd.random() < 0.85:
        key = rnd.choice(list(doc)) if isinstance(doc, dict) else rnd.randrange(len(doc))
        path.append(key)
        doc = doc[key]
    return tuple(path)


# The envelope, where wrong types matter most: chosen as often as all of the object's nodes.
_ENVELOPE = [
    ("apiVersion",),
    ("kind",),
    ("request",),
    *[
        ("request", k)
        for k in (
            "uid",
            "kind",
            "resource",
            "subResource",
            "requestKind",
            "namespace",
            "name",
            "operation",
            "userInfo",
            "object",
            "oldObject",
            "dryRun",
            "options",
        )
    ],
    ("request", "kind", "kind"),
    ("request", "kind", "group"),
    ("request", "userInfo", "username"),
    ("request", "userInfo", "groups"),
    ("request", "object", "metadata"),
    ("request", "object", "spec"),
]


def _usable_uid(doc: Any) -> str | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("request"), dict):
        return None
    uid = doc["request"].get("uid")
    return uid if isinstance(uid, str) and 0 < len(uid) <= 128 else None


def _exists(doc: Any, path: tuple[Any, ...]) -> bool:
    for key in path:
        if (isinstance(doc, dict) and key in doc) or (
            isinstance(doc, list) and isinstance(key, int) and key < len(doc)
        ):
            doc = doc[key]
        else:
            return False
    return True


def fuzzed_review(rnd: random.Random, base: bytes) -> tuple[bytes, str | None]:
    """A review with one to three nodes replaced, deleted, deepened or inflated."""
    doc: Any = json.loads(base)
    doc["request"]["uid"] = str(uuid.uuid4())
    deep = 0
    for _ in range(rnd.randint(1, 3)):
        if rnd.random() < 0.5:
            path = rnd.choice([p for p in _ENVELOPE if _exists(doc, p)] or [()])
        else:
            path = _random_path(rnd, doc)
        how = rnd.choice(["replace"] * 5 + ["delete", "deep", "big"])
        value: Any = _random_value(rnd)
        if how == "deep" and not deep:
            deep = rnd.choice([2, 50, 99, 100, 101, 500, 990, 1020, 1100])
            value = DEEP
        elif how == "big":
            value = "x" * rnd.choice([10_000, 1_000_000, MAX_BODY + 1])
        if not path:
            doc = value
            continue
        holder = doc
        for key in path[:-1]:
            holder = holder[key]
        if how == "delete":
            del holder[path[-1]]
        else:
            holder[path[-1]] = value
    text = json.dumps(doc)
    if deep:
        text = text.replace(json.dumps(DEEP), '{"a":' * deep + "[]" + "}" * deep)
    return text.encode(), _usable_uid(doc)


@dataclass
class Probe:
    """One request: its bytes, and what the answer must look like."""

    kind: str
    raw: bytes
    review: bool = True  # a 200 must be an AdmissionReview
    uid: str | None = None  # the uid the answer must carry
    expect: int | None = None  # an exact status, when the request decides it


def _head(
    body: bytes,
    *,
    path: str = "/validate",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> bytes:
    fields = {"Host": HOST, "Content-Type": "application/json", **(headers or {})}
    if not any(k.lower() in ("content-length", "transfer-encoding") for k in fields):
        fields["Content-Length"] = str(len(body) if length is None else length)
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


def malformed(rnd: random.Random, base: bytes) -> Probe:
    """Broken bytes or headers around a review (or instead of one)."""
    path = rnd.choice(["/validate", "/mutate"])
    how = rnd.randrange(20)
    if how == 0:
        return Probe("truncated", _head(base[: rnd.randrange(len(base))], path=path))
    if how == 1:
        data = bytearray(base)
        for _ in range(rnd.randint(1, 10)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        return Probe("flipped", _head(bytes(data), path=path))
    if how == 2:
        return Probe("random", _head(rnd.randbytes(rnd.randrange(2048)), path=path))
    if how == 3:
        n = rnd.choice([100, 1100, 100_000])
        return Probe("brackets", _head(b"[" * n + b"]" * n, path=path), expect=400)
    if how == 4:
        encoding = rnd.choice(["gzip", "deflate", "br", "zstd", "x-garbage", "gzip, identity"])
        body = {"gzip": gzip.compress, "deflate": zlib.compress}.get(encoding, bytes)(base)
        return Probe(
            "content-encoding",
            _head(body, path=path, headers={"Content-Encoding": encoding}),
            expect=415,
        )
    if how == 5:
        content_type = rnd.choice(["text/plain", "", "application/x-yaml", "%%%", "a/b; c=d"])
        uid = _usable_uid(json.loads(base))
        return Probe(
            "content-type", _head(base, path=path, headers={"Content-Type": content_type}), uid=uid
        )
    if how == 6:  # the rest of the body becomes the next "request"
        return Probe(
            "content-length-short", _head(base, path=path, length=rnd.randrange(len(base)))
        )
    if how == 7:
        twice = _head(base, path=path).replace(
            b"\r\n\r\n", f"\r\nContent-Length: {len(base) + 1}\r\n\r\n".encode(), 1
        )
        return Probe("content-length-twice", twice, expect=400)
    if how == 8:
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(base), base)
        uid = _usable_uid(json.loads(base))
        return Probe(
            "chunked", _head(chunked, path=path, headers={"Transfer-Encoding": "chunked"}), uid=uid
        )
    if how == 9:
        raw = _head(b"zz\r\n" + base, path=path, headers={"Transfer-Encoding": "chunked"})
        return Probe("chunked-broken", raw, expect=400)
    if how == 10:
        line = rnd.choice(
            [b"GARBAGE", b"\x16\x03\x01\x02\x00", b"POST", b"POST /validate HTTP/9.9"]
        )
        return Probe("request-line", line + b"\r\nHost: x\r\n\r\n", review=False, expect=400)
    if how == 11:
        raw = _head(base, path=path, headers={"X-Long": "a" * rnd.choice([9000, 70_000])})
        return Probe("header-too-long", raw, expect=400)
    if how == 12:
        many = {f"X-{i}": "y" for i in range(rnd.choice([130, 1000]))}
        return Probe("too-many-headers", _head(base, path=path, headers=many), expect=400)
    if how == 13:
        raw = _head(base, path=path).replace(b"Host:", b"Ho st:", 1)
        return Probe("bad-header-name", raw, expect=400)
    if how == 14:
        method = rnd.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"])
        # aiohttp's parser knows the standard methods only: BREW is a malformed request (400)
        expect = 400 if method == "BREW" else 405
        return Probe("method", _head(base, path=path, method=method), expect=expect)
    if how == 15:
        odd = rnd.choice(["/", "/nope", "//validate", "/%zz", "/validate/", "/VALIDATE"])
        return Probe("path", _head(base, path=odd), review=False, expect=404)
    if how == 16:
        raw = _head(base, path=path).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        return Probe("http-1.0", raw, uid=_usable_uid(json.loads(base)))
    if how == 17:
        raw = _head(base, path=path, headers={"Expect": rnd.choice(["100-continue", "x"])})
        return Probe("expect", raw)
    if how == 18:
        body = base if rnd.random() < 0.5 else b"\xef\xbb\xbf" + base
        return Probe("bom-or-trailing", _head(body + b" \x00 trailing", path=path), expect=400)
    return Probe("empty", _head(b"", path=path), expect=400)


# -------------------------------------------------------------------------------------------
# The client side


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_answer(reader: asyncio.StreamReader) -> Answer | None:
    status = 100
    while status == 100:  # "100 Continue" comes before the answer to "Expect: 100-continue"
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            return Answer(0, {}, head)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    except (asyncio.IncompleteReadError, OSError, ValueError):
        return Answer(status, headers, b"<truncated>")
    return Answer(status, headers, body)


def judge(probe: Probe, answer: Answer | None) -> str | None:
    """Why ``answer`` is wrong for ``probe``, or None when it is fine."""
    if answer is None:
        return "no answer"
    if answer.status >= 500 or answer.status < 200:
        return f"HTTP {answer.status}"
    try:
        body = json.loads(answer.body)
    except ValueError:
        return f"HTTP {answer.status} with a body that is not JSON"
    if probe.expect is not None and answer.status != probe.expect:
        return f"HTTP {answer.status}, expected {probe.expect}"
    if answer.status >= 400:
        if not isinstance(body, dict) or set(body) != {"error"}:
            return f"HTTP {answer.status} without a one-field error body"
        if not isinstance(body["error"], str) or "\n" in body["error"]:
            return f"HTTP {answer.status} whose error is not one line"
        return None
    if answer.status != 200:
        return f"HTTP {answer.status}"
    if not probe.review:
        return None
    if not isinstance(body, dict) or body.get("apiVersion") != "admission.k8s.io/v1":
        return "200 without apiVersion admission.k8s.io/v1"
    if body.get("kind") != "AdmissionReview":
        return "200 without kind AdmissionReview"
    response = body.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("allowed"), bool):
        return "200 without response.allowed"
    if not isinstance(response.get("uid"), str):
        return "200 without response.uid"
    if probe.uid is not None and response["uid"] != probe.uid:
        return "response.uid is not the request's"
    status = response.get("status")
    if status is not None and isinstance(status, dict) and status.get("code") == 500:
        return "an internal-error review"
    return None


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    refused_connects: int = 0

    def record(self, probe: Probe, answer: Answer | None, seconds: float) -> None:
        self.kinds[probe.kind] += 1
        self.statuses["none" if answer is None else str(answer.status)] += 1
        if answer is not None:
            self.latencies.append(seconds)
        problem = judge(probe, answer)
        if problem is not None:
            self.bad.append(f"{probe.kind}: {problem}")


class Client:
    """One worker's keep-alive TLS connection, reopened whenever the server closed it."""

    def __init__(self, port: int, ctx: ssl.SSLContext, tally: Tally) -> None:
        self.port, self.ctx, self.tally = port, ctx, tally
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.port, ssl=self.ctx, limit=1 << 23), 15
                )
            except (OSError, ssl.SSLError, TimeoutError):
                self.tally.refused_connects += 1  # at the cap during a flood: try again
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.writer.wait_closed(), 2)
        self.reader = self.writer = None

    async def send(self, probe: Probe, *, fresh: bool) -> None:
        for attempt in range(2):
            if fresh or self.writer is None or self.writer.is_closing():
                await self.close()
                self.reader, self.writer = await self._connect()
            assert self.reader is not None
            assert self.writer is not None
            start = time.perf_counter()
            try:
                self.writer.write(probe.raw)
                await self.writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass  # the server may answer and close before reading everything
            try:
                answer = await asyncio.wait_for(read_answer(self.reader), 30)
            except TimeoutError:
                self.tally.record(probe, None, 30.0)
                await self.close()
                return
            seconds = time.perf_counter() - start
            if answer is None and not fresh and attempt == 0:
                # a kept-alive connection the server had closed (e.g. after a parse error)
                await self.close()
                fresh = True
                continue
            self.tally.record(probe, answer, seconds)
            closing = answer is None or answer.headers.get("connection", "").lower() == "close"
            if fresh or closing or probe.kind not in ("valid", "fuzzed"):
                await self.close()
            return


async def worker(
    rnd: random.Random, bodies: list[bytes], client: Client, budget: Callable[[], bool]
) -> None:
    while budget():
        roll = rnd.random()
        if roll < 0.3:
            uid = str(uuid.uuid4())
            body = rnd.choice(bodies).replace(UID.encode(), uid.encode(), 1)
            raw = _head(body, path=rnd.choice(["/validate", "/mutate"]))
            await client.send(Probe("valid", raw, uid=uid), fresh=False)
        elif roll < 0.65:
            body, uid = fuzzed_review(rnd, rnd.choice(bodies))
            probe = Probe("fuzzed", _head(body, path=rnd.choice(["/validate", "/mutate"])), uid=uid)
            if len(body) > MAX_BODY:
                probe.expect = 413
            await client.send(probe, fresh=False)
        else:
            await client.send(malformed(rnd, rnd.choice(bodies)), fresh=True)
    await client.close()


# -------------------------------------------------------------------------------------------
# Abusive clients: they never complete a request, so the server must drop them.


@dataclass
class Abuse:
    dropped: Counter[str] = field(default_factory=Counter)
    held_too_long: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    flood_accepted: int = 0
    flood_refused: int = 0


async def _until_dropped(
    what: str,
    *,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    trickle: bytes,
    limit: float,
    abuse: Abuse,
) -> None:
    """Send ``trickle`` one byte every 2 s until the server drops the connection."""
    start = time.monotonic()
    dropped = False

    async def watch() -> None:
        nonlocal dropped
        with contextlib.suppress(Exception):
            if await reader.read(65536):
                abuse.answered[what] += 1
        dropped = True

    watcher = asyncio.create_task(watch())
    for byte in trickle:
        if dropped or time.monotonic() - start > limit + 30:
            break
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except (OSError, RuntimeError):
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watcher), 2.0)
    if not watcher.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watcher, max(0.1, limit + 5 - (time.monotonic() - start)))
    watcher.cancel()
    _ended(abuse, what, time.monotonic() - start, limit, dropped)
    writer.close()


def _ended(abuse: Abuse, what: str, elapsed: float, limit: float, dropped: bool) -> None:
    abuse.seconds.setdefault(what, []).append(elapsed)
    if dropped and elapsed <= limit:
        abuse.dropped[what] += 1
    else:
        abuse.held_too_long[what] += 1


async def abusive_client(
    port: int,
    ctx: ssl.SSLContext,
    *,
    what: str,
    body: bytes,
    limit: float,
    abuse: Abuse,
    done: asyncio.Event,
) -> None:
    """One abusive client, again and again until the workers are done."""
    while not done.is_set():
        if what in ("silent-tcp", "not-tls"):
            try:
                reader, writer = await asyncio.open_connection(HOST, port)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            if what == "not-tls":
                writer.write(_head(body))
            start, dropped = time.monotonic(), True
            try:
                while await asyncio.wait_for(reader.read(65536), limit + 5):
                    pass
            except TimeoutError:
                dropped = False
            except OSError:
                pass  # reset: dropped too
            _ended(abuse, what, time.monotonic() - start, limit, dropped)
            writer.close()
            await asyncio.sleep(0.5)  # plain HTTP is closed at once: do not spin
            continue
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(HOST, port, ssl=ctx), 15
            )
        except (OSError, TimeoutError):
            abuse.answered["refused at the cap"] += 1
            await asyncio.sleep(0.5)
            continue
        if what == "slow-head":
            trickle = _head(body)
        elif what == "slow-body":
            writer.write(_head(b"", length=len(body)))
            trickle = body
        else:  # short-body: a body that stops before its Content-Length, then silence
            writer.write(_head(body[:-10], length=len(body)))
            trickle = b""
        await _until_dropped(
            what, reader=reader, writer=writer, trickle=trickle, limit=limit, abuse=abuse
        )


async def flood(port: int, count: int, abuse: Abuse) -> None:
    """Open ``count`` TCP connections at once and see how many the server keeps."""

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.open_connection(HOST, port)
        except OSError:
            abuse.flood_refused += 1
            return None

    opened = [c for c in await asyncio.gather(*(one() for _ in range(count))) if c is not None]
    await asyncio.sleep(0.3)
    for reader, writer in opened:
        try:
            closed = await asyncio.wait_for(reader.read(1), 0.01) == b""
        except TimeoutError:
            closed = False
        except OSError:
            closed = True
        if closed:
            abuse.flood_refused += 1
        else:
            abuse.flood_accepted += 1
        writer.close()


# -------------------------------------------------------------------------------------------
# The run


def _rss_mb(pid: int) -> float:
    return bw._proc_rss_mb(pid)


@dataclass
class Summary:
    lines: list[str]
    ok: bool


async def attack(
    port: int, ctx: ssl.SSLContext, pid: int, args: argparse.Namespace
) -> tuple[Tally, Abuse, float, float]:
    rnd = random.Random(args.seed)  # noqa: S311 - reproducible fuzzing, not cryptography
    bodies = documents()
    tally, abuse = Tally(), Abuse()
    rss_max = _rss_mb(pid)
    stop_at = time.monotonic() + args.max_seconds
    sent = 0

    def budget() -> bool:
        nonlocal sent
        sent += 1
        return sent <= args.requests and time.monotonic() < stop_at

    head_limit = args.header_timeout + 2 + 1.5  # the deadline, a byte's gap, the check's tick
    body_limit = args.body_timeout + 2 + 1.5
    done = asyncio.Event()
    kinds = [
        ("slow-head", head_limit, args.slow),
        ("slow-body", body_limit, args.slow),
        ("short-body", body_limit, 10),
        ("silent-tcp", head_limit, 10),
        ("not-tls", head_limit, 10),
    ]
    abusive = asyncio.gather(
        *(
            abusive_client(
                port, ctx, what=what, body=bodies[0], limit=limit, abuse=abuse, done=done
            )
            for what, limit, count in kinds
            for _ in range(count)
        )
    )
    await asyncio.sleep(1.0)  # the slow clients hold their connections from here on
    workers = asyncio.gather(
        *(
            worker(
                random.Random(rnd.random()),  # noqa: S311 - as above
                bodies,
                Client(port, ctx, tally),
                budget,
            )
            for _ in range(args.workers)
        )
    )

    async def sample() -> None:
        nonlocal rss_max
        while True:
            rss_max = max(rss_max, _rss_mb(pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    await asyncio.sleep(3.0)
    await flood(port, args.flood, abuse)  # while the slow clients and the workers hold theirs
    await workers
    done.set()
    await abusive
    await asyncio.sleep(2.0)  # let the server settle: what it keeps now, it keeps
    sampler.cancel()
    rss_end = _rss_mb(pid)
    return tally, abuse, max(rss_max, rss_end), rss_end


def summarize(
    tally: Tally, abuse: Abuse, *, rss_max: float, rss_end: float, log: str, seconds: float
) -> Summary:
    tracebacks = log.count("Traceback (most recent call last)")
    log_lines = [line for line in log.splitlines() if line and not line.startswith(" ")]
    levels = Counter(
        next((lvl for lvl in ("ERROR", "CRITICAL", "WARNING", "INFO") if f" {lvl} " in ln), "?")
        for ln in log_lines
    )
    errors = [ln for ln in log_lines if " ERROR " in ln or " CRITICAL " in ln]
    lat = sorted(tally.latencies)
    q = statistics.quantiles(lat, n=100) if len(lat) >= 100 else [0.0] * 99
    total = sum(tally.kinds.values())
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(tally.statuses.items()))
    held = sum(abuse.held_too_long.values())
    dropped = ", ".join(
        f"{k} {abuse.dropped[k]}/{abuse.dropped[k] + abuse.held_too_long[k]} "
        f"(max {max(abuse.seconds.get(k, [0])):.1f} s)"
        for k in sorted(set(abuse.dropped) | set(abuse.held_too_long))
    )
    lines = [
        f"requests: {total} in {seconds:.0f} s ({total / max(seconds, 1e-9):.0f}/s)",
        "  by kind: " + ", ".join(f"{k} {v}" for k, v in tally.kinds.most_common()),
        f"  by status: {statuses}",
        f"  neither a valid AdmissionReview nor a JSON 4xx: {len(tally.bad)}",
        f"  latency: p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms, "
        f"max {(lat[-1] if lat else 0) * 1000:.1f} ms",
        f"  reconnects refused (connection cap, during the flood): {tally.refused_connects}",
        f"abusive clients dropped within their deadline: {dropped}",
        f"  held too long: {held}; answered instead of dropped: {dict(abuse.answered) or 0}",
        f"  flood: {abuse.flood_accepted} connections kept, {abuse.flood_refused} closed at once",
        f"server log: {tracebacks} tracebacks, {len(errors)} ERROR lines; "
        f"{levels['WARNING']} WARNING, {levels['INFO']} INFO lines",
        f"server RSS: max {rss_max:.0f} MB, at the end {rss_end:.0f} MB (target <= 120 MB)",
    ]
    for problem, n in Counter(tally.bad).most_common(10):
        lines.append(f"  BAD x{n}: {problem}")
    for line in errors[:5]:
        lines.append(f"  LOG: {line[:200]}")
    ok = (
        not tally.bad
        and tracebacks == 0
        and not errors
        and held == 0
        and rss_end <= 120
        and total >= 20_000
    )
    return Summary(lines, ok)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000, help="requests to send (20000)")
    parser.add_argument("--workers", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--slow", type=int, default=100, help="slow clients of each kind (100)")
    parser.add_argument("--flood", type=int, default=400, help="connections opened at once (400)")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--max-seconds", type=float, default=300, help="time bound (300)")
    parser.add_argument("--header-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--body-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    parser.add_argument("--no-record", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cert", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--key", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.cert, args.key, args.header_timeout, args.body_timeout)
        return 0
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="airlock-fuzz-") as tmp:
        ca, cert, key = bw.write_certs(Path(tmp))
        port = bw._free_port()
        log_path = Path(tmp, "server.log")
        with log_path.open("w") as log_file:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--serve",
                    "--port",
                    str(port),
                    "--cert",
                    str(cert),
                    "--key",
                    str(key),
                    "--header-timeout",
                    str(args.header_timeout),
                    "--body-timeout",
                    str(args.body_timeout),
                ],
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
            try:
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "READY":
                    raise RuntimeError("the server did not start:\n" + log_path.read_text())
                ctx = ssl.create_default_context(cafile=str(ca))
                start = time.monotonic()
                tally, abuse, rss_max, rss_end = asyncio.run(attack(port, ctx, proc.pid, args))
                seconds = time.monotonic() - start
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        summary = summarize(
            tally,
            abuse,
            rss_max=rss_max,
            rss_end=rss_end,
            log=log_path.read_text(),
            seconds=seconds,
        )
    text = "\n".join(summary.lines)
    print(text)
    print("OK" if summary.ok else "FAILED")
    if not args.no_record:
        command = (
            f"python bench/fuzz_webhook.py --requests {args.requests} --workers {args.workers} "
            f"--slow {args.slow} --flood {args.flood} --seed {args.seed}"
        )
        replace_section(
            "fuzz",
            "## Webhook under hostile input (bench/fuzz_webhook.py, `make fuzz`)\n\n"
            f"{machine()} Load average before the run: {load_before:.2f}.\n\n"
            f"Method: `{command}`. Airlock's WebhookServer with production settings (10 s head "
            "and body deadlines, 256 connections, 3 MiB bodies) in a subprocess logging at "
            "INFO; the attacker in this process, 127.0.0.1 only. Requests: valid reviews, "
            "reviews with nodes replaced by wrong types, deleted, nested up to 1,100 levels or "
            "inflated past 3 MiB, malformed bodies and headers. Meanwhile slow clients (head "
            "or body one byte every 2 s), bodies shorter than their Content-Length, silent TCP "
            "connections, plain HTTP on the TLS port, and a flood of connections past the cap. "
            "Latency counts every answered request, from its first byte sent to its answer "
            "read, with the slow clients and the flood running; the attacker is one Python "
            "process that saturates its core (TLS handshakes for every malformed request), so "
            "it includes the attacker's own queueing (`bench_webhook.py` measures the "
            "server's). RSS is the server's VmRSS, sampled every 0.2 s and 2 s after the last "
            "client left.\n\n"
            "```\n" + text + "\n```",
        )
    return 0 if summary.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
