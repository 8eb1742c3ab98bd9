"""``POST /api/albums`` and ``DELETE /api/albums/{token}`` (reads are the gallery's)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.upload.access import gate_for, share_urls_for
from services.upload.albums import clean_title, create_album, delete_album, parse_entries
from services.upload.delete import bearer_token
from services.upload.jsonbody import read_json, text_fields
from services.upload.keys import CONFIG
from services.upload.options import parse_options
from shared.albums import album_json
from shared.db import DB_POOL
from shared.errors import BadRequest
from shared.storage import STORE
from shared.urls import Urls


async def api_create_album(request: web.Request) -> web.Response:
    app = request.app
    gate = gate_for(request)
    await gate.check_header()
    await gate.check_fields({})  # keys mode: a live key, as for uploads
    body = await read_json(request)
    entries = parse_entries(body.get("images"))
    title = clean_title(body.get("title"))
    options = parse_options(text_fields(body, ("visibility", "expires_in")))
    async with app[DB_POOL].acquire() as conn, conn.transaction():
        album, delete_token = await create_album(conn, entries, title, options, gate.key)
    answer = album_json(album, Urls.of(app[CONFIG]), share_urls_for(request))
    answer["delete_token"] = delete_token
    return web.json_response(answer, status=201)


async def api_delete_album(request: web.Request) -> web.Response:
    presented = bearer_token(request.headers.get("Authorization"))
    raw = request.query.get("images", "0").strip().lower()
    if raw not in ("0", "1", "true", "false", ""):
        raise BadRequest("'images' must be 1 (delete the album's pictures too) or 0.")
    token = request.match_info["token"].lower()
    await delete_album(request.app[DB_POOL], request.app[STORE], token, presented,
                       raw in ("1", "true"))
    await asyncio.sleep(request.app[CONFIG].cache_seconds + 0.1)  # as for an image delete
    return web.Response(status=204)
