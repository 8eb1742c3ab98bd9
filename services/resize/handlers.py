"""HTTP in, variant work, HTTP out."""

from __future__ import annotations

import logging

from aiohttp import web

from services.resize.jobs import (
    OriginalMissing,
    RenderFailed,
    claim,
    claim_lost,
    make_variants,
)
from services.resize.keys import ENGINE, RECONCILE_SOON, RENDITIONS_SOON, SWEEP_SOON, WORKERS
from services.resize.waiters import WAITERS
from shared.db import DATABASE_UNAVAILABLE, DB_POOL, RETRY_TRANSACTION
from shared.errors import Busy, KittehError, NotFound
from shared.images import ImageRecord
from shared.queries import image_by_storage_key, image_by_token
from shared.storage import STORE, StoredFileMissing, file_name
from shared.storage.respond import stored_file_response
from shared.variants import BASE, EAGER_KINDS, FORMAT_ORDER, KINDS, largest_first

log = logging.getLogger("kitteh.resize")

IMMUTABLE = "public, max-age=31536000, immutable"
# How long a request waits for a variant another process is making. Beyond that the answer is
# 503, and the gateway shows the original instead: a slow variant never stalls a page.
WAIT_FOR_OTHERS_SECONDS = 10.0
STATE = "SELECT state FROM variants WHERE image_id = $1 AND kind = $2 AND format = $3"


async def make_all(request: web.Request) -> web.Response:
    """POST /variants/{token}: make the first variants (tiny, large, monstrous in the base
    format) now, while the upload waits; the background reconciler, woken here, makes the
    rest (the display widths, AVIF, WebP) after the upload has answered."""
    app = request.app
    image = await image_by_token(app[DB_POOL], request.match_info["token"].lower())
    if image is None:
        raise NotFound("No image has that token.")
    specs = await claim(app[DB_POOL], image, [(kind, BASE) for kind in EAGER_KINDS])
    try:
        await make_variants(app[DB_POOL], app[STORE], app[ENGINE], app[WORKERS], image,
                            specs)
    except RenderFailed as error:  # recorded; the states below say so
        _sweep_soon_if_lost(app, error)
    app[RECONCILE_SOON].set()
    app[RENDITIONS_SOON].set()  # a video's or an animation's, if it has any
    refreshed = await image_by_token(app[DB_POOL], image.token)
    if refreshed is None:  # deleted while we worked
        raise NotFound("No image has that token.")
    return web.json_response({v.kind: v.state for v in refreshed.variants})


async def variant_on_demand(request: web.Request) -> web.StreamResponse:
    """GET /i/{shard}/{key}/{kind}.{ext}: the gateway's fallback for a variant file that is
    not on the volume (not made yet, or lost). Makes it, writes it, returns it.

    Any answer but the file is 404 (no such image) or 503 (not now): on 503 the gateway
    serves the original, uncached, so a page never shows a broken image. That holds for a
    race lost while making the file too (a deadlock with another resize process, anything
    unforeseen): it is logged with its traceback and answered 503, never 500."""
    app = request.app
    key, kind, ext = (request.match_info[k] for k in ("key", "kind", "ext"))
    image = await image_by_storage_key(app[DB_POOL], key)
    variant_format = _format_of(image, ext) if image is not None else None
    row = image.variant(kind, variant_format) if image and variant_format else None
    if image is None or variant_format is None or row is None or row.state == "dropped":
        raise NotFound("No such image file.")  # a dropped file's URL is never published
    store, name = app[STORE], file_name(key, kind, ext)
    if not await store.exists(name):
        try:
            await _make_missing(request, image, kind, variant_format)
        except RenderFailed as error:
            _sweep_soon_if_lost(app, error)
            raise Busy("This variant cannot be made; showing the original.",
                       retry_after=60) from None
        except (KittehError, *DATABASE_UNAVAILABLE, *RETRY_TRANSACTION):
            raise  # 503 (busy, database away, a deadlock) or the like: the error middleware
        except Exception:
            log.exception("making %s.%s of %s on demand failed", kind, ext, image.name)
            raise Busy("This variant could not be made just now; showing the original.",
                       retry_after=2) from None
        state = await app[DB_POOL].fetchval(STATE, image.id, kind, variant_format)
        if state == "working":  # another process, here or on another node, is making it
            state = await _wait_for_others(app, (image.id, kind, variant_format))
        if state == "dropped":
            raise NotFound("No such image file.")  # made just now, larger than the base one
        if state != "ready":  # failed and waiting for its next retry: nothing to wait for
            raise Busy("This variant is not available yet; showing the original.",
                       retry_after=60)
    try:
        return await stored_file_response(request, store, name, {
            "Cache-Control": IMMUTABLE,
            "Content-Type": image.variant_content_type(variant_format),
            "X-Content-Type-Options": "nosniff"})
    except StoredFileMissing:  # deleted, or lost again, since it was made
        raise Busy("This variant is not available yet; showing the original.",
                   retry_after=2) from None


def _format_of(image: ImageRecord, ext: str) -> str | None:
    """The variant format (``base``, ``avif``...) whose files end in ``ext``, if any."""
    return next((f for f in FORMAT_ORDER if image.variant_extension(f) == ext), None)


async def _make_missing(request: web.Request, image: ImageRecord, kind: str,
                        variant_format: str) -> None:
    """Make the requested file; for a base-format one, every other missing base file too
    (the page that asked for one asks for the others)."""
    app = request.app
    storage, pool = app[STORE], app[DB_POOL]
    kinds = KINDS if variant_format == BASE else (kind,)
    ext = image.variant_extension(variant_format)
    missing = [(k, variant_format) for k in kinds
               if image.variant(k, variant_format) is not None
               and not await storage.exists(file_name(image.storage_key, k, ext))]
    specs = await claim(pool, image, missing) + await claim_lost(pool, storage, image, missing)
    await make_variants(pool, storage, app[ENGINE], app[WORKERS], image, largest_first(specs))


def _sweep_soon_if_lost(app: web.Application, error: RenderFailed) -> None:
    if isinstance(error, OriginalMissing):
        app[SWEEP_SOON].set()  # the sweeper decides about the row, with its safeguards


async def _wait_for_others(app: web.Application, key: tuple[int, str, str]) -> str:
    """The variant's state once whoever is making it has finished (woken by its NOTIFY)."""
    state = "working"

    async def finished() -> bool:
        nonlocal state
        state = await app[DB_POOL].fetchval(STATE, *key)
        return state != "working"

    if not await app[WAITERS].wait(key, finished, WAIT_FOR_OTHERS_SECONDS):
        raise Busy("This variant is still being made; try again shortly.", retry_after=2)
    return state
