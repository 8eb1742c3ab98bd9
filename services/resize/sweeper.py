"""Keeping the volume and the rows in step after crashes.

An upload places its original inside the transaction that inserts its row, so a crash (or
SIGKILL) at the wrong moment can leave, never anything a user sees, but:

- a scratch file: an upload being received or cleaned (``tmp/upload-*``), an S3 download;
- an image's files with no row (the transaction did not commit, or a variant was written
  for an image deleted meanwhile);
- a row whose original file is gone (the commit went through but its answer was lost, so the
  upload took its file back out; or a disk was restored from an older backup);
- a ready variant whose file is gone.

One sweep lists the store once (a directory walk, or the bucket's listing), then compares it
with the rows. An image's files are removed only when all are older than ``max_age``
(younger ones may belong to an upload in progress), and scratch files likewise.
Rows are compared only if they were committed before the walk began: their files were in
place by then. Rows whose original is missing are removed (nothing can be served from them,
and a retried upload of the same bytes would be answered with the broken one); ready
variants whose file is missing go back to pending for the reconciler. If a large share of
the originals seem missing, the volume is probably not mounted: then the sweep reports and
changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from services.resize.sweep_renditions import lost_renditions
from shared.encoding import extension_for
from shared.formats import BY_CONTENT_TYPE
from shared.storage import ImageStore, Scratch, key_prefix, parse_name

log = logging.getLogger("kitteh.sweeper")

# One sweeper at a time across all resize processes: a Postgres advisory lock on this key.
SWEEP_LOCK = 0x6B69_7474_6568_5357  # "kittehSW"
BATCH = 1000
# Above this share of missing originals (and at least MIN_SUSPICIOUS rows), suspect the
# volume rather than the rows.
SUSPICIOUS_SHARE = 0.10
MIN_SUSPICIOUS = 10
ROW_MARGIN = timedelta(minutes=10)

ROWS = """
    SELECT i.id, i.name, i.storage_key, i.content_type, i.frames,
           coalesce(array_agg(v.kind || ' ' || v.format) FILTER (WHERE v.state = 'ready'
                                              AND v.updated_at < $2), '{}') AS ready
      FROM images i LEFT JOIN variants v ON v.image_id = i.id
     WHERE i.id > $1 AND i.created_at < $2
     GROUP BY i.id
     ORDER BY i.id
     LIMIT $3
"""
KEYS_WITH_ROWS = "SELECT storage_key FROM images WHERE storage_key = ANY($1::text[])"
REMOVE_ROWS = "DELETE FROM images WHERE id = ANY($1::bigint[]) AND created_at < $2"
RESET_VARIANT = """
    UPDATE variants SET state = 'pending', bytes = NULL, claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND kind || ' ' || format = ANY($2::text[]) AND state = 'ready'
       AND updated_at < $3
