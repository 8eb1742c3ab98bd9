"""Output formats: how each kind of variant file is encoded (the input formats are in
shared/formats.py).

Settings chosen with ``python -m bench.delivery`` (bytes at equal SSIM, CPU per upload; see
docs/performance.md): the lowest qualities whose SSIM stays within 0.01 of JPEG q85's at every
width from 90 to 2048 px, WebP q82 (q80 falls 0.011 short at 600 px) and AVIF q64 (q60 falls
0.016 short at 90 px). There, WebP is about 40-50 % smaller than the JPEG and AVIF 45-55 %.
AVIF speed 8 is libavif's fast end: slower speeds shave a few more per cent at several times
the CPU.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from PIL import Image

from shared.formats import Format, variant_format
from shared.variants import BASE


@dataclass(frozen=True)
class OutputFormat:
    name: str  # the key in the JSON's ``formats`` and the file's extension
    pillow_name: str
    content_type: str
    options: Mapping[str, Any] = field(default_factory=dict)  # Image.save keyword arguments

    @property
    def extension(self) -> str:
        return self.name if self.name != "jpeg" else "jpg"


JPEG = OutputFormat("jpeg", "JPEG", "image/jpeg", MappingProxyType(
    # Optimized Huffman tables: 2-9 % smaller for ~2.5 ms an image. Not progressive: another
    # 2-3 % for ~8 ms more an image.
    {"quality": 85, "optimize": True, "progressive": False}))
PNG = OutputFormat("png", "PNG", "image/png", MappingProxyType({"compress_level": 6}))
WEBP = OutputFormat("webp", "WEBP", "image/webp", MappingProxyType({"quality": 82, "method": 4}))
# One encoder thread: AVIF is made in the background, which must leave the other cores to
# the uploads (libavif would otherwise start a thread per core).
AVIF = OutputFormat("avif", "AVIF", "image/avif", MappingProxyType({"quality": 64, "speed": 8,
                                                                   "max_threads": 1}))

# A WebP original's variants are WebP (its base format), at the quality they always had.
WEBP_BASE = OutputFormat("webp", "WEBP", "image/webp", MappingProxyType({"quality": 85,
                                                                         "method": 4}))
BASE_BY_PILLOW_NAME = {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP_BASE}
MODERN_BY_NAME = {o.name: o for o in (AVIF, WEBP)}


def base_output(fmt: Format, animated: bool = False) -> OutputFormat:
    """The browser-safe format of an image's variants: the registry's choice
    (``shared.formats.variant_format``; an animation's is animated WebP)."""
    return BASE_BY_PILLOW_NAME[variant_format(fmt, animated).name]


def output_for(fmt: Format, variant_format: str, animated: bool = False) -> OutputFormat:
    """The output format of a variant row (``variants.format``) of an image in ``fmt``."""
    if variant_format == BASE:
        return base_output(fmt, animated)
    return MODERN_BY_NAME[variant_format]


def extension_for(fmt: Format, variant_format: str, animated: bool = False) -> str:
    return output_for(fmt, variant_format, animated).extension


def encode(img: Image.Image, output: OutputFormat, icc: bytes | None = None,
           **overrides: Any) -> bytes:
    """Encode ``img`` (already in a mode the format stores), keeping its colour profile."""
    out = io.BytesIO()
    extra = {"icc_profile": icc} if icc else {}
    img.save(out, output.pillow_name, **{**output.options, **overrides}, **extra)
    return out.getvalue()
