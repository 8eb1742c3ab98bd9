"""ThumbHash placeholders drawn while a picture loads: rendered here to a tiny PNG data URL,
because the CSP allows ``data:`` images but no inline style or script."""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import thash
from PIL import Image

# Pixels along the longer side: 32 for the image page (~1 KiB), 16 for grid tiles (~0.3 KiB:
# a page has 24 of them). Both are stretched and smoothed by the browser.
STAGE_SIDE = 32
TILE_SIDE = 16


@lru_cache(maxsize=4096)  # a pure function of a few dozen bytes; pages repeat the same ones
def placeholder_url(thumbhash: bytes, side: int = STAGE_SIDE) -> str | None:
    """A ``data:image/png`` URL of the placeholder, or None for a hash that will not decode."""
    try:
        width, height, rgba = thash.thumb_hash_to_rgba(thumbhash, base_size=side)
    except (ValueError, IndexError):
        return None
    out = io.BytesIO()
    Image.frombytes("RGBA", (width, height), rgba).convert("RGB").save(out, "PNG",
                                                                       optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
