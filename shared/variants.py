"""The three variant sizes and the arithmetic of their dimensions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VariantSpec:
    kind: str
    width: int
    height: int


KIND_WIDTHS: dict[str, int] = {"tiny": 90, "large": 300, "monstrous": 600}
KINDS = tuple(KIND_WIDTHS)


def variant_size(width: int, height: int, target_width: int) -> tuple[int, int]:
    """Scale to ``target_width`` wide, height in proportion; never upscale."""
    if width <= target_width:
        return width, height
    return target_width, max(1, round(height * target_width / width))


def variant_specs(width: int, height: int) -> list[VariantSpec]:
    """Largest first: the resize engine makes each from the one before it."""
    specs = [VariantSpec(kind, *variant_size(width, height, w)) for kind, w in KIND_WIDTHS.items()]
    return sorted(specs, key=lambda s: s.width, reverse=True)
