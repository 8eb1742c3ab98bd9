"""Variant work in Postgres: claiming it (so two resize processes never do the same job),
doing it, and recording the result.

A variant row is ``pending`` until a process claims it (``working``, with ``claimed_at``),
then ``ready`` or ``failed`` with a reason. A live process refreshes ``claimed_at`` while it
works, so a claim that has not been refreshed for ``STALE_AFTER_SECONDS`` belongs to a
process that died and may be claimed again. Failed renders are retried a few times with
growing pauses; a claim is handed back at once only when the work was interrupted for reasons
that are not the image's (shutdown, a full queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg

from services.resize.engine import RenderedVariant, ResizeEngine
from services.resize.workers import Workers
from shared.db import DATABASE_UNAVAILABLE
from shared.errors import Busy
from shared.images import ImageRecord
from shared.storage import Storage
from shared.variants import VariantSpec

log = logging.getLogger("kitteh.resize")

HEARTBEAT_SECONDS = 5  # how often a working process refreshes its claims
# Several missed heartbeats: the claimant is gone (killed, or its claim's answer was lost when
# Postgres went down, so it never knew it held the claim). Short, because until then a page
# shows the original instead of the variant; a claimant that was merely slow makes the
# variant twice at worst (``renders`` says so).
STALE_AFTER_SECONDS = 20
MAX_ATTEMPTS = 5  # claims of one variant before a failure is final
RETRY_FAILED_AFTER_SECONDS = 60  # times the attempts so far: 1, 2, 3... minutes
RECORD_PATIENCE_SECONDS = 60  # a finished render waits this long for Postgres to come back

CLAIMABLE = f"""(
    state = 'pending'
    OR (state = 'working' AND claimed_at < now() - interval '{STALE_AFTER_SECONDS} s')
    OR (state = 'failed' AND attempts < {MAX_ATTEMPTS}
        AND updated_at < now() - interval '{RETRY_FAILED_AFTER_SECONDS} s' * attempts))"""
TAKE = "state = 'working', claimed_at = now(), attempts = attempts + 1, updated_at = now()"

CLAIM = f"""
    UPDATE variants SET {TAKE}
     WHERE image_id = $1 AND kind = ANY($2::text[]) AND {CLAIMABLE}
 RETURNING kind, width, height
"""
# A ready variant whose file is gone. The caller looks for the file again after this claim:
# a row is marked ready only after its file is in place, so a file seen now was not lost.
CLAIM_LOST = f"""
    UPDATE variants SET {TAKE}
     WHERE image_id = $1 AND kind = ANY($2::text[]) AND state = 'ready'
 RETURNING kind, width, height
"""
UNCLAIM_FOUND = """
    UPDATE variants SET state = 'ready', claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND kind = ANY($2::text[]) AND state = 'working'
"""
# Whole images where possible (ordered so an image's rows sit together), so one decode makes
# all of its variants; SKIP LOCKED lets every resize process run this at the same time.
CLAIM_BACKLOG = f"""
    WITH picked AS (
        SELECT image_id, kind FROM variants
         WHERE {CLAIMABLE}
         ORDER BY updated_at, image_id
         LIMIT $1
           FOR UPDATE SKIP LOCKED)
    UPDATE variants v SET {TAKE}
      FROM picked
     WHERE v.image_id = picked.image_id AND v.kind = picked.kind
 RETURNING v.image_id, v.kind
"""
HEARTBEAT = """
    UPDATE variants SET claimed_at = now()
     WHERE image_id = $1 AND kind = ANY($2::text[]) AND state = 'working'
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


class RenderFailed(Exception):
    """The variants could not be made from this original; recorded as ``failed``."""


class OriginalMissing(RenderFailed):
    """The row is there but its original file is not: a case for the sweeper."""


def _largest_first(rows) -> list[VariantSpec]:
    return sorted((VariantSpec(r["kind"], r["width"], r["height"]) for r in rows),
                  key=lambda s: s.width, reverse=True)


async def claim(pool: asyncpg.Pool, image: ImageRecord, kinds: Sequence[str]) -> list[VariantSpec]:
    """Claim the listed variants that nobody is working on. Largest first, as the engine
    wants them."""
    return _largest_first(await pool.fetch(CLAIM, image.id, list(kinds)))


async def claim_lost(pool: asyncpg.Pool, storage: Storage, image: ImageRecord,
                     kinds: Sequence[str]) -> list[VariantSpec]:
    """Claim ready variants whose file is missing, to make them again. A file that appeared
    meanwhile (another process made it) is not lost: its row goes back to ready untouched."""
    claimed = _largest_first(await pool.fetch(CLAIM_LOST, image.id, list(kinds)))
    ext = image.variant_format.extension
    found = [s.kind for s in claimed
             if await exists(storage.path(image.storage_key, s.kind, ext))]
    if found:
        await pool.execute(UNCLAIM_FOUND, image.id, found)
    return [s for s in claimed if s.kind not in found]


async def claim_backlog(pool: asyncpg.Pool, limit: int) -> dict[int, set[str]]:
    """Variants this process now owns (``FOR UPDATE SKIP LOCKED``), by image id."""
    claimed: dict[int, set[str]] = {}
    for row in await pool.fetch(CLAIM_BACKLOG, limit):
        claimed.setdefault(row["image_id"], set()).add(row["kind"])
    return claimed


