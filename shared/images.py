"""The image as stored (one row plus its variants) and as clients see it (the JSON image)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.encoding import OutputFormat, output_for
from shared.formats import BY_CONTENT_TYPE, Format
from shared.storage import file_name
from shared.urls import RELATIVE, Urls
from shared.variants import BASE, KINDS, MODERN_FORMATS


@dataclass(frozen=True)
class VariantRecord:
    kind: str
    width: int
    height: int
    state: str
    bytes: int | None
    format: str = BASE


@dataclass(frozen=True)
class ImageRecord:
    id: int
    token: str
    name: str
    storage_key: str
    filename: str
    content_type: str
    width: int
    height: int
    bytes: int
    frames: int
    created_at: datetime
    variants: tuple[VariantRecord, ...]  # base format, narrowest first
    modern: tuple[VariantRecord, ...] = ()  # AVIF and WebP versions, narrowest first
    thumbhash: bytes | None = None
    key_id: int | None = None  # the upload key it came with (keys mode or a key sent anyway)
    visibility: str = "public"  # public | unlisted (not in the Newest grid or the list API)
    expires_at: datetime | None = None  # gone from every read after this moment
    gain_map: bool = False  # an HDR photo: its JPEG files are Ultra HDR (issue 19)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ImageRecord:
        records = sorted(
            (VariantRecord(v["kind"], v["width"], v["height"], v["state"], v["bytes"],
                           v.get("format", BASE))
             for v in row["variants"] or ()),
            key=lambda v: (KINDS.index(v.kind), v.format),
        )
        return cls(
            id=row["id"], token=row["token"], name=row["name"], storage_key=row["storage_key"],
            filename=row["filename"], content_type=row["content_type"], width=row["width"],
            height=row["height"], bytes=row["bytes"], frames=row["frames"],
            created_at=row["created_at"],
            variants=tuple(v for v in records if v.format == BASE),
            modern=tuple(v for v in records if v.format != BASE),
            thumbhash=row["thumbhash"],
            key_id=row["key_id"], visibility=row["visibility"], expires_at=row["expires_at"],
            gain_map=row["gain_map"],
        )

    @property
    def format(self) -> Format:
        return BY_CONTENT_TYPE[self.content_type]

    @property
    def original_path(self) -> str:
        return file_name(self.storage_key, "original", self.format.extension)

    def variant_path(self, kind: str, variant_format: str = BASE) -> str:
        return file_name(self.storage_key, kind,
                                         self.variant_extension(variant_format))

    def variant_extension(self, variant_format: str = BASE) -> str:
        return self.variant_output(variant_format).extension

    def variant_content_type(self, variant_format: str = BASE) -> str:
        return self.variant_output(variant_format).content_type

    def variant_output(self, variant_format: str = BASE) -> OutputFormat:
        return output_for(self.format, variant_format, self.frames > 1)

    @property
    def page_path(self) -> str:
        return RELATIVE.page(self.name)

    def variant(self, kind: str, variant_format: str = BASE) -> VariantRecord | None:
        return next((v for v in (*self.variants, *self.modern)
                     if v.kind == kind and v.format == variant_format), None)

    def ready_files(self, kind: str) -> dict[str, VariantRecord]:
        """The files of one size that are on the volume, by output format name (``jpeg``,
        ``avif``...): the base one first, then the modern ones, best first."""
        files = {}
        for variant_format in (BASE, *MODERN_FORMATS):
            v = self.variant(kind, variant_format)
            if v is not None and v.state == "ready":
                files[self.variant_output(variant_format).name] = v
        return files


def created_at_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_json(image: ImageRecord, urls: Urls = RELATIVE) -> dict[str, Any]:
    """The JSON image of the HTTP contract (without ``delete_token``, which only upload adds)."""
    return {
        "token": image.token,
        "name": image.name,
        "page_url": urls.page(image.name),
        "download_url": urls.download(image.token),
        "original": {
            "url": urls.file(image.original_path),
            "width": image.width,
            "height": image.height,
            "bytes": image.bytes,
            "content_type": image.content_type,
            "filename": image.filename,
            "frames": image.frames,
        },
        "variants": {
            v.kind: {
                "url": urls.file(image.variant_path(v.kind)),
                "width": v.width,
                "height": v.height,
                "ready": v.state == "ready",
                # Every file of this size on the volume: the base format and the modern ones
                # made so far (a modern one larger than the base is never kept).
                "formats": {
                    name: {"url": urls.file(image.variant_path(v.kind, f.format)),
                           "content_type": image.variant_content_type(f.format),
                           "bytes": f.bytes}
                    for name, f in image.ready_files(v.kind).items()
                },
            }
            for v in image.variants
        },
        "thumbhash": base64.b64encode(image.thumbhash).decode() if image.thumbhash else None,
        "created_at": created_at_text(image.created_at),
        "visibility": image.visibility,
        "expires_at": created_at_text(image.expires_at) if image.expires_at else None,
    }
