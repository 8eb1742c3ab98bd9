"""The image formats Kitteh accepts, and what each variant of them is written as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    pillow_name: str  # Image.format as Pillow reports it after sniffing the content
    content_type: str
    extension: str
    variant_pillow_name: str  # variants keep the format, except GIF (static PNG of frame one)
    variant_extension: str

    @property
    def variant_content_type(self) -> str:
        return BY_PILLOW_NAME[self.variant_pillow_name].content_type


FORMATS = (
    Format("JPEG", "image/jpeg", "jpg", "JPEG", "jpg"),
    Format("PNG", "image/png", "png", "PNG", "png"),
    Format("GIF", "image/gif", "gif", "PNG", "png"),
    Format("WEBP", "image/webp", "webp", "WEBP", "webp"),
)
BY_PILLOW_NAME = {f.pillow_name: f for f in FORMATS}
BY_CONTENT_TYPE = {f.content_type: f for f in FORMATS}
ACCEPTED_NAMES = ", ".join(f.pillow_name for f in FORMATS)
