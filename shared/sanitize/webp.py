"""WebP: RIFF chunks, EXIF and XMP dropped, sizes and flags fixed."""

from __future__ import annotations

import struct

from shared.sanitize.errors import damaged
from shared.sanitize.exif import orientation_exif
from shared.sanitize.limits import Parts
from shared.sanitize.reader import FrameCheck, Reader, Sink, write

_WEBP_KEEP = frozenset({b"VP8 ", b"VP8L", b"ALPH", b"ICCP", b"ANIM", b"ANMF"})
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def rewrite(src: Reader, out: Sink, orientation: int, _: FrameCheck | None) -> None:
    head = src.read(12)
    if head[:4] != b"RIFF" or head[8:] != b"WEBP":
        raise damaged("not a WebP RIFF file")
    remaining = struct.unpack("<I", head[4:8])[0] - 4  # bytes after the RIFF size stop here
    write(out, b"RIFF\0\0\0\0WEBP")  # size written at the end
    extended = first = True
    parts = Parts("WebP chunks")
    while remaining > 0:
        if remaining < 8:
            raise damaged("WebP chunk runs past the RIFF size")
        chunk_head = src.read(8)
        kind, size = chunk_head[:4], struct.unpack("<I", chunk_head[4:])[0]
        padded = size + (size & 1)
        remaining -= 8 + padded
        if remaining < 0:
            raise damaged("WebP chunk runs past the RIFF size")
        parts.add(kind in (b"VP8 ", b"VP8L", b"ANMF", b"ALPH"))
        if first:
            if kind not in (b"VP8X", b"VP8 ", b"VP8L"):
                raise damaged("WebP without an image chunk")
            extended = kind == b"VP8X"
        if kind == b"VP8X":
            if not first or size != 10:
                raise damaged("misplaced WebP VP8X chunk")
            flags = src.read(10)
            wanted = (flags[0] & ~(_VP8X_EXIF | _VP8X_XMP)) | (
                _VP8X_EXIF if orientation != 1 else 0)
            write(out, chunk_head + bytes((wanted,)) + flags[1:])
        elif kind in _WEBP_KEEP and (extended or first):
            write(out, chunk_head)
            src.copy(padded, out)
        else:  # EXIF, XMP, unknown chunks, anything after a simple file's one image chunk
            src.copy(padded, None)
        first = False
    if first:
        raise damaged("WebP without chunks")
    # A simple (VP8/VP8L-only) WebP cannot carry EXIF, so Pillow never reports an orientation
    # for one: only an extended file can have one to keep.
    if out is None:
        return
    if extended and orientation != 1:
        tiff = orientation_exif(orientation)[6:]  # WebP's EXIF chunk is bare TIFF
        out.write(b"EXIF" + struct.pack("<I", len(tiff)) + tiff + b"\0" * (len(tiff) & 1))
    end = out.tell()
    out.seek(4)
    out.write(struct.pack("<I", end - 8))
    out.seek(end)
