"""A video upload: from the bytes a client sent to a remuxed original and its poster.

Everything that parses the file happens in ``shared.video.child`` (see ``shared.video``):
this only makes the scratch files, runs the child and hands back what it learnt in the
shape an image has (``PreparedImage``), so ingest stores and records it the same way.
Blocking, run in the upload service's executor like ``prepare_image``.
"""

from __future__ import annotations

from pathlib import Path

from shared.config import Limits
from shared.errors import TooLarge
from shared.formats import Format
from shared.imaging import ImageInfo
from shared.storage import Scratch
from shared.units import human_bytes
from shared.video import isolated


def prepare_video(upload: Path, fmt: Format, scratch: Scratch, limits: Limits):
    from services.upload.prepare import PreparedImage  # it imports this module

    if upload.stat().st_size > limits.max_video_bytes:  # an operator set it below images'
        raise TooLarge(f"This video is too large: the limit is "
                       f"{human_bytes(limits.max_video_bytes)}.")
    remuxed, poster = scratch.new_file(), scratch.new_file()
    try:
        video = isolated.prepare(upload, fmt.name, remuxed, poster, limits.max_side,
                                 limits.max_pixels, limits.max_video_seconds)
    except BaseException:
        remuxed.unlink(missing_ok=True)
        poster.unlink(missing_ok=True)
        raise
    size = (video.width, video.height)
    return PreparedImage(remuxed, remuxed.stat().st_size, ImageInfo(fmt, *size, 1, 1, size),
                         poster=poster, duration=video.duration)
