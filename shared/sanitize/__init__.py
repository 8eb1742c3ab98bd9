"""Metadata out, pixels untouched: the lossless rewrite of an uploaded original.

What Kitteh serves as "the original" is the uploaded file with everything a browser does not
need to show it taken out: EXIF (GPS, camera, dates, thumbnails), XMP, IPTC, comments, text
chunks, and anything appended after the image's end (which is how polyglots hide a ZIP or a
script in a picture). The compressed pixel data is copied byte for byte, never re-encoded.
The one tag kept is the EXIF orientation, rewritten as a minimal EXIF block holding only it,
because browsers and the resize service turn the picture upright by it.

Each format is walked by its own structure, a chunk of the file at a time (uploads can be
40 MiB): JPEG by markers, PNG and WebP by chunks, GIF by blocks. A structure that does not
hold (truncated, bad checksum, impossible length) is refused with the 415 a file Pillow
cannot read gets. The output depends on the input alone, so the same upload always gives the
same stored bytes and a URL derived from the upload's hash keeps naming one file.

One module per format (``jpeg``, ``png``, ``webp``, ``gif``, and ``heif`` for the ISOBMFF
containers of HEIC and AVIF over the guarded box walker ``isobmff``), over the shared
streaming ``reader``, the structure ``limits``, the ``errors`` they raise and the orientation
``exif``. Which rewrite a format gets is the format registry's (``shared.formats``) to say.

Everything here is blocking file I/O: callers run it in an executor.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shared.sanitize.exif import orientation_exif
from shared.sanitize.reader import FrameCheck, Reader

if TYPE_CHECKING:  # the registry imports the format modules of this package
    from shared.formats import Format

__all__ = ["FrameCheck", "check_structure", "orientation_exif", "sanitize"]


def check_structure(path: Path, fmt: Format, check_frame: FrameCheck | None = None) -> int:
    """Walk a file without writing anything: broken or abusive structure is refused before any
    parser sees it. Returns the number of frames for a GIF (``check_frame`` sees each as it is
    found, the screen first as frame 0, so limits stop the walk early; HEIC and AVIF: each
image item's size, from its header), 1 otherwise."""
    with path.open("rb") as src:
        return fmt.sanitizer(Reader(src), None, 1, check_frame) or 1


def sanitize(source: Path, target: Path, fmt: Format, orientation: int) -> int:
    """Write ``source`` without metadata to ``target``; returns the bytes written.

    ``orientation`` is the EXIF orientation Pillow found in the upload (1: none). The caller
    owns ``target`` and removes it if this raises.
    """
    with source.open("rb") as src, target.open("wb") as out:
        fmt.sanitizer(Reader(src), out, orientation, None)
        return out.tell()
