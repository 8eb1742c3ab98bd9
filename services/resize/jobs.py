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
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import NoReturn

import asyncpg

from services.resize.engine import RenderedVariant, ResizeEngine
from services.resize.posters import remake_poster
from services.resize.workers import Workers
from shared.db import DATABASE_UNAVAILABLE, RETRY_TRANSACTION
from shared.errors import Busy
from shared.images import ImageRecord
from shared.storage import ImageStore, StoreUnavailable, file_name
from shared.variants import BASE, EAGER_KINDS, VariantSpec, largest_first

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

# The recorded size of a base-format variant that is in place.
BASE_BYTES = f"""SELECT bytes FROM variants
                  WHERE image_id = $1 AND kind = $2 AND format = '{BASE}' AND state = 'ready'"""
# Variants are (size, format) pairs: queries take them as two arrays, kinds and formats.
PAIRS = "(kind, format) IN (SELECT * FROM unnest($2::text[], $3::text[]))"
CLAIM = f"""
    UPDATE variants SET {TAKE}
     WHERE image_id = $1 AND {PAIRS} AND {CLAIMABLE}
 RETURNING kind, format, width, height
"""
# A ready variant whose file is gone. The caller looks for the file again after this claim:
# a row is marked ready only after its file is in place, so a file seen now was not lost.
CLAIM_LOST = f"""
    UPDATE variants SET {TAKE}
     WHERE image_id = $1 AND {PAIRS} AND state = 'ready'
 RETURNING kind, format, width, height
"""
UNCLAIM_FOUND = f"""
    UPDATE variants SET state = 'ready', claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND {PAIRS} AND state = 'working'
"""
# An upload's first variants are made by the request that waits for them (upload's eager call):
# the background leaves the image alone until they are done, so it neither takes them nor
# decodes the same original beside that request. Unless they have been waiting longer than
# EAGER_GRACE_SECONDS: the call never came (resize was down, upload crashed).
EAGER_GRACE_SECONDS = 10
FIRST_VARIANTS_UNDER_WAY = f"""
    SELECT 1 FROM variants e
     WHERE e.image_id = variants.image_id AND e.format = '{BASE}'
       AND e.kind IN ({", ".join(f"'{k}'" for k in EAGER_KINDS)})
       AND e.state IN ('pending', 'working')
       AND e.updated_at > now() - interval '{EAGER_GRACE_SECONDS} s'"""
# Whole images where possible (ordered so an image's rows sit together), so one decode makes
# all of its variants; SKIP LOCKED lets every resize process run this at the same time.
CLAIM_BACKLOG = f"""
    WITH picked AS (
        SELECT image_id, kind, format FROM variants
         WHERE {CLAIMABLE} AND NOT EXISTS ({FIRST_VARIANTS_UNDER_WAY})
         ORDER BY updated_at, image_id
         LIMIT $1
           FOR UPDATE SKIP LOCKED)
    UPDATE variants v SET {TAKE}
      FROM picked
     WHERE v.image_id = picked.image_id AND v.kind = picked.kind AND v.format = picked.format
 RETURNING v.image_id, v.kind, v.format
"""
HEARTBEAT = f"""
    UPDATE variants SET claimed_at = now()
     WHERE image_id = $1 AND {PAIRS} AND state = 'working'
"""
MARK_READY = """
    UPDATE variants
       SET state = $6, width = $4, height = $5, bytes = $7, renders = renders + 1,
           error = NULL, claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND kind = $2 AND format = $3
"""
MARK_FAILED = f"""
    UPDATE variants
       SET state = 'failed', error = $4, claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND {PAIRS}
"""
RELEASE = f"""
    UPDATE variants SET state = 'pending', claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND {PAIRS} AND state = 'working'
"""
SET_THUMBHASH = "UPDATE images SET thumbhash = $2 WHERE id = $1 AND thumbhash IS NULL"