async def release(pool: asyncpg.Pool, image_id: int, kinds: Sequence[str]) -> None:
    """Hand claims back (best effort: with the database gone, they go stale instead)."""
    with contextlib.suppress(*DATABASE_UNAVAILABLE):
        await pool.execute(RELEASE, image_id, list(kinds))


async def exists(path: Path) -> bool:
    """A stat off the event loop (the volume may be a slow network disk)."""
    return await asyncio.get_running_loop().run_in_executor(None, path.exists)


def specs_for(image: ImageRecord, kinds: set[str]) -> list[VariantSpec]:
    return sorted((VariantSpec(v.kind, v.width, v.height) for v in image.variants
                   if v.kind in kinds), key=lambda s: s.width, reverse=True)


async def make_variants(pool: asyncpg.Pool, storage: Storage, engine: ResizeEngine,
                        workers: Workers, image: ImageRecord, specs: Sequence[VariantSpec],
                        wait_for_room: bool = False) -> list[RenderedVariant]:
    """Render claimed variants, write them atomically, mark them ready.

    Raises ``RenderFailed`` (recorded) when this original cannot be rendered or written,
    ``Busy`` when the workers are full (claims handed back), and a database error when the
    result could not be recorded within ``RECORD_PATIENCE_SECONDS`` (the claims go stale).
    """
    if not specs:
        return []
    unfinished = [s.kind for s in specs]
    interrupted = True  # until proven otherwise: hand the claims back on the way out
    try:
        async with _heartbeat(pool, image.id, unfinished):
            rendered = await _render(pool, storage, engine, workers, image, specs,
                                     wait_for_room)
            loop = asyncio.get_running_loop()
            for variant in rendered:
                try:
                    await loop.run_in_executor(None, storage.write_bytes, image.storage_key,
                                               variant.kind, image.variant_format.extension,
                                               variant.data)
                except OSError as error:  # the volume refused it (full, read-only)
                    await _failed(pool, image, unfinished, error)
                status = await _record(pool, MARK_READY, image.id, variant.kind,
                                       variant.width, variant.height, len(variant.data))
                unfinished.remove(variant.kind)
                if status == "UPDATE 0":  # deleted while we rendered: take our files back
                    await _remove_if_deleted(pool, storage, image)
                    unfinished.clear()
                    break
        interrupted = False
    except (RenderFailed, *DATABASE_UNAVAILABLE):
        interrupted = False  # recorded as failed, or nothing can be recorded now
        raise
    finally:
        if interrupted and unfinished:  # cancelled (shutdown) or Busy: someone else may go on
            await asyncio.shield(release(pool, image.id, list(unfinished)))
    log.info("made %s of %s", ", ".join(s.kind for s in specs), image.name)
    return rendered


async def _remove_if_deleted(pool: asyncpg.Pool, storage: Storage, image: ImageRecord) -> None:
    """The image was deleted while its variants were made: writing them re-created its
    directory, and nginx would serve them. Remove it, unless the same bytes were uploaded
    again meanwhile (a new row with the same storage key owns the directory then)."""
    if await pool.fetchval("SELECT 1 FROM images WHERE storage_key = $1", image.storage_key):
        return
    await asyncio.get_running_loop().run_in_executor(None, storage.remove_image,
                                                     image.storage_key)
    log.info("%s was deleted while its variants were made; removed them", image.name)


async def _render(pool, storage, engine, workers, image, specs, wait_for_room):
    source = storage.path(image.storage_key, "original", image.format.extension)
    try:
        return await workers.run(engine.render, source, image.format, specs,
                                 wait_for_room=wait_for_room)
    except Busy:
        raise
    except FileNotFoundError as error:
        await _failed(pool, image, [s.kind for s in specs], error, OriginalMissing)
    except Exception as error:  # the engine failed on this file
        await _failed(pool, image, [s.kind for s in specs], error)


async def _failed(pool: asyncpg.Pool, image: ImageRecord, kinds: list[str], error: Exception,
                  raising: type[RenderFailed] = RenderFailed) -> None:
    reason = f"{type(error).__name__}: {error}"
    log.error("making %s of %s failed: %s", ", ".join(kinds), image.name, reason)
    await _record(pool, MARK_FAILED, image.id, list(kinds), reason[:500])
    kinds.clear()
    raise raising(reason) from error


async def _record(pool: asyncpg.Pool, query: str, *args) -> str:
    """Record a result, waiting out a short database outage: the work is done and on disk,
    and a result lost here would be rendered again by someone else. Returns the status."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORD_PATIENCE_SECONDS
    delay = 0.2
    while True:
        try:
            return await pool.execute(query, *args)
        except DATABASE_UNAVAILABLE as error:
            if loop.time() + delay > deadline:
                raise
            log.warning("recording a result: database unavailable (%r); retrying", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


@contextlib.asynccontextmanager
async def _heartbeat(pool: asyncpg.Pool, image_id: int, kinds: list[str]) -> AsyncIterator[None]:
    """Keep our claims fresh while we work, so nobody takes them for a dead process's."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(*DATABASE_UNAVAILABLE):
                await pool.execute(HEARTBEAT, image_id, list(kinds))

    task = asyncio.create_task(beat(), name=f"heartbeat-{image_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
