"""HTTP in, domain call, HTTP out: images (the form and the share target: forms.py; albums:
album_handlers.py)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from services.upload.access import UploadGate, gate_for, share_urls_for
from services.upload.delete import bearer_token, delete_image
from services.upload.fetch import fetch_link
from services.upload.ingest import IngestResult, Placement, ingest
from services.upload.jsonbody import read_json, read_urlencoded, text_fields
from services.upload.keys import CONFIG, IMAGE_WORKERS
from services.upload.metrics import UPLOAD_METRICS
from services.upload.options import parse_options
from services.upload.receive import NoFile, ReceivedFile, receive_upload
from services.upload.resize_client import request_variants
from shared.db import DATABASE_UNAVAILABLE, DB_POOL
from shared.errors import BadRequest, Unauthorized
from shared.http import bearer
from shared.images import image_json
from shared.queries import image_by_token
from shared.storage import SCRATCH, STORE
from shared.upload_keys import key_for_secret
from shared.urls import Urls


async def _receive(request: web.Request, gate: UploadGate) -> ReceivedFile:
    """The file of a multipart upload, or the file a link names (a ``url`` field, or a JSON
    body ``{"url": ...}``): either way the same ReceivedFile for the same ingest."""
    app = request.app
    limits = app[CONFIG].limits

    async def before_file(fields: dict[str, str]) -> None:
        await gate.check_fields(fields)
        parse_options(fields)  # options sent before the file: refused before it is written

    if request.content_type in ("application/json", "application/x-www-form-urlencoded"):
        if request.content_type == "application/json":
            fields = text_fields(await read_json(request), ("url", "visibility", "expires_in"))
        else:
            fields = await read_urlencoded(request)
        if not fields.get("url", "").strip():
            raise BadRequest("Send {\"url\": \"https://...\"} to upload from a link.")
        await before_file(fields)
        return await fetch_link(app, app[SCRATCH], limits, fields["url"], fields)
    try:
        received = await receive_upload(request, app[SCRATCH], limits, before_file)
    except NoFile as missing:
        if not missing.fields.get("url", "").strip():
            raise
        return await fetch_link(app, app[SCRATCH], limits, missing.fields["url"],
                                missing.fields)
    if received.fields.get("url", "").strip():
        received.path.unlink(missing_ok=True)
        raise BadRequest("Send a file or a link ('url'), not both.")
    return received


async def _upload(request: web.Request) -> IngestResult:
    app = request.app
    limits = app[CONFIG].limits
    gate = gate_for(request)
    await gate.check_header()  # a wrong key is refused before the body is read
    received = await _receive(request, gate)
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
    body = image_json(result.image, Urls.of(request.app[CONFIG]), share_urls_for(request))
    if result.created:
        body["delete_token"] = result.delete_token
    return web.json_response(body, status=201 if result.created else 200)


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
