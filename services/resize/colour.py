"""Colour: variants are sRGB pixels, so a wide-gamut photo looks the same everywhere.

A photo in Display P3 (every recent phone) or Adobe RGB carries an ICC profile saying how to
read its numbers. Variants are converted to sRGB with LittleCMS (Pillow's ImageCms) and
written without a profile: what every browser, viewer and image proxy assumes, and 0.5-3 KiB
less in every 90-pixel tile. Colours outside sRGB are clipped (relative colorimetric intent),
the choice browsers make too when they show a P3 photo on an sRGB screen.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageCms

SRGB = ImageCms.createProfile("sRGB")


def to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """``img`` (RGB or RGBA) in sRGB. Without a profile, or with an unreadable one, the pixels
    already are (that is what a missing profile means)."""
    if not icc or img.mode not in ("RGB", "RGBA"):
        return img
    transform = _transform(icc, img.mode)
    if transform is None:
        return img
    return ImageCms.applyTransform(img, transform)


@lru_cache(maxsize=16)
def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space.strip() != "RGB":
            return None
        return ImageCms.buildTransform(source, SRGB, mode, mode,
                                       ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a broken profile: the numbers are taken as sRGB
