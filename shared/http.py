"""aiohttp pieces every service uses: the error middleware, liveness and readiness routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web

from shared.db import DB_POOL
from shared.errors import Busy, KittehError

log = logging.getLogger("kitteh")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[web.Request, KittehError], Awaitable[web.StreamResponse]]

# What a lost or restarting database looks like from asyncpg: answer 503, never 500.
DATABASE_UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def json_error(error: KittehError) -> web.Response:
    response = web.json_response(
        {"error": {"code": error.code, "message": error.message}}, status=error.status
    )
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


async def render_json_error(request: web.Request, error: KittehError) -> web.StreamResponse:
    return json_error(error)


def error_middleware(render: ErrorRenderer = render_json_error):
    """Map domain errors, HTTP errors and a lost database to clean answers."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except KittehError as error:
            return await render(request, error)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return await render(request, http_error(error))
        except DATABASE_UNAVAILABLE as error:
            log.warning("database unavailable during %s %s: %r", request.method, request.path,
                        error)
            return await render(request, Busy("The database is unavailable; try again soon.",
                                              retry_after=5))

    return middleware


def http_error(error: web.HTTPException) -> KittehError:
    mapped = KittehError(error.reason if error.text is None else error.text)
    mapped.status = error.status
    mapped.code = error.reason.lower().replace(" ", "_")
    return mapped


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Cheap on purpose; readiness is /readyz."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: Postgres answers within a second."""
    try:
        async with asyncio.timeout(1):
            await request.app[DB_POOL].fetchval("SELECT 1")
    except Exception as error:  # any failure means "not ready", reported, never raised
        return web.json_response({"status": "unavailable", "database": repr(error)}, status=503)
    return web.json_response({"status": "ok"})


def add_probe_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
