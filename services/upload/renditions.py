"""The rows of an upload's renditions (``shared.video.catalog``), inserted pending in the
transaction that inserts the image: the resize service's background makes them, and a crash
anywhere after the commit only delays them."""

from __future__ import annotations

import asyncpg

from shared.config import Limits
from shared.formats import animation_kept
from shared.imaging import ImageInfo
from shared.video.catalog import output_size, renditions_for

INSERT_RENDITIONS = """
    INSERT INTO renditions (image_id, name, width, height)
    SELECT $1, name, $3, $4 FROM unnest($2::text[]) AS r(name)
"""


async def add_renditions(conn: asyncpg.Connection, image_id: int, info: ImageInfo,
                         duration: float | None, limits: Limits) -> None:
    animated = animation_kept(info.format, info.frames, info.width, info.height,
                              limits.max_animation_work)
    names = renditions_for(info.format.kind, animated)
    if duration is not None:
        await conn.execute("UPDATE images SET duration = $2 WHERE id = $1", image_id, duration)
    if names:
        await conn.execute(INSERT_RENDITIONS, image_id, list(names),
                           *output_size(info.width, info.height))