class RenderFailed(Exception):
    """The variants could not be made from this original; recorded as ``failed``."""


class OriginalMissing(RenderFailed):
    """The row is there but its original file is not: a case for the sweeper."""


Pair = tuple[str, str]  # (kind, format): one variant row, one file


def _arrays(pairs: Iterable[Pair]) -> tuple[list[str], list[str]]:
    pairs = list(pairs)
    return [kind for kind, _ in pairs], [fmt for _, fmt in pairs]


def _pair(spec: VariantSpec) -> Pair:
    return spec.kind, spec.format


def _largest_first(rows) -> list[VariantSpec]:
    return largest_first(VariantSpec(r["kind"], r["width"], r["height"], r["format"])
                         for r in rows)


async def claim(pool: asyncpg.Pool, image: ImageRecord,
                pairs: Iterable[Pair]) -> list[VariantSpec]:
    """Claim the listed variants that nobody is working on. Largest first, as the engine
    wants them."""
    return _largest_first(await pool.fetch(CLAIM, image.id, *_arrays(pairs)))


async def claim_lost(pool: asyncpg.Pool, storage: ImageStore, image: ImageRecord,
                     pairs: Iterable[Pair]) -> list[VariantSpec]:
    """Claim ready variants whose file is missing, to make them again. A file that appeared
    meanwhile (another process made it) is not lost: its row goes back to ready untouched."""
    claimed = _largest_first(await pool.fetch(CLAIM_LOST, image.id, *_arrays(pairs)))
    found = [_pair(s) for s in claimed if await storage.exists(stored_name(image, s))]
    if found:
        await pool.execute(UNCLAIM_FOUND, image.id, *_arrays(found))
    return [s for s in claimed if _pair(s) not in found]


async def claim_backlog(pool: asyncpg.Pool, limit: int) -> dict[int, set[Pair]]:
    """Variants this process now owns (``FOR UPDATE SKIP LOCKED``), by image id."""
    claimed: dict[int, set[Pair]] = {}
    for row in await pool.fetch(CLAIM_BACKLOG, limit):
        claimed.setdefault(row["image_id"], set()).add((row["kind"], row["format"]))
    return claimed


async def release(pool: asyncpg.Pool, image_id: int, pairs: Iterable[Pair]) -> None:
    """Hand claims back (best effort: with the database gone, they go stale instead)."""
    with contextlib.suppress(*DATABASE_UNAVAILABLE, *RETRY_TRANSACTION):
        await pool.execute(RELEASE, image_id, *_arrays(pairs))


def stored_name(image: ImageRecord, spec: VariantSpec) -> str:
    return file_name(image.storage_key, spec.kind, image.variant_extension(spec.format))


def specs_for(image: ImageRecord, pairs: set[Pair]) -> list[VariantSpec]:
    return largest_first(VariantSpec(v.kind, v.width, v.height, v.format)
                         for v in (*image.variants, *image.modern) if (v.kind, v.format) in pairs)


