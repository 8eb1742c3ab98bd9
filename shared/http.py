"""aiohttp pieces every service uses: the error middleware, liveness and readiness routes."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from aiohttp import web

from shared.db import DATABASE_UNAVAILABLE, DB_POOL, RETRY_TRANSACTION
from shared.errors import Busy, KittehError, StorageFull
from shared.storage import STORE, ImageStore, LocalStore
from shared.units import human_bytes

log = logging.getLogger("kitteh")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ErrorRenderer = Callable[[web.Request, KittehError], Awaitable[web.StreamResponse]]
ErrorObserver = Callable[[web.Request, KittehError], None]
# "No space left on device" and "disk quota exceeded": writing the volume cannot succeed
# until someone frees space, unlike a restarting database.
STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
STORAGE_FULL = ("Storage is full: the server has no room left to store this upload, and "
                "nothing of it was kept. Try again once space has been freed.")

# Whether this service writes the volume (upload, resize): then it is not ready without it.
WRITES_VOLUME = web.AppKey("writes_volume", bool)
# Below this many free bytes on the volume, a service that writes it is not ready.
MIN_FREE_BYTES = web.AppKey("min_free_bytes", int)
BEARER_CHALLENGE = 'Bearer realm="kitteh"'  # every 401 names the scheme it wants (RFC 6750)
PROBE_TIMEOUT = 1.0  # seconds; a probe that hangs is itself the answer "not ready"


def bearer(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer`` header (an upload key or a delete
    token); None without one. The one parser of every service that takes either."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def json_error(error: KittehError) -> web.Response:
    response = web.json_response(
        {"error": {"code": error.code, "message": error.message}}, status=error.status
    )
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
    return response


async def render_json_error(request: web.Request, error: KittehError) -> web.StreamResponse:
    return json_error(error)


def is_storage_full(error: BaseException) -> bool:
    """The volume or the database's disk is full (ENOSPC, EDQUOT; Postgres's 53100)."""
    return (isinstance(error, OSError) and error.errno in STORAGE_FULL_ERRNOS) \
        or isinstance(error, asyncpg.exceptions.DiskFullError)


def error_middleware(render: ErrorRenderer = render_json_error,
                     on_error: ErrorObserver | None = None):
    """Map domain errors, HTTP errors, a full disk, a lost database and a conflict with a
    concurrent transaction (deadlock, serialization failure) to clean answers.
    ``on_error`` sees every error answer first (the upload service counts refusals)."""

    async def answer(request: web.Request, error: KittehError) -> web.StreamResponse:
        if on_error is not None:
            on_error(request, error)
        return await render(request, error)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except KittehError as error:
            return await answer(request, error)
        except web.HTTPException as error:
            if error.status < 400:
                raise
            return await answer(request, http_error(error))
        except DATABASE_UNAVAILABLE as error:
            if is_storage_full(error):
                log.warning("storage full during %s %s: %r", request.method, request.path,
                            error)
                return await answer(request, StorageFull(STORAGE_FULL))
            # OSError may be the volume as well as the database: either way the request may
            # succeed when repeated, so 503 + Retry-After, never 500.
            log.warning("database or volume unavailable during %s %s: %r", request.method,
                        request.path, error)
            return await answer(request, Busy("The service is briefly unavailable (database or "
                                              "storage); try again soon.", retry_after=5))
        except RETRY_TRANSACTION as error:
            # A deadlock or serialization failure with a concurrent writer: rolled back, and
            # the same request succeeds when repeated.
            log.warning("database conflict during %s %s: %r", request.method, request.path,
                        error)
            return await answer(request, Busy("The service is busy with the same data; try "
                                              "again.", retry_after=1))

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
    """Readiness: Postgres answers within a second, and, for a service that writes the
    store, the store is there and writable (a local volume with room to spare). The store is
    reported for every service (``"store"``, and ``"volume"`` too in local mode, as before),
    but does not hold back one that only reads it (the gallery hands files to nginx by
    X-Accel-Redirect). Failures are reported in the body, never raised."""
    app = request.app
    body: dict[str, str] = {}
    gating = ["database"]
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await app[DB_POOL].fetchval("SELECT 1")
        body["database"] = "ok"
    except Exception as error:  # any failure means "not ready"
        body["database"] = repr(error)
    store = app.get(STORE)
    if store is not None:
        writes = app.get(WRITES_VOLUME, False)
        if writes:
            gating.append("store")
        body["store"] = await store_problem(store, writes, app.get(MIN_FREE_BYTES, 0)) or "ok"
        body["storage"] = store.kind
        if store.kind == "local":
            body["volume"] = body["store"]
    ready = all(body[name] == "ok" for name in gating)
    return web.json_response({"status": "ok" if ready else "unavailable", **body},
                             status=200 if ready else 503)


async def store_problem(store: ImageStore, writable: bool, min_free: int) -> str | None:
    """What is wrong with the store now, or None; a local volume's free space counts too."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            problem = await store.problem(writable)
            root = getattr(store, "inner", store)
            if problem is None and writable and isinstance(root, LocalStore):
                problem = await asyncio.get_running_loop().run_in_executor(
                    None, volume_problem, root.root, writable, min_free)
            return problem
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT:g} s"
    except Exception as error:  # any failure means "not ready"
        return repr(error)


def volume_problem(root: Path, writable: bool, min_free: int = 0) -> str | None:
    """What is wrong with the volume at ``root``, or None. Blocking: run it in an executor."""
    if not root.is_dir():
        return f"{root} is not a directory (volume not mounted?)"
    wanted = os.R_OK | os.X_OK | (os.W_OK if writable else 0)
    if not os.access(root, wanted):
        return f"{root} is not {'writable' if writable else 'readable'} by this process"
    free = shutil.disk_usage(root).free
    if free < min_free:
        return (f"storage full: {human_bytes(free)} free on {root}, below "
                f"KITTEH_MIN_FREE_BYTES ({human_bytes(min_free)})")
    return None


def add_probe_routes(app: web.Application, writes_volume: bool = False,
                     min_free_bytes: int = 0) -> None:
    app[WRITES_VOLUME] = writes_volume
    app[MIN_FREE_BYTES] = min_free_bytes
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
