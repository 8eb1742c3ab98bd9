"""Serving an app until SIGTERM or SIGINT, then stopping without cutting requests short.

aiohttp's ``run_app`` stops listening and, in the same step, marks every open connection as
closing; from then on it drops bytes that arrive on them (``RequestHandler.data_received``),
so an upload whose body is still on its way stalls until ``shutdown_timeout`` and is then
cancelled. Here the order is:

1. stop accepting connections (the gateway sends new requests to another replica);
2. drain: requests in progress go on reading their bodies and finish, up to
   ``drain_timeout``; their connections are closed after the answer, so keep-alive does not
   feed in new work;
3. aiohttp's own shutdown: ``on_shutdown`` (the resize loops stop taking work), idle
   connections closed, anything still running cancelled after ``shutdown_timeout``, then the
   cleanup contexts (pools, sessions, executors).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

log = logging.getLogger("kitteh")

DRAIN_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 5.0


class InFlight:
    """Requests being handled, and whether the process is draining."""

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def idle(self) -> None:
        await self._idle.wait()


IN_FLIGHT = web.AppKey("in_flight", InFlight)


@web.middleware
async def count_in_flight(request: web.Request, handler) -> web.StreamResponse:
    in_flight = request.app[IN_FLIGHT]
    in_flight.enter()
    try:
        response = await handler(request)
        if in_flight.draining:
            response.force_close()  # no more requests on this connection
        return response
    finally:
        in_flight.leave()


def run_until_stopped(app: web.Application, host: str, port: int,
                      drain_timeout: float = DRAIN_TIMEOUT,
                      shutdown_timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """Serve ``app`` on ``host:port`` until SIGTERM or SIGINT, then stop as described above."""
    app[IN_FLIGHT] = InFlight()
    app.middlewares.append(count_in_flight)  # innermost: counts the handler, body included
    asyncio.run(_serve(app, host, port, drain_timeout, shutdown_timeout))


async def _serve(app: web.Application, host: str, port: int, drain_timeout: float,
                 shutdown_timeout: float) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(app, handle_signals=False, access_log=None,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        await stop.wait()
        in_flight = app[IN_FLIGHT]
        in_flight.draining = True
        await site.stop()
        log.info("stopping: %d request(s) in progress", in_flight.count)
        try:
            async with asyncio.timeout(drain_timeout):
                await in_flight.idle()
        except TimeoutError:
            log.warning("stopping: %d request(s) still running after %.0f s; cancelling",
                        in_flight.count, drain_timeout)
    finally:
        await runner.cleanup()
