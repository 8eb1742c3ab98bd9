"""What the HTML pages show, computed from image records (kept out of the templates)."""

from __future__ import annotations

from shared.images import ImageRecord


def human_bytes(count: int) -> str:
    for unit, size in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def srcset(image: ImageRecord, prefix: str) -> str:
    """Every size the browser may pick from, narrowest first, the original last."""
    entries = [f"{prefix}/i/{image.variant_path(v.kind)} {v.width}w" for v in image.variants]
    widest_variant = max((v.width for v in image.variants), default=0)
    if image.width > widest_variant and image.frames == 1:
        entries.append(f"{prefix}/i/{image.original_path} {image.width}w")
    return ", ".join(entries)
