"""Byte counts as people read them, the same on every page and in every error message."""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB


def human_bytes(count: int) -> str:
    """Binary units with the everyday labels, as file managers and the limit ("40 MB") use."""
    for unit, size in (("GB", GiB), ("MB", MiB), ("KB", KiB)):
        if count >= size:
            return f"{count / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{count} bytes"
