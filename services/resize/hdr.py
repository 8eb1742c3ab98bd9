"""HDR variants: the JPEG variants of a gain-map photo are Ultra HDR JPEGs too.

Pillow reads the first picture of an Ultra HDR JPEG and nothing else; libvips 8.18
(``pyvips`` + ``pyvips-binary``) reads the gain map with it (``uhdrload``), resizes it with
the picture in ``thumbnail`` and writes both back (``uhdrsave``, libultrahdr). Chosen over
writing MPF and XMP around Pillow ourselves by ``python -m bench.hdr``: libvips makes all
five JPEG variants of a 12 MP HDR photo from one shrink-on-load decode in about the CPU of
Pillow's SDR cascade, and libultrahdr's output is what Chrome and Android are tested against
(docs/performance.md).

Only the base (JPEG) variants go this way. AVIF and WebP variants stay Pillow's SDR ones:
Pillow's AVIF encoder writes no gain map, and the image page offers HDR-capable browsers the
JPEG instead (services/gallery). Everything libvips writes goes through the original's own
rewrite (``shared.sanitize.gainmap``) on the way out, so a variant carries exactly what an
original may: the gain map, its numbers, the colour profile, and nothing else.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pyvips
from PIL import Image

from services.resize import heif_gain
from shared.sanitize import gainmap
from shared.variants import BASE, VariantSpec

if TYPE_CHECKING:
    from services.resize.engine import RenderedVariant, Source

QUALITY = 85  # as shared/encoding.py's JPEG
# The colour profile and the gain map (with its numbers): libvips drops the gain map unless
# told to keep it. EXIF, XMP and IPTC are left out, and what libvips writes of its own
# (a minimal EXIF) goes in the rewrite below.
KEEP = pyvips.enums.ForeignKeep.ICC | pyvips.enums.ForeignKeep.GAINMAP
# What a gain map that cannot be read raises (a 10-bit HEIC gain map, one of another shape
# than its picture, libvips refusing it): the engine then makes SDR variants, as before.
NOT_HDR = (pyvips.Error, ValueError, NotImplementedError, OSError, KeyError, RuntimeError)


def configure_vips() -> None:
    """libvips as the service uses Pillow: one thread per render (the service's workers are
    the parallelism, and background work must leave cores to uploads) and no operation cache
    (it would keep recent pictures and their decoded pixels alive between jobs)."""
    pyvips.concurrency_set(1)
    pyvips.cache_set_max(0)


def hdr_specs(source: Source, fmt_name: str, specs: Sequence[VariantSpec]) -> list[VariantSpec]:
    """The variants to make as Ultra HDR: the JPEG ones of a JPEG original with a gain map
    (the rewrite keeps MPF only for one, so the header says), or of an iPhone HEIC whose
    gain map's headroom the rewrite kept (``shared.sanitize.applegain``)."""
    if fmt_name not in ("JPEG", "HEIC") or not any(s.format == BASE for s in specs):
        return []
    check = gainmap.has_gain_map if fmt_name == "JPEG" else heif_gain.headroom
    if isinstance(source, Path):
        with source.open("rb") as fp:
            found = check(fp)
    else:
        found = check(source)
        source.seek(0)
    return [s for s in specs if s.format == BASE] if found else []


def render(source: Source, specs: Sequence[VariantSpec], pause: Callable[[], None],
           fmt_name: str = "JPEG", picture: Image.Image | None = None,
           ) -> list[RenderedVariant]:
    """``specs`` (largest first) as Ultra HDR JPEGs: one decode at the largest size (libvips
    shrinks on load and turns the picture upright by its EXIF orientation, the gain map
    with it; a HEIC's picture is ``picture``, the SDR path's largest, if given, else decoded by
    libheif, and its Apple gain map converted), each smaller one from the one before."""
    from services.resize.engine import RenderedVariant

    started = time.perf_counter()
    largest = specs[0]
    if fmt_name == "HEIC":
        current = heif_gain.ultrahdr_image(source, largest.width, largest.height, picture)
    else:
        current = pyvips.Image.thumbnail_source(
            _vips_source(source), largest.width, height=largest.height,
            size=pyvips.enums.Size.FORCE).copy_memory()
    made = []
    for spec in specs:
        if (current.width, current.height) != (spec.width, spec.height):
            current = current.thumbnail_image(spec.width, height=spec.height,
                                              size=pyvips.enums.Size.FORCE)
        pause()
        data = clean(current.uhdrsave_buffer(Q=QUALITY, keep=KEEP))
        now = time.perf_counter()
        made.append(RenderedVariant(spec.kind, spec.width, spec.height, data, spec.format,
                                    now - started))
        started = now
    return made


def clean(data: bytes) -> bytes:
    """libultrahdr's output through the originals' rewrite: its MPF and XMP rebuilt, its
    EXIF (libvips writes orientation and resolution) gone."""
    out = io.BytesIO()
    if not gainmap.rewrite(io.BytesIO(data), out, 1):
        raise RuntimeError("libultrahdr wrote a JPEG without a readable gain map")
    return out.getvalue()


def _vips_source(source: Source) -> pyvips.Source:
    if isinstance(source, Path):
        return pyvips.Source.new_from_file(str(source))
    return _stream_source(source)


def _stream_source(fp: BinaryIO) -> pyvips.Source:
    """A libvips source reading the open file (a store's file or its S3 scratch copy) a
    piece at a time, never the whole original into memory."""
    fp.seek(0)
    custom = pyvips.SourceCustom()
    custom.on_read(lambda size: fp.read(size))
    custom.on_seek(lambda offset, whence: fp.seek(offset, whence))
    return custom

