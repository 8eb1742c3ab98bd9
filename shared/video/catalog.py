"""The renditions an original gets, what their files are called and what they hold.

No PyAV here: the gallery and upload import this to name files and rows, and only the
children of ``shared.video.child`` load FFmpeg.

- A video gets ``mp4`` (H.264 + AAC, plays everywhere) and ``av1`` (AV1 + Opus in WebM,
  smaller, for the browsers that play it), listed best first in pages.
- An animated GIF, APNG or WebP gets ``mp4`` (a tenth of the bytes of its animated WebP),
  within the animation work budget its animated variants have.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_WIDTH = 1280


@dataclass(frozen=True)
class RenditionFile:
    name: str  # renditions.name, and the key in the JSON's ``renditions``
    stem: str  # stored as <stem>.<extension> beside the original
    extension: str
    content_type: str
    codecs: str  # for <source type="...; codecs=...">: a browser skips what it cannot play

    @property
    def source_type(self) -> str:
        return f'{self.content_type}; codecs="{self.codecs}"'


MP4 = RenditionFile("mp4", "play", "mp4", "video/mp4", "avc1.640028, mp4a.40.2")
AV1 = RenditionFile("av1", "play", "webm", "video/webm", "av01.0.08M.08, opus")
BY_NAME = {r.name: r for r in (MP4, AV1)}
BEST_FIRST = ("av1", "mp4")
VIDEO_RENDITIONS = ("mp4", "av1")  # made in this order: the MP4 first, it plays everywhere
ANIMATION_RENDITIONS = ("mp4",)


def output_size(width: int, height: int, max_width: int = MAX_WIDTH) -> tuple[int, int]:
    """Upright size scaled to at most ``max_width`` wide, both sides even (never upscaled):
    4:2:0 video needs even sides."""
    if width > max_width:
        width, height = max_width, max(2, round(height * max_width / width))
    return width - width % 2 or 2, height - height % 2 or 2


def renditions_for(kind: str, animated: bool) -> tuple[str, ...]:
    """Which renditions an upload gets: a video both, a kept animation its MP4."""
    if kind == "video":
        return VIDEO_RENDITIONS
    return ANIMATION_RENDITIONS if animated else ()
