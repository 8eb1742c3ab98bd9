"""Waiting for a variant another process is making, on this node or another: Postgres
``LISTEN/NOTIFY`` (after pict-rs), not polling the store.

A trigger (migration 0006) notifies ``kitteh_variants`` with ``"<image id> <kind> <format>"``
when a variant's state becomes ready, dropped or failed; the notification arrives when that
transaction commits, and the file is in the store before its row says ready. Each resize
process keeps one listening connection and wakes the requests waiting for that key.

A waiter also looks at the row once a second: a notification sent while the listening
connection was being re-made (Postgres restarted) is not lost to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from aiohttp import web

from shared.db import DATABASE_UNAVAILABLE

log = logging.getLogger("kitteh.resize")

CHANNEL = "kitteh_variants"
RECHECK_SECONDS = 1.0
RECONNECT_SECONDS = 2.0

WaitKey = tuple[int, str, str]  # image id, kind, format


class VariantWaiters:
    def __init__(self, database_url: str):
        self._database_url = database_url
        self._waiting: dict[WaitKey, set[asyncio.Event]] = {}
        self._connection: asyncpg.Connection | None = None
        self.notifications = 0  # received, for tests and metrics

    async def lifetime(self, _app: web.Application) -> AsyncIterator[None]:
        keeper = asyncio.create_task(self._keep_listening(), name="variant-listener")
        yield
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper

    async def _keep_listening(self) -> None:
        """Hold one LISTEN connection, making it again whenever it is lost."""
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self._database_url, timeout=10)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _c, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                self._connection = connection
                await lost.wait()
                log.warning("the variant listener's connection was lost; listening again")
            except (TimeoutError, *DATABASE_UNAVAILABLE, OSError) as error:
                log.warning("cannot listen for finished variants: %r", error)
            finally:  # cancelled at shutdown, perhaps before the connection was kept
                self._connection = None
                if connection is not None and not connection.is_closed():
                    await asyncio.shield(_close(connection))
            await asyncio.sleep(RECONNECT_SECONDS)

    def _notified(self, _connection, _pid: int, _channel: str, payload: str) -> None:
        self.notifications += 1
        image_id, kind, variant_format = payload.split(" ")
        for event in self._waiting.get((int(image_id), kind, variant_format), ()):
            event.set()

    async def wait(self, key: WaitKey, finished: Callable[[], Awaitable[bool]],
                   seconds: float) -> bool:
        """Wait until ``finished()`` says so, for at most ``seconds``; True if it did. It is
        asked at once (the notification may have come before we listened), after every
        notification for ``key``, and at least once a second."""
        event = asyncio.Event()
        self._waiting.setdefault(key, set()).add(event)
        deadline = asyncio.get_running_loop().time() + seconds
        try:
            while True:
                if await finished():
                    return True
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    return False
                event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(left, RECHECK_SECONDS))
        finally:
            waiting = self._waiting[key]
            waiting.discard(event)
            if not waiting:
                del self._waiting[key]


async def _close(connection: asyncpg.Connection) -> None:
    try:
        await connection.close(timeout=2)
    except Exception:  # a connection that is already broken
        connection.terminate()


WAITERS = web.AppKey("variant_waiters", VariantWaiters)
