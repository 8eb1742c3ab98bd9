"""The two refusals of the rewrite: damaged structure (415) and too many parts (422)."""

from __future__ import annotations

from shared.errors import ImageOverLimits, UnsupportedImage


def damaged(detail: str) -> UnsupportedImage:
    return UnsupportedImage(f"This image is damaged or truncated and cannot be read ({detail}).")


def too_many(what: str, limit: int) -> ImageOverLimits:
    return ImageOverLimits(f"This file is made of more than {limit:,} {what}; "
                           "no image needs that many.")
