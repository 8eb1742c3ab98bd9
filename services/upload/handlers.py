"""HTTP in, domain call, HTTP out."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from services.upload.access import UploadGate
from services.upload.delete import bearer_token, delete_image
from services.upload.ingest import IngestResult, Placement, ingest
from services.upload.keys import CONFIG, IMAGE_WORKERS
from services.upload.metrics import UPLOAD_METRICS
from services.upload.options import parse_options
from services.upload.receive import receive_upload
from services.upload.resize_client import request_variants
from shared.db import DATABASE_UNAVAILABLE, DB_POOL
from shared.errors import Unauthorized
from shared.http import bearer
from shared.images import image_json
from shared.queries import image_by_token
from shared.storage import SCRATCH, STORE
from shared.upload_keys import key_for_secret
from shared.urls import Urls


async def _upload(request: web.Request) -> IngestResult:
    app = request.app
    limits = app[CONFIG].limits
    gate = UploadGate(app[DB_POOL], app[CONFIG].uploads, request.headers.get("Authorization"))
    await gate.check_header()  # a wrong key is refused before the body is read

    async def before_file(fields: dict[str, str]) -> None:
        await gate.check_fields(fields)
        parse_options(fields)  # options sent before the file: refused before it is written

    received = await receive_upload(request, app[SCRATCH], limits, before_file)
    app[UPLOAD_METRICS].received_bytes.inc(received.size)
    try:
        options = parse_options(received.fields)
    except BaseException:
        received.path.unlink(missing_ok=True)
        raise
    placement = Placement(gate.key.id if gate.key else None, options)
    result = await ingest(app[DB_POOL], app[STORE], app[SCRATCH], limits, received,
                          app[IMAGE_WORKERS], placement)
    app[UPLOAD_METRICS].accepted(result.created, result.image.format.name)
    if result.created and await request_variants(app, result.image.token):
        # Committed already: a database hiccup now must not turn the 201 into a 503 (the
        # client would retry and get a 200 for an upload it was told had failed).
        with contextlib.suppress(*DATABASE_UNAVAILABLE):
            refreshed = await image_by_token(app[DB_POOL], result.image.token)
            if refreshed is not None:
                result = IngestResult(refreshed, True, result.delete_token)
    return result


async def api_upload(request: web.Request) -> web.Response:
    result = await _upload(request)
    body = image_json(result.image, Urls.of(request.app[CONFIG]))
    if result.created:
        body["delete_token"] = result.delete_token
    return web.json_response(body, status=201 if result.created else 200)


async def form_upload(request: web.Request) -> web.Response:
    """The no-JavaScript path: 303 to the image's page, with a flash flag for the page."""
    result = await _upload(request)
    flag = "uploaded" if result.created else "existing"
    raise web.HTTPSeeOther(f"{result.image.page_path}?{flag}=1")


async def api_delete(request: web.Request) -> web.Response:
    presented = bearer_token(request.headers.get("Authorization"))
    await delete_image(request.app[DB_POOL], request.app[STORE],
                       request.match_info["token"].lower(), presented)
    # The gateway may hold the page (micro-cache), open file descriptors of the files and,
    # in S3 mode, the files themselves (file cache) for KITTEH_CACHE_SECONDS, which nginx
    # counts in whole seconds: up to one second more. Answering only after that means that
    # once the deleter is told "deleted", nobody is served the picture any more.
    await asyncio.sleep(request.app[CONFIG].cache_seconds + 1.1)
    return web.Response(status=204)


async def api_key_me(request: web.Request) -> web.Response:
    """Which key this is: lets the pages show moderation to an admin's browser."""
    secret = bearer(request.headers.get("Authorization"))
    key = await key_for_secret(request.app[DB_POOL], secret) if secret else None
    if key is None:
        raise Unauthorized("Send a live upload key as 'Authorization: Bearer <key>'.")
    return web.json_response({"name": key.name, "admin": key.admin})
