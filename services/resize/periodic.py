"""Background loops of the resize service (the reconciler, the sweeper), with a clean end.

Each loop runs one pass, then sleeps. When shutdown begins (``STOPPING`` is set by the app's
``on_shutdown``, before aiohttp waits for in-flight requests) it takes no new pass and wakes
from its sleep; the cleanup context then gives the pass in hand ``SHUTDOWN_GRACE_SECONDS`` to
finish and cancels it after that. Cancelled work hands its claims back (see jobs.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from services.resize.keys import STOPPING
from services.resize.metrics import RESIZE_METRICS
from shared.db import DATABASE_UNAVAILABLE

log = logging.getLogger("kitteh.resize")

SHUTDOWN_GRACE_SECONDS = 10.0

Pass = Callable[[web.Application], Awaitable[Any]]


async def mark_stopping(app: web.Application) -> None:
    """on_shutdown: runs as soon as the server stops accepting."""
    app[STOPPING].set()


def periodic(name: str, interval: float, run_pass: Pass,
             wake: web.AppKey[asyncio.Event] | None = None,
             ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running ``run_pass`` every ``interval`` seconds for the app's life,
    and also as soon as the event under ``wake`` is set."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_loop(app, name, interval, run_pass, wake), name=name)
        yield
        app[STOPPING].set()  # already set by on_shutdown when run by run_app
        done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_SECONDS)
        if not done:
            log.warning("%s: pass still running after %.0f s; cancelling it", name,
                        SHUTDOWN_GRACE_SECONDS)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


async def _loop(app: web.Application, name: str, interval: float, run_pass: Pass,
                wake: web.AppKey[asyncio.Event] | None) -> None:
    stopping = app[STOPPING]
    woken = app[wake] if wake is not None else asyncio.Event()
    runs = app[RESIZE_METRICS].background_runs
    while not stopping.is_set():
        woken.clear()
        try:
            await run_pass(app)
            runs.labels(name, "ok").inc()
        except DATABASE_UNAVAILABLE as error:  # Postgres restarting: the next pass retries
            runs.labels(name, "database_unavailable").inc()
            log.warning("%s: database unavailable (%r); retrying in %g s", name, error,
                        interval)
        except Exception:
            runs.labels(name, "failed").inc()
            log.exception("%s: pass failed", name)
        await _sleep(interval, stopping, woken)


async def _sleep(seconds: float, *events: asyncio.Event) -> None:
    """Sleep, but wake up as soon as one of the events is set (shutdown, work to do)."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
