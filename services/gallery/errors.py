"""Errors as the gallery shows them: JSON under /api/, a helpful HTML page elsewhere."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from shared.errors import KittehError
from shared.http import json_error


async def render_error(request: web.Request, error: KittehError) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        return json_error(error)
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"error": error}, status=error.status)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response