async def make_variants(pool: asyncpg.Pool, storage: ImageStore, engine: ResizeEngine,
                        workers: Workers, image: ImageRecord, specs: Sequence[VariantSpec],
                        wait_for_room: bool = False,
                        yield_to: Workers | None = None) -> list[RenderedVariant]:
    """Render claimed variants, write them atomically, mark them ready (or ``dropped``: a
    modern file larger than its base-format fallback is not kept).

    Raises ``RenderFailed`` (recorded) when this original cannot be rendered or written,
    ``Busy`` when the workers are full (claims handed back), and a database error when the
    result could not be recorded within ``RECORD_PATIENCE_SECONDS`` (the claims go stale).
    ``yield_to``: background work pauses between encodes while that pool has work.
    """
    if not specs:
        return []
    unfinished = [_pair(s) for s in specs]
    interrupted = True  # until proven otherwise: hand the claims back on the way out
    try:
        async with _heartbeat(pool, image.id, unfinished):
            rendering = await _render(pool, storage, engine, workers, image, specs,
                                      wait_for_room, yield_to)
            if rendering.thumbhash is not None:
                await _record(pool, SET_THUMBHASH, image.id, rendering.thumbhash)
            rendered = rendering.variants
            dropped = {(v.kind, v.format): await _dropped(pool, storage, image, v, rendered)
                       for v in rendered}
            written = await _put_all(pool, storage, image, unfinished,
                                     [v for v in rendered if not dropped[(v.kind, v.format)]])
            for variant in rendered:
                status = await _record(pool, MARK_READY, image.id, variant.kind,
                                       variant.format, variant.width, variant.height,
                                       "dropped" if dropped[(variant.kind, variant.format)]
                                       else "ready", len(variant.data))
                unfinished.remove((variant.kind, variant.format))
                if status == "UPDATE 0":  # deleted while we rendered: take our files back
                    await _remove_if_deleted(pool, storage, image, written)
                    unfinished.clear()
                    break
        interrupted = False
    except (RenderFailed, *DATABASE_UNAVAILABLE):
        interrupted = False  # recorded as failed, or nothing can be recorded now
        raise
    finally:
        if interrupted and unfinished:  # cancelled (shutdown) or Busy: someone else may go on
            await asyncio.shield(release(pool, image.id, list(unfinished)))
    log.info("made %s of %s", ", ".join(f"{s.kind}.{image.variant_extension(s.format)}"
                                        for s in specs), image.name)
    return rendered


async def _put_all(pool: asyncpg.Pool, storage: ImageStore, image: ImageRecord,
                   unfinished: list[Pair], variants: Sequence[RenderedVariant]) -> list[str]:
    """Put the files at once (an object store answers each in a few milliseconds; one
    after the other they add up while an upload waits). Returns the names written. A store
    that is away hands the claims back (503, tried again soon); one that refuses the
    files (a full or read-only disk) records the failure."""
    names = [file_name(image.storage_key, v.kind, image.variant_extension(v.format))
             for v in variants]
    results = await asyncio.gather(*(
        storage.put_bytes(name, v.data, image.variant_content_type(v.format))
        for name, v in zip(names, variants, strict=True)), return_exceptions=True)
    written = [n for n, r in zip(names, results, strict=True) if r is None]
    for result in results:
        if isinstance(result, StoreUnavailable):
            raise Busy(f"The image store is unavailable: {result}", retry_after=5)
    for result in results:
        if isinstance(result, OSError):
            await _failed(pool, image, unfinished, result)
        if isinstance(result, BaseException):
            raise result
    return written


async def _dropped(pool: asyncpg.Pool, storage: ImageStore, image: ImageRecord,
                   variant: RenderedVariant, rendered: Sequence[RenderedVariant]) -> bool:
    """A modern file is not kept when it is no smaller than its base-format fallback."""
    fallback = await _base_bytes(pool, storage, image, variant, rendered)
    return fallback is not None and len(variant.data) >= fallback


async def _base_bytes(pool: asyncpg.Pool, storage: ImageStore, image: ImageRecord,
                      variant: RenderedVariant,
                      rendered: Sequence[RenderedVariant]) -> int | None:
    """The size of the base-format file a modern one stands beside (None for base files, or
    when the base file is not there to compare with). From its row, recorded when it was
    made (a store request only for rows made before sizes were recorded)."""
    if variant.format == BASE:
        return None
    for other in rendered:
        if other.kind == variant.kind and other.format == BASE:
            return len(other.data)
    recorded = await pool.fetchval(BASE_BYTES, image.id, variant.kind)
    if recorded is not None:
        return recorded
    return await storage.size(file_name(image.storage_key, variant.kind,
                                        image.variant_extension(BASE)))


