"""A blocking HTTP/1.1 client over TLS that sends exactly the bytes it is given.

aiohttp's client refuses to send a malformed request, a lying ``Content-Length`` or a body in
dribbles; hostile-input tests need all three. One request per connection, read back as the server
answers it (the server always sends ``Content-Length``), or ``None`` when the server closed the
connection without an answer.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import ssl
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request_bytes(
    body: bytes,
    *,
    path: str = "/validate",
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    content_length: int | None = None,
) -> bytes:
    """A request head and body; ``Content-Length`` is ``len(body)`` unless given (or in headers)."""
    fields = {"Host": HOST, "Content-Type": "application/json", **(headers or {})}
    if not any(k.lower() in ("content-length", "transfer-encoding") for k in fields):
        fields["Content-Length"] = str(len(body) if content_length is None else content_length)
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode("latin-1") + b"\r\n" + body


def connect(port: int, ctx: ssl.SSLContext, timeout: float = 10.0) -> ssl.SSLSocket:
    sock = socket.create_connection((HOST, port), timeout=timeout)
    try:
        return ctx.wrap_socket(sock, server_hostname=HOST)
    except BaseException:
        sock.close()
        raise


def read_answer(conn: ssl.SSLSocket) -> Answer | None:
    """One response from ``conn``, or None if the connection ends first."""
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            rest += chunk
    except (ConnectionError, ssl.SSLError, TimeoutError):
        return None
    return Answer(status, headers, rest[:length])


def exchange(port: int, ctx: ssl.SSLContext, raw: bytes, *, timeout: float = 10.0) -> Answer | None:
    """Send ``raw`` on a new connection and read one answer (None: closed without one)."""
    with connect(port, ctx, timeout) as conn:
        # the server may answer, and close, before reading it all: read the answer anyway
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            conn.sendall(raw)
        return read_answer(conn)


def dribble(conn: ssl.SSLSocket, data: Iterable[int], interval: float) -> tuple[float, bytes]:
    """Send ``data`` one byte every ``interval`` s until the server drops the connection.

    Returns the seconds until it did and whatever it sent back (the test fails when the server
    waits longer than the data lasts).
    """
    start = time.monotonic()
    received = b""
    for byte in data:
        try:
            conn.sendall(bytes([byte]))
            readable, _, _ = select.select([conn], [], [], interval)
            if readable:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                received += chunk
        except (ConnectionError, ssl.SSLError, OSError):
            break
    else:
        raise AssertionError(f"still connected after {time.monotonic() - start:.1f} s")
    return time.monotonic() - start, received
