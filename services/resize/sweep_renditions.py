"""The sweeper's look at renditions: a ready rendition whose file is gone from the store goes
back to pending, and the renditions loop makes it again (as lost variants do).

Same rules as the sweeper's own checks (services/resize/sweeper.py): only rows finished
before the walk of the store began (with its margin), only when the sweep has not refused to
change rows (a volume that looks unmounted), and a dry run only reports.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from shared.video.catalog import BY_NAME as FILES

BATCH = 1000
READY = """
    SELECT r.image_id, r.name AS rendition, i.name, i.storage_key
      FROM renditions r JOIN images i ON i.id = r.image_id
     WHERE r.state = 'ready' AND r.updated_at < $1 AND i.created_at < $2
       AND (r.image_id, r.name) > ($3, $4)
     ORDER BY r.image_id, r.name
     LIMIT $5
"""
RESET = """
    UPDATE renditions SET state = 'pending', bytes = NULL, claimed_at = NULL, updated_at = now()
     WHERE image_id = $1 AND name = $2 AND state = 'ready' AND updated_at < $3
"""


async def lost_renditions(conn: asyncpg.Connection,
                          dirs: dict[str, tuple[float, set[str]]], rows_before: datetime,
                          dry_run: bool) -> list[str]:
    """``dirs``: the walk's storage key -> (mtime, file names). Returns "name/file" of each
    lost one (set to pending unless ``dry_run``). Images with no directory at all are the
    sweeper's lost originals, not this."""
    lost: list[str] = []
    after: tuple[int, str] = (0, "")
    while rows := await conn.fetch(READY, rows_before, rows_before, *after, BATCH):
        after = (rows[-1]["image_id"], rows[-1]["rendition"])
        for row in rows:
            file = FILES[row["rendition"]]
            found = dirs.get(row["storage_key"])
            if found is None or f"{file.stem}.{file.extension}" in found[1]:
                continue
            lost.append(f"{row['name']}/{file.stem}.{file.extension}")
            if not dry_run:
                await conn.execute(RESET, row["image_id"], row["rendition"], rows_before)
    return lost
