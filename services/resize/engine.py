"""Resize engines: the image work behind one small interface (after thumbor's engines).

The service only calls ``render``; another engine (libvips, say) can be dropped in without
touching the handlers. Engines are plain blocking code: the service runs them in its executor.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from shared.formats import Format
from shared.imaging import ORIENTATION_TAG, SWAPS_AXES
from shared.variants import VariantSpec


@dataclass(frozen=True)
class RenderedVariant:
    kind: str
    width: int
    height: int
    data: bytes


class ResizeEngine(Protocol):
    def render(self, source: Path, fmt: Format,
               specs: Sequence[VariantSpec]) -> list[RenderedVariant]:
        """Make every variant in ``specs`` (largest first) from the original at ``source``."""
        ...


# EXIF orientation -> the transposition that makes the pixels upright.
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class PillowEngine:
    """One decode per image, shrink-on-load for JPEG, then a cascade largest to smallest.

    ``draft_factor``: JPEG is decoded at the smallest DCT scale that still leaves at least
    this many times the largest variant's size, so the final Lanczos step has real pixels to
    average (2 costs ~15% more time than 1 and loses almost no quality; see bench/resize).
    """

    jpeg_quality: int = 85
    webp_quality: int = 85
    draft_factor: float = 2.0

    def render(self, source: Path, fmt: Format,
               specs: Sequence[VariantSpec]) -> list[RenderedVariant]:
        with Image.open(source) as img:
            orientation = img.getexif().get(ORIENTATION_TAG, 1) if img.format != "GIF" else 1
            swap = orientation in SWAPS_AXES
            largest = specs[0]
            if img.format == "JPEG":
                w, h = (largest.height, largest.width) if swap else (largest.width, largest.height)
                img.draft(img.mode if img.mode in ("L", "RGB") else "RGB",
                          (int(w * self.draft_factor), int(h * self.draft_factor)))
            icc = img.info.get("icc_profile")
            current = _normalise_mode(img, fmt.variant_pillow_name)
            rendered = []
            for spec in specs:
                size = (spec.height, spec.width) if swap else (spec.width, spec.height)
                if current.size != size:
                    current = current.resize(size, Image.Resampling.LANCZOS,
                                             reducing_gap=3.0)
                upright = current.transpose(TRANSPOSE[orientation]) \
                    if orientation in TRANSPOSE else current
                rendered.append(RenderedVariant(spec.kind, spec.width, spec.height,
                                                self._encode(upright, fmt, icc)))
            return rendered

    def _encode(self, img: Image.Image, fmt: Format, icc: bytes | None) -> bytes:
        out = io.BytesIO()
        extra = {"icc_profile": icc} if icc else {}
        match fmt.variant_pillow_name:
            case "JPEG":
                img.save(out, "JPEG", quality=self.jpeg_quality, optimize=True,
                         progressive=True, **extra)
            case "PNG":
                img.save(out, "PNG", compress_level=6, **extra)
            case "WEBP":
                img.save(out, "WEBP", quality=self.webp_quality, method=4, **extra)
            case other:
                raise ValueError(f"no encoder for {other}")
        return out.getvalue()


def _normalise_mode(img: Image.Image, target: str) -> Image.Image:
    """Pick a mode the output format can store, keeping transparency where it can."""
    img.seek(0)  # animations: variants show the first frame
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if target == "JPEG":
        wanted = "L" if img.mode in ("L", "1") else "RGB"
    elif has_alpha:
        wanted = "RGBA"
    else:
        wanted = "L" if img.mode in ("L", "1") else "RGB"
    # convert() also forces the (possibly draft-reduced) decode
    return img.convert(wanted) if img.mode != wanted else img.copy()
