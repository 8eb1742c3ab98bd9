"""What a page plays: a video's renditions, or an animation's MP4, in a <video> element.

Only renditions that are ready are offered, best first (AV1 before H.264: a browser skips a
``<source>`` whose type it cannot play). Until one is ready, a video's page shows its
poster with a note, and an animation's page its animated WebP, as before. The element has
the picture's own width and height, so the page does not move when the video loads; its
poster is the stage-sized variant of the first frame.
"""

from __future__ import annotations

from typing import Any

from shared.images import ImageRecord
from shared.urls import Urls
from shared.video.catalog import BY_NAME as FILES

POSTER_KINDS = ("wide", "monstrous")  # the stage is at most 600 CSS px: 1280 for 2x screens


def player(image: ImageRecord, urls: Urls) -> dict[str, Any] | None:
    ready = image.ready_renditions()
    if not ready:
        return None
    kind = next(k for k in (*POSTER_KINDS, "tiny") if image.variant(k) is not None)
    return {
        "sources": [{"url": urls.file(image.rendition_path(r.name)),
                     "type": FILES[r.name].source_type} for r in ready],
        "poster": urls.file(image.variant_path(kind)),
        "width": image.width,
        "height": image.height,
        # An animation plays as a GIF does: by itself, silent, looping, no controls.
        "animation": image.kind == "image",
    }


def waiting_note(image: ImageRecord) -> str:
    """What a video's page says while no rendition plays: being made, or failing (each
    failure is tried again, with growing pauses, a few times)."""
    if image.kind != "video" or image.ready_renditions():
        return ""
    if image.renditions and all(r.state == "failed" for r in image.renditions):
        return ("It could not be prepared for playing in browsers so far (it is tried again "
                "later): download the original meanwhile. The picture is its first frame.")
    return ("Being prepared for playing in browsers: reload in a moment. The picture is its "
            "first frame.")


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"
