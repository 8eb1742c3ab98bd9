"""The image as stored (one row plus its variants) and as clients see it (the JSON image)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.formats import BY_CONTENT_TYPE, Format, variant_format
from shared.storage import Storage
from shared.urls import RELATIVE, Urls
from shared.variants import KINDS


@dataclass(frozen=True)
class VariantRecord:
    kind: str
    width: int
    height: int
    state: str
    bytes: int | None


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
    variants: tuple[VariantRecord, ...]
    key_id: int | None = None  # the upload key it came with (keys mode or a key sent anyway)
    visibility: str = "public"  # public | unlisted (not in the Newest grid or the list API)
    expires_at: datetime | None = None  # gone from every read after this moment

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ImageRecord:
        variants = sorted(
            (VariantRecord(v["kind"], v["width"], v["height"], v["state"], v["bytes"])
             for v in row["variants"] or ()),
            key=lambda v: KINDS.index(v.kind),
        )
        return cls(
            id=row["id"], token=row["token"], name=row["name"], storage_key=row["storage_key"],
            filename=row["filename"], content_type=row["content_type"], width=row["width"],
            height=row["height"], bytes=row["bytes"], frames=row["frames"],
            created_at=row["created_at"], variants=tuple(variants),
            key_id=row["key_id"], visibility=row["visibility"], expires_at=row["expires_at"],
        )

    @property
    def format(self) -> Format:
        return BY_CONTENT_TYPE[self.content_type]

    @property
    def variant_format(self) -> Format:
        """What its variants are written as: a browser format; animated WebP if animated."""
        return variant_format(self.format, self.frames > 1)

    @property
    def original_path(self) -> str:
        return Storage.relative_url_path(self.storage_key, "original", self.format.extension)

    def variant_path(self, kind: str) -> str:
        return Storage.relative_url_path(self.storage_key, kind, self.variant_format.extension)

    @property
    def page_path(self) -> str:
        return RELATIVE.page(self.name)

    def variant(self, kind: str) -> VariantRecord | None:
        return next((v for v in self.variants if v.kind == kind), None)


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
        },
        "variants": {
            v.kind: {
                "url": urls.file(image.variant_path(v.kind)),
                "width": v.width,
                "height": v.height,
                "ready": v.state == "ready",
            }
            for v in image.variants
        },
        "created_at": created_at_text(image.created_at),
        "visibility": image.visibility,
        "expires_at": created_at_text(image.expires_at) if image.expires_at else None,
    }
