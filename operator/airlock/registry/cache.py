"""A TTL- and size-bounded cache of lookups that coalesces concurrent ones.

Fifty pods of one Deployment arrive at the webhook within a second, all naming the same image:
one registry lookup must answer them all. :meth:`LookupCache.get` runs the lookup once per key
while it is in flight (later callers await the same future) and keeps the answer for ``ttl``
seconds; a failure is kept for ``failure_ttl`` seconds (short), so a registry that is down
costs each admission nothing more than a dictionary lookup instead of a timeout. The oldest
entries go first once ``max_entries`` is reached.

A lookup runs in its own task, shielded from its callers: a caller that gives up (its admission
budget is spent) leaves it running, so its answer still lands in the cache for the next one.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from time import monotonic
from typing import Any, Generic, TypeVar

__all__ = ["LookupCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LookupCache(Generic[K, V]):
    """Answers (or errors) by key, each for its own time; one lookup in flight per key."""

    def __init__(
        self,
        *,
        ttl: float,
        failure_ttl: float,
        max_entries: int,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.ttl = ttl
        self.failure_ttl = failure_ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V | None, BaseException | None]] = OrderedDict()
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def peek(self, key: K) -> tuple[bool, V | None, BaseException | None]:
        """(found, value, error) of a fresh entry, without looking anything up."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None, None
        expires, value, error = entry
        if expires <= self._clock():
            del self._entries[key]
            return False, None, None
        return True, value, error

    async def get(self, key: K, lookup: Callable[[], Awaitable[V]]) -> tuple[V, bool]:
        """(answer, from_cache). Raises what the lookup raised (also when cached)."""
        found, value, error = self.peek(key)
        if found:
            if error is not None:
                raise error
            return value, True  # type: ignore[return-value]  # found without error: a V
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._run(key, lookup))
            self._inflight[key] = future
            future.add_done_callback(_consume)
        return await asyncio.shield(future), False

    async def _run(self, key: K, lookup: Callable[[], Awaitable[V]]) -> V:
        try:
            value = await lookup()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._store(key, None, exc, self.failure_ttl)
            raise
        else:
            self._store(key, value, None, self.ttl)
            return value
        finally:
            self._inflight.pop(key, None)

    def _store(self, key: K, value: V | None, error: BaseException | None, ttl: float) -> None:
        if ttl <= 0:
            return
        self._entries[key] = (self._clock() + ttl, value, error)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def _consume(future: asyncio.Future[Any]) -> None:
    # a lookup whose every caller gave up must not log "exception was never retrieved"
    if not future.cancelled():
        future.exception()
