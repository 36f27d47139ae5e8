"""Running kopf inside a larger asyncio program, with one way to stop it: an ``asyncio.Event``.

kopf, in the main thread, installs SIGINT/SIGTERM handlers that stop it "unintentionally": it
then waits 5 s for its own stop-flag waiter and schedules a SIGKILL of the thread after
``process.ultimate_exiting_timeout``. Once kopf is ready, these handlers are replaced by ones
that set the caller's ``stop`` event, so a signal and a programmatic stop are the same thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any

import kopf

__all__ = ["run_operator"]


async def _signals_stop_us(ready: asyncio.Event, on_signal: Callable[[], None]) -> None:
    await ready.wait()
    if threading.current_thread() is not threading.main_thread():
        return  # kopf installed nothing either; signals are the embedding program's business
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)


async def run_operator(stop: asyncio.Event, on_signal: Callable[[], None], **kwargs: Any) -> None:
    """``kopf.operator(**kwargs)`` until ``stop`` is set; SIGINT/SIGTERM call ``on_signal``.

    ``on_signal`` must set ``stop`` (and may wake other parts of the program). The helper task
    is created before kopf starts: kopf treats tasks created after its start as its own.
    """
    ready = asyncio.Event()
    signals = asyncio.create_task(_signals_stop_us(ready, on_signal), name="airlock signals")
    try:
        await kopf.operator(stop_flag=stop, ready_flag=ready, **kwargs)
    finally:
        signals.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await signals
