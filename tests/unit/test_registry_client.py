"""The registry client's TLS contexts: built off the event loop, dropped with their policy."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
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


def test_lookups_waiting_together_share_one_build(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ssl.create_default_context
    builds: list[int] = []

    def slow(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        builds.append(threading.get_ident())
        time.sleep(0.05)  # long enough for every lookup to be waiting
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", slow)
    client = RegistryClient(configs={"r.example": RegistryConfig("r.example")})

    async def attempt(endpoint: Endpoint) -> ssl.SSLContext | None:
        return endpoint.ssl_context

    async def main() -> list[ssl.SSLContext | None]:
        return list(
            await asyncio.gather(*(client._lookup("r.example", attempt) for _ in range(20)))
        )

    contexts = asyncio.run(main())
    assert len(builds) == 1
    assert all(c is contexts[0] for c in contexts)


def test_a_context_built_for_a_bundle_the_policy_dropped_meanwhile_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = threading.Event()

    def slow(self: RegistryClient, bundle: str | None) -> ssl.SSLContext:
        started.set()
        time.sleep(0.1)
        return ssl.create_default_context()

    monkeypatch.setattr(RegistryClient, "_build_ssl", slow)
    client = RegistryClient(configs={"r.example": RegistryConfig("r.example", ca_bundle="CA")})

    async def main() -> None:
        building = asyncio.ensure_future(client._prepare_ssl("CA"))
        await asyncio.to_thread(started.wait)
        client.configure({"r.example": RegistryConfig("r.example")})  # the bundle is gone
        await building

    asyncio.run(main())
    assert "CA" not in client._contexts
    assert client._building == {}


def test_a_ca_bundle_that_cannot_be_loaded_is_a_tls_registry_error() -> None:
    from airlock.errors import RegistryError

    client = RegistryClient(configs={"r.example": RegistryConfig("r.example", ca_bundle="junk")})

    async def attempt(endpoint: Endpoint) -> None:
        raise AssertionError("no endpoint is asked without a TLS context")

    with pytest.raises(RegistryError) as raised:
        asyncio.run(client._lookup("r.example", attempt))
    assert raised.value.reason == "tls"
    assert "junk" not in str(raised.value)


def test_a_policy_change_during_the_build_builds_nothing_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built_on: list[int] = []
    started = threading.Event()

    def slow(self: RegistryClient, bundle: str | None) -> ssl.SSLContext:
        built_on.append(threading.get_ident())
        started.set()
        time.sleep(0.1)
        return ssl.create_default_context()

    monkeypatch.setattr(RegistryClient, "_build_ssl", slow)
    client = RegistryClient(configs={"r.example": RegistryConfig("r.example", ca_bundle="A")})

    async def attempt(endpoint: Endpoint) -> ssl.SSLContext | None:
        return endpoint.ssl_context

    async def main() -> tuple[int, ssl.SSLContext | None]:
        lookup = asyncio.ensure_future(client._lookup("r.example", attempt))
        await asyncio.to_thread(started.wait)
        client.configure({"r.example": RegistryConfig("r.example", ca_bundle="B")})
        return threading.get_ident(), await lookup

    loop_thread, ctx = asyncio.run(main())
    assert isinstance(ctx, ssl.SSLContext)  # the lookup used the context it waited for
    assert built_on
    assert loop_thread not in built_on
