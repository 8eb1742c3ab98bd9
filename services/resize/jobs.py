"""Variant work in Postgres: claiming it (so two resize processes never do the same job),
doing it, and recording the result."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import asyncpg

from services.resize.engine import RenderedVariant, ResizeEngine
from services.resize.workers import Workers
from shared.errors import Busy
from shared.images import ImageRecord
from shared.storage import Storage
from shared.variants import VariantSpec

log = logging.getLogger("kitteh.resize")

STALE_AFTER_SECONDS = 120  # a claim older than this belongs to a resize process that died

CLAIM = f"""
    UPDATE variants
       SET state = 'working', claimed_at = now(), attempts = attempts + 1, updated_at = now()
     WHERE image_id = $1 AND kind = ANY($2::text[])
       AND (state = 'pending'
            OR (state = 'working' AND claimed_at < now() - interval '{STALE_AFTER_SECONDS} s')
            OR ($3 AND state IN ('ready', 'failed')))
 RETURNING kind, width, height
"""
CLAIM_BACKLOG = f"""
    WITH picked AS (
        SELECT image_id, kind FROM variants
         WHERE state = 'pending'
            OR (state = 'working' AND claimed_at < now() - interval '{STALE_AFTER_SECONDS} s')
         ORDER BY updated_at
         LIMIT $1
           FOR UPDATE SKIP LOCKED)
    UPDATE variants v
       SET state = 'working', claimed_at = now(), attempts = attempts + 1, updated_at = now()
      FROM picked
     WHERE v.image_id = picked.image_id AND v.kind = picked.kind
 RETURNING v.image_id, v.kind
"""
MARK_READY = """
    UPDATE variants
       SET state = 'ready', width = $3, height = $4, bytes = $5, renders = renders + 1,
           error = NULL, claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND kind = $2
"""
MARK_FAILED = """
    UPDATE variants
       SET state = 'failed', error = $3, claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND kind = ANY($2::text[])
"""
RELEASE = """
    UPDATE variants SET state = 'pending', claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND kind = ANY($2::text[]) AND state = 'working'
"""


async def claim(pool: asyncpg.Pool, image: ImageRecord, kinds: Sequence[str],
                force: bool = False) -> list[VariantSpec]:
    """Claim the listed variants that nobody is working on; ``force`` also re-makes finished
    ones (their file went missing). Largest first, as the engine wants them."""
    rows = await pool.fetch(CLAIM, image.id, list(kinds), force)
    return sorted((VariantSpec(r["kind"], r["width"], r["height"]) for r in rows),
                  key=lambda s: s.width, reverse=True)


async def claim_backlog(pool: asyncpg.Pool, limit: int) -> dict[int, set[str]]:
    """Variants this process now owns (``FOR UPDATE SKIP LOCKED``), by image id."""
    claimed: dict[int, set[str]] = {}
    for row in await pool.fetch(CLAIM_BACKLOG, limit):
        claimed.setdefault(row["image_id"], set()).add(row["kind"])
    return claimed


def specs_for(image: ImageRecord, kinds: set[str]) -> list[VariantSpec]:
    return sorted((VariantSpec(v.kind, v.width, v.height) for v in image.variants
                   if v.kind in kinds), key=lambda s: s.width, reverse=True)


async def make_variants(pool: asyncpg.Pool, storage: Storage, engine: ResizeEngine,
                        workers: Workers, image: ImageRecord, specs: Sequence[VariantSpec],
                        wait_for_room: bool = False) -> list[RenderedVariant]:
    """Render claimed variants, write them atomically, mark them ready."""
    if not specs:
        return []
    kinds = [s.kind for s in specs]
    source = storage.path(image.storage_key, "original", image.format.extension)
    try:
        rendered = await workers.run(engine.render, source, image.format, specs,
                                     wait_for_room=wait_for_room)
    except (asyncio.CancelledError, Busy, FileNotFoundError):
        # Not this image's fault (shutting down, saturated, original being deleted): give the
        # claim back so the reconciler or the next request picks it up.
        await pool.execute(RELEASE, image.id, kinds)
        raise
    except Exception as error:  # the engine failed on this file: record why, never loop on it
        log.exception("rendering %s failed", image.name)
        await pool.execute(MARK_FAILED, image.id, kinds, f"{type(error).__name__}: {error}")
        raise
    loop = asyncio.get_running_loop()
    for variant in rendered:
        await loop.run_in_executor(None, storage.write_bytes, image.storage_key, variant.kind,
                                   image.format.variant_extension, variant.data)
        await pool.execute(MARK_READY, image.id, variant.kind, variant.width, variant.height,
                           len(variant.data))
    log.info("made %s of %s", ", ".join(kinds), image.name)
    return rendered