async def _remove_if_deleted(pool: asyncpg.Pool, storage: ImageStore, image: ImageRecord,
                             written: list[str]) -> None:
    """The image was deleted while its variants were made: writing them re-created its
    directory, and nginx would serve them. Take back the files this render wrote, unless the
    same bytes were uploaded again meanwhile (a new row with the same storage key owns them).
    Only those files: a new upload of the same bytes places its original before its row
    commits, so a row we cannot see yet may already own the directory."""
    if await pool.fetchval("SELECT 1 FROM images WHERE storage_key = $1", image.storage_key):
        return
    await storage.delete(written)
    log.info("%s was deleted while its variants were made; removed them", image.name)


async def _render(pool, storage, engine, workers, image, specs, wait_for_room, yield_to,
                  poster_remade: bool = False):
    pause = yield_to.wait_until_idle if yield_to is not None else None
    try:
        # A video's variants are its poster's (stored beside it at upload).
        async with storage.open(image.source_path) as source:
            return await workers.run(engine.render_all, source, image.source_format, specs,
                                     image.thumbhash is None, pause,
                                     wait_for_room=wait_for_room)
    except Busy:
        raise
    except StoreUnavailable as error:  # not the image's fault: claims go back, 503
        raise Busy(f"The image store is unavailable: {error}", retry_after=5) from error
    except FileNotFoundError as error:
        # A video's lost poster is made again from its original (once), then used.
        if image.kind == "video" and not poster_remade and await remake_poster(storage, image):
            return await _render(pool, storage, engine, workers, image, specs, wait_for_room,
                                 yield_to, poster_remade=True)
        await _failed(pool, image, [_pair(s) for s in specs], error, OriginalMissing)
    except Exception as error:  # the engine failed on this file
        await _failed(pool, image, [_pair(s) for s in specs], error)


async def _failed(pool: asyncpg.Pool, image: ImageRecord, pairs: list[Pair], error: Exception,
                  raising: type[RenderFailed] = RenderFailed) -> NoReturn:
    reason = f"{type(error).__name__}: {error}"
    log.error("making %s of %s failed: %s", ", ".join(f"{k}/{f}" for k, f in pairs),
              image.name, reason)
    await _record(pool, MARK_FAILED, image.id, *_arrays(pairs), reason[:500])
    pairs.clear()
    raise raising(reason) from error


async def _record(pool: asyncpg.Pool, query: str, *args) -> str:
    """Record a result, waiting out a short database outage, and repeating a statement rolled
    back by a conflict with a concurrent one (a deadlock): the work is done and on disk, and
    a result lost here would be rendered again by someone else. Returns the status."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORD_PATIENCE_SECONDS
    delay = 0.2
    while True:
        try:
            return await pool.execute(query, *args)
        except (*DATABASE_UNAVAILABLE, *RETRY_TRANSACTION) as error:
            if loop.time() + delay > deadline:
                raise
            log.warning("recording a result: %r; retrying", error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


@contextlib.asynccontextmanager
async def _heartbeat(pool: asyncpg.Pool, image_id: int,
                     pairs: list[Pair]) -> AsyncIterator[None]:
    """Keep our claims fresh while we work, so nobody takes them for a dead process's.
    ``pairs`` shrinks as variants are recorded: each beat refreshes what is left."""
    async with keep_claimed(pool, f"heartbeat-{image_id}", HEARTBEAT,
                            lambda: (image_id, *_arrays(pairs))):
        yield


@contextlib.asynccontextmanager
async def keep_claimed(pool: asyncpg.Pool, task_name: str, query: str,
                       arguments: Callable[[], tuple]) -> AsyncIterator[None]:
    """Run ``query`` with ``arguments()`` every HEARTBEAT_SECONDS while the block runs: the
    heartbeat of any claimed work (variants here, renditions in renditions.py)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            # A missed beat is harmless (the next one comes long before the claim is
            # stale); an error here would otherwise end the work that holds the claim.
            with contextlib.suppress(*DATABASE_UNAVAILABLE, *RETRY_TRANSACTION):
                await pool.execute(query, *arguments())

    task = asyncio.create_task(beat(), name=task_name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
