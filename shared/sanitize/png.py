"""PNG: chunks, each checked against its CRC, through IEND."""

from __future__ import annotations

import struct
import zlib

from shared.sanitize.errors import damaged
from shared.sanitize.exif import orientation_exif
from shared.sanitize.limits import Parts
from shared.sanitize.reader import FrameCheck, Reader, Sink, write

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Critical chunks, and the ancillary ones that change how pixels look (colour, gamma,
# transparency, physical size, significant bits, HDR) or make an APNG animate. Text, time,
# EXIF and everything unknown are dropped.
_PNG_KEEP = frozenset({
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"cICP", b"mDCV", b"cLLI", b"pHYs", b"acTL", b"fcTL", b"fdAT",
})


def rewrite(src: Reader, out: Sink, orientation: int, _: FrameCheck | None) -> None:
    if src.read(8) != _PNG_SIGNATURE:
        raise damaged("no PNG signature")
    write(out, _PNG_SIGNATURE)
    first = True
    parts = Parts("PNG chunks")
    while True:
        head = src.read(8)
        length, kind = struct.unpack(">I4s", head)
        if length >= 1 << 31 or not kind.isalpha() or (first and kind != b"IHDR"):
            raise damaged("not a PNG chunk")
        parts.add(kind in (b"IDAT", b"IEND"))
        keep = kind in _PNG_KEEP
        if not keep and kind[0] & 0x20 == 0:
            raise damaged(f"unknown critical PNG chunk {kind.decode()}")
        sink = out if keep else None
        write(sink, head)
        crc = src.copy(length, sink, zlib.crc32(kind))
        stored = src.read(4)
        if struct.unpack(">I", stored)[0] != crc:
            raise damaged(f"PNG chunk {kind.decode()} fails its checksum")
        write(sink, stored)
        if kind == b"IHDR" and orientation != 1:
            write(out, _png_chunk(b"eXIf", orientation_exif(orientation)[6:]))
        if kind == b"IEND":
            return  # and nothing after it
        first = False


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
