"""HTTP in, variant work, HTTP out."""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.resize.jobs import claim, make_variants
from services.resize.keys import CONFIG, ENGINE, STORAGE, WORKERS
from shared.db import DB_POOL
from shared.errors import NotFound
from shared.images import ImageRecord
from shared.queries import image_by_storage_key, image_by_token
from shared.variants import KINDS

IMMUTABLE = "public, max-age=31536000, immutable"
WAIT_STEP = 0.05


async def make_all(request: web.Request) -> web.Response:
    """POST /variants/{token}: make whatever variants are not made yet, now."""
    app = request.app
    image = await image_by_token(app[DB_POOL], request.match_info["token"].lower())
    if image is None:
        raise NotFound("No image has that token.")
    specs = await claim(app[DB_POOL], image, KINDS)
    await make_variants(app[DB_POOL], app[STORAGE], app[ENGINE], app[WORKERS], image, specs)
    refreshed = await image_by_token(app[DB_POOL], image.token)
    assert refreshed is not None
    return web.json_response({v.kind: v.state for v in refreshed.variants})


async def variant_on_demand(request: web.Request) -> web.StreamResponse:
    """GET /i/{shard}/{key}/{kind}.{ext}: the gateway's fallback for a variant file that is
    not on the volume (not made yet, or lost). Makes it, writes it, returns it."""
    app = request.app
    key, kind, ext = (request.match_info[k] for k in ("key", "kind", "ext"))
    image = await image_by_storage_key(app[DB_POOL], key)
    if image is None or kind not in KINDS or ext != image.format.variant_extension:
        raise NotFound("No such image file.")
    storage = app[STORAGE]
    path = storage.path(key, kind, ext)
    if not path.exists():
        await _make_missing(request, image)
    if not path.exists():  # somebody else holds the claim: wait for their file
        await _wait_for(path, app[CONFIG].reconcile_interval * 6)
    return web.FileResponse(path, headers={
        "Cache-Control": IMMUTABLE, "Content-Type": image.format.variant_content_type,
        "X-Content-Type-Options": "nosniff"})


async def _make_missing(request: web.Request, image: ImageRecord) -> None:
    app = request.app
    storage = app[STORAGE]
    missing = [k for k in KINDS
               if not storage.path(image.storage_key, k, image.format.variant_extension).exists()]
    specs = await claim(app[DB_POOL], image, missing, force=True)
    await make_variants(app[DB_POOL], storage, app[ENGINE], app[WORKERS], image, specs)


async def _wait_for(path, seconds: float) -> None:
    for _ in range(int(seconds / WAIT_STEP)):
        if path.exists():
            return
        await asyncio.sleep(WAIT_STEP)
    raise NotFound("This variant could not be made.")
