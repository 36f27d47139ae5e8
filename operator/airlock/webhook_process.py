"""The ``airlock webhook`` process: the admission server and its read-only watches, together.

Both run in one event loop over one :class:`~airlock.admission.store.StateStore`. What matters
is the order in which they stop. On SIGTERM (a rolling update, a deleted pod, a drained node):

1. the server drains (``ServerSettings.drain_seconds``): it keeps answering, each answer closing
   its keep-alive connection, so the API server moves its pooled connections to the other
   replicas; meanwhile the watches keep the state current;
2. the server stops listening and finishes what is in flight;
3. only then does kopf stop. kopf treats every task created after it started as its own and
   cancels those still running shortly after it stops: stopping it first would cut the
   connections aiohttp opened meanwhile, and the API server would see ``EOF`` on a review of a
   Pod, which the fail-closed Pod webhook turns into a failed creation.

If either part ends by itself (the port is taken, kopf fails), the other is stopped too: better
no webhook than one serving a picture that no longer updates.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from airlock.admission.server import run_webhook
from airlock.admission.settings import WebhookSettings
from airlock.admission.store import StateStore
from airlock.controller.watch import run_watchers

__all__ = ["serve_webhook"]

_log = logging.getLogger(__name__)


async def serve_webhook(settings: WebhookSettings, *, kubeconfig: str | None) -> None:
    """Serve until SIGTERM/SIGINT (once kopf is up) or until either part fails; re-raise the
    first failure."""
    store = StateStore(settings.policy_name)
    stop_watching = asyncio.Event()
    terminating = asyncio.Event()
    server = asyncio.create_task(run_webhook(settings, store), name="airlock webhook")
    watch = asyncio.create_task(
        run_watchers(
            store,
            kubeconfig=kubeconfig,
            policy_name=settings.policy_name,
            stop=stop_watching,
            on_signal=terminating.set,
        ),
        name="airlock watchers",
    )
    signalled: asyncio.Task[Any] = asyncio.create_task(terminating.wait())
    done, _ = await asyncio.wait({server, watch, signalled}, return_when=asyncio.FIRST_COMPLETED)
    if signalled in done:
        _log.info("stopping: draining the admission server before the watches")
    # the server first (its cancellation runs the drain), then the watches
    server.cancel()
    server_result = await asyncio.gather(server, return_exceptions=True)
    stop_watching.set()
    watch_result = await asyncio.gather(watch, return_exceptions=True)
    signalled.cancel()
    await asyncio.gather(signalled, return_exceptions=True)
    for task, (result,) in ((server, server_result), (watch, watch_result)):
        if (
            task in done
            and isinstance(result, BaseException)
            and not isinstance(result, asyncio.CancelledError)
        ):
            raise result
