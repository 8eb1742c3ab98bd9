"""JPEG: segments up to the first scan, then entropy-coded data through EOI."""

from __future__ import annotations

import re
import struct

from shared.errors import ImageOverLimits
from shared.sanitize.errors import damaged
from shared.sanitize.exif import orientation_exif
from shared.sanitize.limits import MAX_JPEG_SCANS, Parts
from shared.sanitize.reader import FrameCheck, Reader, Sink, write

# Inside entropy-coded data a 0xFF byte is followed by 0x00 (stuffing) or a restart marker
# (0xD0-0xD7); anything else after it is a marker. 0xFF 0xFF is a fill byte before one.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOI, _EOI, _SOS, _APP0, _APP1, _APP2, _APP14, _COM = (
    0xD8, 0xD9, 0xDA, 0xE0, 0xE1, 0xE2, 0xEE, 0xFE)
STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and restart markers carry no length


def rewrite(src: Reader, out: Sink, orientation: int, _: FrameCheck | None) -> None:
    if out is not None:
        # An HDR photo's gain map (a second JPEG after the first, shared.sanitize.gainmap)
        # is kept with the metadata describing it; it builds on this module.
        from shared.sanitize import gainmap

        if gainmap.rewrite(src.file, out, orientation):
            return
        src.file.seek(0)
    rewrite_primary(src, out, orientation)


def rewrite_primary(src: Reader, out: Sink, orientation: int, extra: bytes = b"") -> None:
    """The first picture, SOI to EOI, without metadata; ``extra`` (whole segments) is
    written where the minimal EXIF goes, after SOI and JFIF."""
    if src.read(2) != b"\xff\xd8":
        raise damaged("no JPEG start marker")
    write(out, b"\xff\xd8")
    exif = segment(_APP1, orientation_exif(orientation)) if orientation != 1 else b""
    scans = 0
    parts = Parts("JPEG segments")
    while True:
        if scans and not src.copy_until(_JPEG_MARKER, out, overlap=1):
            raise damaged("JPEG data ends before its end marker")
        marker = read_marker(src)
        if marker == _EOI:
            if not scans:
                raise damaged("JPEG without image data")
            write(out, b"\xff\xd9")  # and nothing after it: appended files stay behind
            return
        parts.add(marker == _SOS)
        if marker in STANDALONE:
            write(out, bytes((0xFF, marker)))
            continue
        if marker == _SOI:
            raise damaged("JPEG start marker inside the image")
        (length,) = struct.unpack(">H", src.read(2))
        if length < 2:
            raise damaged("JPEG segment of impossible length")
        kept = _jpeg_kept_payload(marker, src.read(length - 2))
        if kept is None:
            continue
        if marker != _APP0 and (exif or extra):  # right after SOI and JFIF
            write(out, exif)
            write(out, extra)  # on its own: gainmap's counting sink knows it by identity
            exif = extra = b""
        write(out, segment(marker, kept))
        if marker == _SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise ImageOverLimits(
                    f"This JPEG has more than {MAX_JPEG_SCANS} progressive scans.")


def read_marker(src: Reader) -> int:
    if src.read(1) != b"\xff":
        raise damaged("JPEG segment boundary expected")
    marker = src.read(1)[0]
    while marker == 0xFF:  # fill bytes may precede a marker
        marker = src.read(1)[0]
    return marker


def _jpeg_kept_payload(marker: int, payload: bytes) -> bytes | None:
    """The segment payload to write, or None to drop the segment."""
    if marker == _APP0:
        if payload.startswith(b"JFIF\0") and len(payload) >= 14:
            # version, units and density stay; an embedded thumbnail (rare) does not
            return payload[:12] + b"\0\0"
        return None  # JFXX thumbnails and others
    if marker == _APP2:
        return payload if payload.startswith(b"ICC_PROFILE\0") else None  # not MPF, FPXR
    if marker == _APP14:
        return payload if payload.startswith(b"Adobe") else None  # colour transform flag
    if 0xE0 <= marker <= 0xEF or marker == _COM or 0xF0 <= marker <= 0xFD:
        return None  # APPn (EXIF, XMP, IPTC, ...), comments, reserved JPGn extensions
    return payload  # tables, frame and scan headers, restart interval


def segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
