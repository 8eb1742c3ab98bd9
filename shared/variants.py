"""Variants: a (size, format) pair. The sizes, their dimensions, and which formats each gets.

Sizes (``kind``): tiny 90, large 300 and monstrous 600 pixels wide, as always, plus two display
widths for dense screens, wide 1280 and huge 2048, so that a 390 px phone at 3× or a 1440 px
laptop at 2× gets a sharp picture without downloading the original. Formats: the base format
(JPEG, PNG for images with alpha: what every browser shows) plus the modern ones (AVIF, WebP;
see shared/encoding.py), made in the background after the upload has answered.
"""

from __future__ import annotations

from dataclasses import dataclass

BASE = "base"  # the browser-safe format of the image's variants (variants.format in the DB)
# Made after the upload has answered, best first (the order of <source>s in pages).
MODERN_FORMATS = ("avif", "webp")
# images.variant_plan of an image whose rows are delivery_specs' (older ones: 1, backfilled).
VARIANT_PLAN = 2


@dataclass(frozen=True)
class VariantSpec:
    kind: str
    width: int
    height: int
    format: str = BASE


KIND_WIDTHS: dict[str, int] = {"tiny": 90, "large": 300, "monstrous": 600,
                               "wide": 1280, "huge": 2048}
KINDS = tuple(KIND_WIDTHS)
# Made before the upload answers (as they always were); the rest in the background.
EAGER_KINDS = ("tiny", "large", "monstrous")
# Display widths exist only for originals wider than the size below them: a 700 px original
# gets a 700 px "wide" (smaller than the original, which never goes in srcset), a 500 px one
# none. The first three always exist, at most as wide as the original (as they always did).
DISPLAY_KINDS = {"wide": "monstrous", "huge": "wide"}


def variant_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """Scale to ``target_width`` wide, height in proportion; never upscale."""
    if width <= target_width:
        return width, height
    return target_width, max(1, round(height * target_width / width))


def kinds_for(width: int) -> list[str]:
    """The sizes an image ``width`` pixels wide has."""
    return [k for k in KINDS if k not in DISPLAY_KINDS or width > KIND_WIDTHS[DISPLAY_KINDS[k]]]


def variant_specs(width: int, height: int, kinds: tuple[str, ...] = EAGER_KINDS,
                  ) -> list[VariantSpec]:
    """Base-format specs of ``kinds`` (that this image has), largest first: the resize engine
    makes each from the one before it."""
    specs = [VariantSpec(kind, *variant_size(width, height, KIND_WIDTHS[kind]))
             for kind in kinds_for(width) if kind in kinds]
    return sorted(specs, key=lambda s: s.width, reverse=True)


def modern_formats(base_extension: str) -> tuple[str, ...]:
    """The modern formats made beside the base one (a WebP original's base is already WebP)."""
    return tuple(f for f in MODERN_FORMATS if f != base_extension)


def delivery_specs(width: int, height: int, base_extension: str, frames: int = 1,
                   ) -> list[VariantSpec]:
    """Every (size, format) pair an image has: what its variant rows are. Animations get no
    modern formats: their variants are whatever the base format makes of them."""
    formats = (BASE, *modern_formats(base_extension)) if frames == 1 else (BASE,)
    return [VariantSpec(s.kind, s.width, s.height, f)
            for s in variant_specs(width, height, KINDS) for f in formats]


FORMAT_ORDER = (BASE, *MODERN_FORMATS)


def largest_first(specs) -> list[VariantSpec]:
    """The order the engine wants: widest first, and the formats of one size together, the
    base one first (so it is written first)."""
    return sorted(specs, key=lambda s: (-s.width, -KINDS.index(s.kind),
                                        FORMAT_ORDER.index(s.format)))
