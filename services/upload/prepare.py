"""From the bytes a client sent to the file Kitteh will store: checked, and cleaned of metadata.

Order matters. The header is checked against the limits before anything is decoded; the
metadata rewrite then copies the compressed pixel data unchanged into a second temp file and
drops everything else; only that file is decoded, so what passes is exactly what is served
(HEIC and AVIF: decoded first in a child process, ``shared.isolated``). A video goes its own
way (``services.upload.video``: remuxed and its poster made, in a child process).
Blocking work, run in an executor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from services.upload.video import prepare_video
from shared.config import Limits
from shared.imaging import ImageInfo, check_decodes, inspect_header, sniff_format
from shared.sanitize import sanitize
from shared.sanitize.applegain import kept_headroom
from shared.sanitize.gainmap import has_gain_map
from shared.storage import Scratch


@dataclass(frozen=True)
class PreparedImage:
    path: Path  # the cleaned original, in scratch, ready to be put in the store
    size: int
    info: ImageInfo
    poster: Path | None = None  # a video's first frame (JPEG), in scratch, stored beside it
    duration: float | None = None  # a video's, in seconds


def prepare_image(upload: Path, scratch: Scratch, limits: Limits) -> PreparedImage:
    """The cleaned file is new in scratch; the caller removes it when done."""
    fmt = sniff_format(upload)
    if fmt.kind == "video":
        return prepare_video(upload, fmt, scratch, limits)
    info = inspect_header(upload, limits)
    target = scratch.new_file()
    try:
        size = sanitize(upload, target, info.format, info.orientation)
        info = check_decodes(target, info, limits)
        if info.format.name in ("JPEG", "HEIC"):  # HDR: a gain map kept (issue 19)
            found = has_gain_map if info.format.name == "JPEG" else kept_headroom
            with target.open("rb") as cleaned:
                info = replace(info, gain_map=bool(found(cleaned)))
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return PreparedImage(target, size, info)
