"""Several uploads that become one album: the no-JavaScript form with several files, and the
phone's share sheet. All or nothing: if one file is refused, the images this batch made are
removed again (through the same removal as a delete) and the refusal is the answer."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from services.upload.albums import AlbumEntry, create_album
from services.upload.batch import discard
from services.upload.ingest import IngestResult, Placement, ingest
from services.upload.keys import CONFIG, IMAGE_WORKERS
from services.upload.metrics import UPLOAD_METRICS
from services.upload.receive import ReceivedFile
from services.upload.resize_client import request_variants
from shared.albums import AlbumRecord
from shared.db import DATABASE_UNAVAILABLE, DB_POOL
from shared.removal import remove_image
from shared.storage import SCRATCH, STORE
from shared.upload_keys import UploadKey


async def ingest_all(app: web.Application, files: list[ReceivedFile],
                     placement: Placement) -> list[IngestResult]:
    results: list[IngestResult] = []
    try:
        for received in files:
            results.append(await ingest(app[DB_POOL], app[STORE], app[SCRATCH], app[CONFIG].limits,
                                        received, app[IMAGE_WORKERS], placement))
            app[UPLOAD_METRICS].received_bytes.inc(received.size)
            app[UPLOAD_METRICS].accepted(results[-1].created, results[-1].image.format.name)
    except BaseException:
        discard(files[len(results) + 1:])  # ingest removed the one it refused
        await forget(app, [r for r in results if r.created])
        raise
    return results


async def forget(app: web.Application, results: list[IngestResult]) -> None:
    """Take back the images a refused batch made."""
    if not results:
        return
    async with app[DB_POOL].acquire() as conn, conn.transaction():
        for result in results:
            row = await conn.fetchrow("SELECT id, storage_key FROM images WHERE id = $1"
                                      " FOR UPDATE", result.image.id)
            if row is not None:
                await remove_image(conn, app[STORE], row["id"], row["storage_key"])


async def make_album(app: web.Application, results: list[IngestResult], title: str | None,
                     placement: Placement, key: UploadKey | None) -> tuple[AlbumRecord, str]:
    entries: dict[str, AlbumEntry] = {}
    for result in results:  # the same file twice is one picture
        entries.setdefault(result.image.token, AlbumEntry(result.image.token,
                                                          result.delete_token))
    try:
        async with app[DB_POOL].acquire() as conn, conn.transaction():
            return await create_album(conn, list(entries.values()), title, placement.options,
                                      key)
    except BaseException:
        await forget(app, [r for r in results if r.created])
        raise


async def finish(app: web.Application, results: list[IngestResult]) -> None:
    """Ask resize for the first sizes of every new image, together."""
    with contextlib.suppress(*DATABASE_UNAVAILABLE):
        await asyncio.gather(*(request_variants(app, r.image.token)
                               for r in results if r.created))
