"""The image as stored (one row plus its variants) and as clients see it (the JSON image)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.embed import image_embed
from shared.encoding import OutputFormat, output_for
from shared.formats import BY_CONTENT_TYPE, BY_NAME, Format
from shared.storage import file_name
from shared.urls import RELATIVE, Urls
from shared.variants import BASE, KINDS, MODERN_FORMATS
from shared.video.catalog import BEST_FIRST
from shared.video.catalog import BY_NAME as RENDITION_FILES

POSTER_STEM = "poster"  # a video's first frame, stored beside it: poster.jpg
POSTER_FORMAT = BY_NAME["JPEG"]


@dataclass(frozen=True)
class VariantRecord:
    kind: str
    width: int
    height: int
    state: str
    bytes: int | None
    format: str = BASE


@dataclass(frozen=True)
class RenditionRecord:
    """A file made from the original in the background: a video's MP4 or AV1, an
    animation's MP4 (``shared.video.catalog``)."""

    name: str
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
    variants: tuple[VariantRecord, ...]  # base format, narrowest first
    modern: tuple[VariantRecord, ...] = ()  # AVIF and WebP versions, narrowest first
    thumbhash: bytes | None = None
    key_id: int | None = None  # the upload key it came with (keys mode or a key sent anyway)
    visibility: str = "public"  # public | unlisted (not in the Newest grid or the list API)
    expires_at: datetime | None = None  # gone from every read after this moment
    duration: float | None = None  # seconds: videos only
    renditions: tuple[RenditionRecord, ...] = ()  # best first
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
            duration=row.get("duration"),
            renditions=tuple(sorted(
                (RenditionRecord(r["name"], r["width"], r["height"], r["state"], r["bytes"])
                 for r in row.get("renditions") or ()),
                key=lambda r: BEST_FIRST.index(r.name))),
            gain_map=row["gain_map"],
        )

    @property
    def format(self) -> Format:
        return BY_CONTENT_TYPE[self.content_type]

    @property
    def original_path(self) -> str:
        return file_name(self.storage_key, "original", self.format.extension)

    @property
    def kind(self) -> str:
        """``image`` or ``video`` (the JSON's ``kind``)."""
        return self.format.kind

    @property
    def source_path(self) -> str:
        """What the variants are made from: the original, or a video's poster frame."""
        if self.kind == "video":
            return file_name(self.storage_key, POSTER_STEM, POSTER_FORMAT.extension)
        return self.original_path

    @property
    def source_format(self) -> Format:
        return POSTER_FORMAT if self.kind == "video" else self.format

    def rendition_path(self, name: str) -> str:
        file = RENDITION_FILES[name]
        return file_name(self.storage_key, file.stem, file.extension)

    def ready_renditions(self) -> list[RenditionRecord]:
        return [r for r in self.renditions if r.state == "ready"]

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


def image_json(image: ImageRecord, urls: Urls = RELATIVE,
               share: Urls | None = None) -> dict[str, Any]:
    """The JSON image of the HTTP contract (without ``delete_token``, which only upload adds).
    ``share``: absolute URLs (KITTEH_PUBLIC_URL's, or the request's origin) for the ``embed``
    codes, which are pasted elsewhere; without it they use ``urls``."""
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
        "kind": image.kind,
        "duration": image.duration,
        # Files made in the background; ``ready`` false until there (a video's page shows
        # its poster until then, an animation's its animated WebP).
        "renditions": {
            r.name: {"url": urls.file(image.rendition_path(r.name)), "width": r.width,
                     "height": r.height, "bytes": r.bytes,
                     "content_type": RENDITION_FILES[r.name].content_type,
                     "ready": r.state == "ready"}
            for r in image.renditions
        },
        "thumbhash": base64.b64encode(image.thumbhash).decode() if image.thumbhash else None,
        "created_at": created_at_text(image.created_at),
        "visibility": image.visibility,
        "expires_at": created_at_text(image.expires_at) if image.expires_at else None,
        "embed": image_embed(image, share or urls),
    }
