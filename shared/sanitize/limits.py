"""Structure limits, and the counter that holds a file's parts to them."""

from __future__ import annotations

from shared.sanitize.errors import too_many

# Structure limits, far above what real encoders write, low enough that walking a hostile
# file stays cheap: for us, and for Pillow's header parser, which keeps a Python object for
# every unknown chunk or segment before the pixel data (3 million empty PNG chunks, 40 MiB,
# took it 50 s and 250 MiB). Over a limit is a 422, like too many pixels.
MAX_PARTS_BEFORE_IMAGE = 1_000  # JPEG segments, PNG/WebP chunks, GIF extensions before pixels
MAX_PARTS = 100_000  # in the whole file (a 40 MiB PNG in libpng's 8 KiB IDATs has 5,000)
MAX_GIF_SUB_BLOCKS = 1_000_000  # GIF data comes in sub-blocks of up to 255 bytes: 160,000
# in 40 MiB; 1-byte sub-blocks make it 20 million
# Every progressive scan makes a JPEG decoder pass over the whole image again, so thousands
# of tiny scans make a small file cost minutes of CPU (a "scan bomb"). Real files have ~10.
MAX_JPEG_SCANS = 200


class Parts:
    """Counts a file's structural parts against the limits above."""

    def __init__(self, what: str):
        self.what = what
        self.count = 0
        self.image_seen = False

    def add(self, is_image: bool = False) -> None:
        self.count += 1
        self.image_seen |= is_image
        if not self.image_seen and self.count > MAX_PARTS_BEFORE_IMAGE:
            raise too_many(f"{self.what} before its pixel data", MAX_PARTS_BEFORE_IMAGE)
        if self.count > MAX_PARTS:
            raise too_many(self.what, MAX_PARTS)
