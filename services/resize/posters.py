"""A video's poster made again when it is lost (a disk restored from an older backup, a
store that lost an object): its variants are made from it, so without it they would fail
for ever. The original is still there (the sweeper removes rows whose original is not), so
the poster is decoded from it again, in the isolated child, exactly as at upload."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from shared.images import POSTER_FORMAT, ImageRecord
from shared.storage import ImageStore
from shared.video import isolated

log = logging.getLogger("kitteh.resize")


async def remake_poster(store: ImageStore, image: ImageRecord) -> bool:
    """True when the poster is back in the store; False when it cannot be (no original, or
    the child could not make it: the caller records the variants as failed)."""
    with tempfile.TemporaryDirectory(prefix="kitteh-poster-") as folder:
        target = Path(folder) / "poster.jpg"
        try:
            async with store.open(image.original_path) as source:
                await isolated.poster(source, target, image.format.name)
        except (FileNotFoundError, isolated.RenderError) as error:
            log.error("the poster of %s cannot be made again: %s", image.name, error)
            return False
        await store.put_file(image.source_path, target, POSTER_FORMAT.content_type)
    log.warning("the poster of %s was lost; made it again from the original", image.name)
    return True
