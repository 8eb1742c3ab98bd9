"""Reading what an uploaded file is, from its content, before anything is decoded in full.

Order matters: the format and the size come from the header (``Image.open`` is lazy), the
limits are checked, and only then is pixel data decoded, at reduced scale where the format
allows, to refuse truncated and damaged files.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from shared.config import Limits
from shared.errors import ImageOverLimits, UnsupportedImage
from shared.formats import ACCEPTED_NAMES, BY_PILLOW_NAME, Format

ORIENTATION_TAG = 0x0112
SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 or 270 degrees
NOT_AN_IMAGE = f"This file is not an image Kitteh accepts ({ACCEPTED_NAMES})."
DAMAGED = "This image is damaged or truncated and cannot be read."


def configure_pillow(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb guard match our limit and fail, never warn."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)


@dataclass(frozen=True)
class ImageInfo:
    format: Format
    width: int  # as displayed: EXIF orientation already applied
    height: int
    frames: int
    orientation: int


def inspect_image(path: Path, limits: Limits) -> ImageInfo:
    try:
        info = _read_header(path, limits)
        _decode_check(path, info.format)
        return info
    except UnidentifiedImageError:
        raise UnsupportedImage(NOT_AN_IMAGE) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageOverLimits(
            f"This image has too many pixels: the limit is {limits.max_pixels:,}."
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError):
        # Pillow reports broken files with any of these, depending on the format and the damage.
        raise UnsupportedImage(DAMAGED) from None


def _read_header(path: Path, limits: Limits) -> ImageInfo:
    with Image.open(path, formats=list(BY_PILLOW_NAME)) as img:
        fmt = BY_PILLOW_NAME.get(img.format or "")
        if fmt is None:
            raise UnsupportedImage(NOT_AN_IMAGE)
        width, height = img.size
        check_dimensions(width, height, limits)
        frames = getattr(img, "n_frames", 1)
        if frames > limits.max_frames:
            raise ImageOverLimits(
                f"This animation has {frames:,} frames: the limit is {limits.max_frames:,}."
            )
        orientation = img.getexif().get(ORIENTATION_TAG, 1) if fmt.pillow_name != "GIF" else 1
        if orientation in SWAPS_AXES:
            width, height = height, width
        return ImageInfo(fmt, width, height, frames, orientation if 1 <= orientation <= 8 else 1)


def check_dimensions(width: int, height: int, limits: Limits) -> None:
    if width < 1 or height < 1:
        raise UnsupportedImage(DAMAGED)
    if width > limits.max_side or height > limits.max_side:
        raise ImageOverLimits(
            f"This image is {width:,}×{height:,} pixels: the limit is {limits.max_side:,} "
            "pixels a side."
        )
    if width * height > limits.max_pixels:
        raise ImageOverLimits(
            f"This image has {width * height:,} pixels: the limit is {limits.max_pixels:,}."
        )


def _decode_check(path: Path, fmt: Format) -> None:
    if fmt.pillow_name == "PNG":
        with Image.open(path) as img:
            img.verify()  # checks every chunk's CRC without decoding pixels
    with Image.open(path) as img:
        if fmt.pillow_name == "JPEG":
            # Decoding at 1/8 scale still walks the whole entropy-coded stream, so a truncated
            # file is caught, at a fraction of the cost of a full decode.
            img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
        img.load()
