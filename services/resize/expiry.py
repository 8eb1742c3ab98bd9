"""The expiry job: removes expired images' rows and files, through the same path as a delete,
and expired albums' rows.

Every read treats an expired row as gone the moment it expires (``shared.queries.LIVE``), but
the gateway serves image files straight from the volume, so the files themselves must go: this
pass runs every ``EXPIRY_INTERVAL`` seconds, and the gateway's open-file cache forgets a
removed file within ``KITTEH_CACHE_SECONDS``. Together that is well inside the promised minute.
"""

from __future__ import annotations

from aiohttp import web

from shared.albums import remove_expired_albums
from shared.db import DB_POOL
from shared.removal import remove_expired
from shared.storage import STORE

EXPIRY_INTERVAL = 10.0  # seconds; + at most 10 s of gateway open-file cache < 60 s promised
BATCH = 200


async def expire(app: web.Application) -> None:
    while await remove_expired(app[DB_POOL], app[STORE], BATCH) == BATCH:
        pass  # a backlog (the service was down): keep going until it is cleared
    while await remove_expired_albums(app[DB_POOL], BATCH) == BATCH:
        pass  # albums: rows only (each picture expires on its own, above)
