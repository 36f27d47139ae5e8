"""The registry client's TLS contexts: built off the event loop, dropped with their policy."""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import Any

import pytest
from airlock.registry.client import Endpoint, RegistryClient, RegistryConfig


def test_the_first_tls_context_is_built_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built_on: list[int] = []
    real = ssl.create_default_context

    def recording(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built_on.append(threading.get_ident())
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", recording)
    client = RegistryClient(configs={"r.example": RegistryConfig("r.example")})

    async def attempt(endpoint: Endpoint) -> ssl.SSLContext | None:
        return endpoint.ssl_context

    async def main() -> tuple[int, list[ssl.SSLContext | None]]:
        loop_thread = threading.get_ident()
        first = await client._lookup("r.example", attempt)
        second = await client._lookup("r.example", attempt)
        return loop_thread, [first, second]

    loop_thread, contexts = asyncio.run(main())
    assert len(built_on) == 1  # built once, then cached
    assert built_on[0] != loop_thread
    assert isinstance(contexts[0], ssl.SSLContext)
    assert contexts[1] is contexts[0]


def test_a_plain_http_registry_builds_no_tls_context() -> None:
    client = RegistryClient(configs={"r.example": RegistryConfig("r.example", insecure=True)})

    async def attempt(endpoint: Endpoint) -> ssl.SSLContext | None:
        return endpoint.ssl_context

    assert asyncio.run(client._lookup("r.example", attempt)) is None
    assert client._contexts == {}


def test_a_ca_bundle_no_registry_names_any_more_is_dropped() -> None:
    client = RegistryClient()
    kept, old = ssl.create_default_context(), ssl.create_default_context()
    client._contexts.update({None: kept, "CA one": old, "CA two": kept})
    client.configure({"a.example": RegistryConfig("a.example", ca_bundle="CA two")})
    assert set(client._contexts) == {None, "CA two"}
