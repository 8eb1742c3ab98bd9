"""Logs: one JSON object per line, each carrying the id of the request it belongs to.

The gateway gives every request an ``X-Request-Id`` (the client's own if it is a short safe
token, else one nginx makes) and passes it to the service; a service called directly makes
one itself. ``request_id_middleware`` keeps it in a context variable for the request's
lifetime, so every line logged while handling it says ``"request_id": "..."``, including
lines of tasks started from the request (asyncio copies the context into them). The upload
service hands the id on to resize (``services/upload/resize_client.py``), so one upload can
be followed gateway → upload → resize with one grep. Work in executor threads and background
loops (the reconciler) logs ``"request_id": null``.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar

from aiohttp import web
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-Id"
# The same rule as the gateway's map (deploy/nginx/gateway.conf.template): anything else is
# not ours to copy into logs and headers (newlines, quotes, a megabyte of text).
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

REQUEST_ID: ContextVar[str | None] = ContextVar("kitteh_request_id", default=None)


def safe_request_id(offered: str | None) -> str:
    """The offered id if it is a short safe token, else a fresh one."""
    if offered and SAFE_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


@web.middleware
async def request_id_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Outermost: the id is known to everything below, and returned on every answer."""
    request_id = safe_request_id(request.headers.get(REQUEST_ID_HEADER))
    token = REQUEST_ID.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as answer:  # redirects (and errors raised past the middleware)
        answer.headers[REQUEST_ID_HEADER] = request_id
        raise
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def json_formatter(service: str) -> logging.Formatter:
    """``{"time": ..., "level": ..., "logger": ..., "message": ..., "service": ...,
    "request_id": ...}``; a traceback goes into ``exc_info`` as one escaped string, so a
    line is still one object."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        static_fields={"service": service},
        timestamp="time",
    )


def configure_logging(service: str, level: str) -> None:
    """Every logger of the process writes JSON lines to stderr (the runner appends them to
    ``$KITTEH_DATA_DIR/logs/<service>.log``; compose keeps them as the container's log)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(json_formatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