"""


@dataclass
class SweepReport:
    temp_files: list[str] = field(default_factory=list)  # removed
    orphan_dirs: list[str] = field(default_factory=list)  # storage keys, removed
    lost_originals: list[str] = field(default_factory=list)  # image names
    lost_variants: list[str] = field(default_factory=list)  # "name/kind", set to pending
    removed_rows: int = 0
    refused: str | None = None  # why rows were left alone
    skipped: bool = False  # another process was sweeping
    dry_run: bool = False  # found, not changed

    def summary(self) -> str:
        if self.skipped:
            return "another process is sweeping; skipped"
        done = "found" if self.dry_run else "removed"
        parts = [f"{len(self.temp_files)} temp file(s) {done}",
                 f"{len(self.orphan_dirs)} orphan image dir(s) {done}",
                 f"{len(self.lost_originals)} row(s) with a missing original "
                 f"({self.removed_rows} removed)",
                 f"{len(self.lost_variants)} lost variant(s) "
                 f"{'found' if self.dry_run else 'set to pending'}"]
        if self.refused:
            parts.append(f"REFUSED to change rows: {self.refused}")
        return "; ".join(parts)

    @property
    def changed_anything(self) -> bool:
        return bool(self.temp_files or self.orphan_dirs or self.removed_rows
                    or self.lost_variants)


@dataclass
class VolumeScan:
    dirs: dict[str, tuple[float, set[str]]]  # storage key -> (newest file's mtime, names)
    temp_files: list[tuple[str, float]]  # scratch path, mtime


async def scan_volume(storage: ImageStore, scratch: Scratch) -> VolumeScan:
    """Every image in the store with its files, and every scratch file."""
    dirs: dict[str, tuple[float, set[str]]] = {}
    async for found in storage.list():
        parsed = parse_name(found.name)
        if parsed is None:
            continue
        key = parsed[0]
        newest, names = dirs.get(key, (0.0, set()))
        names.add(found.name.rsplit("/", 1)[1])
        dirs[key] = (max(newest, found.modified), names)
    temps = await asyncio.get_running_loop().run_in_executor(None, _scratch_files, scratch)
    return VolumeScan(dirs, temps)


def _scratch_files(scratch: Scratch) -> list[tuple[str, float]]:
    temps: list[tuple[str, float]] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(scratch.directory):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False):
                    temps.append((entry.path, entry.stat(follow_symlinks=False).st_mtime))
    return temps


def remove_old_files(paths: list[tuple[str, float]], older_than: float) -> list[str]:
    removed = []
    for path, mtime in paths:
        if mtime < older_than:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed.append(path)
    return removed


async def remove_images_still_old(storage: ImageStore, keys: list[str],
                                  older_than: float) -> list[str]:
    """Remove orphan images' files, listing each image again just before: an upload of the
    same bytes that put a file since the walk makes it young again, and only the files listed
    now are removed (never one written after this look)."""
    removed = []
    for key in keys:
        found = [f async for f in storage.list(key_prefix(key))]
        if not found or any(f.modified >= older_than for f in found):
            continue
        await storage.delete([f.name for f in found])
        removed.append(key)
    return removed


async def sweep(pool: asyncpg.Pool, storage: ImageStore, scratch: Scratch, max_age: float,
                dry_run: bool = False) -> SweepReport:
    """One sweep, unless another process holds the sweep lock."""
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", SWEEP_LOCK):
            return SweepReport(skipped=True)
        try:
            report = await _sweep(conn, storage, scratch, max_age, dry_run)
        finally:
            with contextlib.suppress(Exception):  # a lost connection releases it anyway
                await conn.execute("SELECT pg_advisory_unlock($1)", SWEEP_LOCK)
    if report.changed_anything or report.lost_originals or report.refused:
        log.warning("sweep: %s", report.summary())
    return report


async def _sweep(conn: asyncpg.Connection, storage: ImageStore, scratch: Scratch,
                 max_age: float, dry_run: bool) -> SweepReport:
    loop = asyncio.get_running_loop()
    report = SweepReport(dry_run=dry_run)
    # Database time, taken before the walk: rows committed before it had their files in place
    # before the walk started.
    walk_started: datetime = await conn.fetchval("SELECT now()")
    # An image row's created_at is when its upload's transaction began, not when it
    # committed: a row dated just before the walk may have committed (file placed) during
    # it. Rows only count as "before the walk" with a wide margin; younger ones wait for the
    # next sweep.
    rows_before = walk_started - ROW_MARGIN
    scan = await scan_volume(storage, scratch)
    older_than = time.time() - max_age

    old_temps = [(p, m) for p, m in scan.temp_files if m < older_than]
    report.temp_files = [p for p, _ in old_temps] if dry_run else \
        await loop.run_in_executor(None, remove_old_files, old_temps, older_than)
    if not dry_run:  # writes into the store cut short (a dry run cannot see them)
        report.temp_files += await storage.remove_partial_writes(older_than)

    old_dirs = [key for key, (mtime, _) in scan.dirs.items() if mtime < older_than]
    orphans = []
    for start in range(0, len(old_dirs), BATCH):
        batch = old_dirs[start:start + BATCH]
        with_rows = {r["storage_key"] for r in await conn.fetch(KEYS_WITH_ROWS, batch)}
        orphans += [key for key in batch if key not in with_rows]
    report.orphan_dirs = orphans if dry_run else \
        await remove_images_still_old(storage, orphans, older_than)

    lost_rows: list[asyncpg.Record] = []
    lost_variants: list[tuple[asyncpg.Record, list[str]]] = []
    checked = 0
    last_id = 0
    while rows := await conn.fetch(ROWS, last_id, rows_before, BATCH):
        last_id = rows[-1]["id"]
        checked += len(rows)
        for row in rows:
            fmt = BY_CONTENT_TYPE[row["content_type"]]
            _, names = scan.dirs.get(row["storage_key"], (0.0, set()))
            if f"original.{fmt.extension}" not in names:
                lost_rows.append(row)
                continue
            gone = [pair for pair in row["ready"]
                    if _file_name(fmt, pair, row["frames"] > 1) not in names]
            if gone:
                lost_variants.append((row, gone))
    report.lost_originals = [r["name"] for r in lost_rows]
    report.lost_variants = [
        f"{r['name']}/{_file_name(BY_CONTENT_TYPE[r['content_type']], p, r['frames'] > 1)}"
        for r, pairs in lost_variants for p in pairs]

    if lost_rows and len(lost_rows) >= max(MIN_SUSPICIOUS, SUSPICIOUS_SHARE * checked):
        report.refused = (f"{len(lost_rows)} of {checked} originals are missing; is the volume "
                          f"({storage.describe()}) the right one, and mounted?")
        return report
    # Renditions (a video's or an animation's) the same way: lost ones back to pending.
    report.lost_variants += await lost_renditions(conn, scan.dirs, rows_before, dry_run)
    if dry_run:
        return report
    for row, kinds in lost_variants:
        await conn.execute(RESET_VARIANT, row["id"], kinds, walk_started)
    if lost_rows:
        status = await conn.execute(REMOVE_ROWS, [r["id"] for r in lost_rows], rows_before)
        report.removed_rows = int(status.split()[-1])
        # Their directories (variants, perhaps) are now orphans: the next sweep removes them
        # once they are old enough, with the same care as any other orphan.
    return report


def _file_name(fmt, pair: str, animated: bool) -> str:
    """The file of a variant row given as 'kind format' (how the queries above spell it)."""
    kind, variant_format = pair.split(" ")
    return f"{kind}.{extension_for(fmt, variant_format, animated)}"
