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

Everything here is blocking file I/O: callers run it in an executor.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from PIL import ExifTags, Image

from shared.errors import ImageOverLimits, UnsupportedImage
from shared.formats import Format

CHUNK = 1024 * 1024

# Structure limits, far above what real encoders write, low enough that walking a hostile
# file stays cheap: for us, and for Pillow's header parser, which keeps a Python object for
# every unknown chunk or segment before the pixel data (3 million empty PNG chunks, 40 MiB,
# took it 50 s and 250 MiB). Over a limit is a 422, like too many pixels.
MAX_PARTS_BEFORE_IMAGE = 1_000  # JPEG segments, PNG/WebP chunks, GIF extensions before pixels
MAX_PARTS = 100_000  # in the whole file (a 40 MiB PNG in libpng's 8 KiB IDATs has 5,000)
MAX_GIF_SUB_BLOCKS = 1_000_000  # GIF data comes in sub-blocks of up to 255 bytes: 160,000
# in 40 MiB; 1-byte sub-blocks make it 20 million
# Every progressive scan makes a JPEG decoder pass over the whole image again, so thousands
# of tiny scans make a small file cost minutes of CPU (a "scan bomb"). Real files have ~10.
MAX_JPEG_SCANS = 200

Sink = BinaryIO | None  # None: walk the structure, write nothing
FrameCheck = Callable[[int, int, int], None]  # (frame number, right edge, bottom edge)


def check_structure(path: Path, fmt: Format, check_frame: FrameCheck | None = None) -> int:
    """Walk a file without writing anything: broken or abusive structure is refused before any
    parser sees it. Returns the number of frames for a GIF (``check_frame`` sees each as it is
    found, the screen first as frame 0, so limits stop the walk early), 1 otherwise."""
    with path.open("rb") as src:
        return _REWRITERS[fmt.pillow_name](_Reader(src), None, 1, check_frame) or 1


def sanitize(source: Path, target: Path, fmt: Format, orientation: int) -> int:
    """Write ``source`` without metadata to ``target``; returns the bytes written.

    ``orientation`` is the EXIF orientation Pillow found in the upload (1: none). The caller
    owns ``target`` and removes it if this raises.
    """
    with source.open("rb") as src, target.open("wb") as out:
        _REWRITERS[fmt.pillow_name](_Reader(src), out, orientation, None)
        return out.tell()


def damaged(detail: str) -> UnsupportedImage:
    return UnsupportedImage(f"This image is damaged or truncated and cannot be read ({detail}).")


def orientation_exif(orientation: int) -> bytes:
    """A TIFF structure (with the ``Exif\\0\\0`` prefix JPEG wants) holding only orientation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()


def _too_many(what: str, limit: int) -> ImageOverLimits:
    return ImageOverLimits(f"This file is made of more than {limit:,} {what}; "
                           "no image needs that many.")


class _Parts:
    """Counts a file's structural parts against the limits above."""

    def __init__(self, what: str):
        self.what = what
        self.count = 0
        self.image_seen = False

    def add(self, is_image: bool = False) -> None:
        self.count += 1
        self.image_seen |= is_image
        if not self.image_seen and self.count > MAX_PARTS_BEFORE_IMAGE:
            raise _too_many(f"{self.what} before its pixel data", MAX_PARTS_BEFORE_IMAGE)
        if self.count > MAX_PARTS:
            raise _too_many(self.what, MAX_PARTS)


class _Reader:
    """Exact reads from a file, refilled a chunk at a time; running out early is damage."""

    def __init__(self, fp: BinaryIO):
        self._fp = fp
        self._buf = b""
        self._pos = 0
        self.sub_blocks = 0

    def _fill(self, count: int) -> bool:
        while len(self._buf) - self._pos < count:
            more = self._fp.read(CHUNK)
            if not more:
                return False
            self._buf = self._buf[self._pos:] + more
            self._pos = 0
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def read(self, count: int) -> bytes:
        """Up to a few KiB (headers, JPEG segments of at most 64 KiB)."""
        if not self._fill(count):
            raise damaged("the file ends early")
        data = self._buf[self._pos:self._pos + count]
        self._pos += count
        return data

    def copy(self, count: int, out: Sink, crc: int = 0) -> int:
        """Pass ``count`` bytes on to ``out``, a chunk at a time; returns their running CRC-32."""
        while count:
            if not self._fill(1):
                raise damaged("the file ends early")
            piece = self._buf[self._pos:self._pos + count]
            self._pos += len(piece)
            count -= len(piece)
            crc = zlib.crc32(piece, crc)
            _write(out, piece)
        return crc

    def copy_until(self, pattern: re.Pattern[bytes], out: Sink, overlap: int) -> bool:
        """Pass bytes on until ``pattern`` matches at the read position (False: the file
        ended first). ``overlap`` bytes are kept back at each refill, so a match that
        straddles two chunks is still found."""
        while True:
            found = pattern.search(self._buf, self._pos)
            if found:
                _write(out, self._buf[self._pos:found.start()])
                self._pos = found.start()
                return True
            keep_from = max(self._pos, len(self._buf) - overlap)
            _write(out, self._buf[self._pos:keep_from])
            self._pos = keep_from
            more = self._fp.read(CHUNK)
            if not more:
                return False
            self._buf = self._buf[self._pos:] + more
            self._pos = 0

    def copy_sub_blocks(self, out: Sink) -> None:
        """Pass a chain of GIF sub-blocks (length byte, data) on through its zero terminator.
        The lengths are followed in a tight loop over the buffer: a hostile GIF of 1-byte
        sub-blocks has 20 million of them in 40 MiB."""
        while True:
            buf, start = self._buf, self._pos
            pos = last = start
            end = len(buf)
            count = 0
            while pos < end:
                size = buf[pos]
                if size == 0:
                    _write(out, buf[start:pos + 1])
                    self._pos = pos + 1
                    self._count_sub_blocks(count)
                    return
                count += 1
                last, pos = pos, pos + size + 1
            if pos > end:  # the last sub-block runs past the buffer: start there next time
                pos, count = last, count - 1
            self._count_sub_blocks(count)
            _write(out, buf[start:pos])
            self._pos = pos
            if not self._fill(len(self._buf) - pos + 1):  # at least one byte more
                raise damaged("GIF data ends early")

    def _count_sub_blocks(self, count: int) -> None:
        self.sub_blocks += count
        if self.sub_blocks > MAX_GIF_SUB_BLOCKS:
            raise _too_many("GIF data sub-blocks", MAX_GIF_SUB_BLOCKS)


def _write(out: Sink, data: bytes) -> None:
    if out is not None:
        out.write(data)


# --- JPEG: segments up to the first scan, then entropy-coded data through EOI ---------------

# Inside entropy-coded data a 0xFF byte is followed by 0x00 (stuffing) or a restart marker
# (0xD0-0xD7); anything else after it is a marker. 0xFF 0xFF is a fill byte before one.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOI, _EOI, _SOS, _APP0, _APP1, _APP2, _APP14, _COM = (
    0xD8, 0xD9, 0xDA, 0xE0, 0xE1, 0xE2, 0xEE, 0xFE)
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and restart markers carry no length


def _jpeg(src: _Reader, out: Sink, orientation: int, _: FrameCheck | None) -> None:
    if src.read(2) != b"\xff\xd8":
        raise damaged("no JPEG start marker")
    _write(out, b"\xff\xd8")
    exif = _segment(_APP1, orientation_exif(orientation)) if orientation != 1 else b""
    scans = 0
    parts = _Parts("JPEG segments")
    while True:
        if scans and not src.copy_until(_JPEG_MARKER, out, overlap=1):
            raise damaged("JPEG data ends before its end marker")
        marker = _jpeg_marker(src)
        if marker == _EOI:
            if not scans:
                raise damaged("JPEG without image data")
            _write(out, b"\xff\xd9")  # and nothing after it: appended files stay behind
            return
        parts.add(marker == _SOS)
        if marker in _STANDALONE:
            _write(out, bytes((0xFF, marker)))
            continue
        if marker == _SOI:
            raise damaged("JPEG start marker inside the image")
        (length,) = struct.unpack(">H", src.read(2))
        if length < 2:
            raise damaged("JPEG segment of impossible length")
        kept = _jpeg_kept_payload(marker, src.read(length - 2))
        if kept is None:
            continue
        if exif and marker != _APP0:  # the minimal EXIF goes right after SOI and JFIF
            _write(out, exif)
            exif = b""
        _write(out, _segment(marker, kept))
        if marker == _SOS:
            scans += 1
            if scans > MAX_JPEG_SCANS:
                raise ImageOverLimits(
                    f"This JPEG has more than {MAX_JPEG_SCANS} progressive scans.")


def _jpeg_marker(src: _Reader) -> int:
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


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


# --- PNG: chunks, each checked against its CRC, through IEND -------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Critical chunks, and the ancillary ones that change how pixels look (colour, gamma,
# transparency, physical size, significant bits, HDR) or make an APNG animate. Text, time,
# EXIF and everything unknown are dropped.
_PNG_KEEP = frozenset({
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"cICP", b"mDCV", b"cLLI", b"pHYs", b"acTL", b"fcTL", b"fdAT",
})


def _png(src: _Reader, out: Sink, orientation: int, _: FrameCheck | None) -> None:
    if src.read(8) != _PNG_SIGNATURE:
        raise damaged("no PNG signature")
    _write(out, _PNG_SIGNATURE)
    first = True
    parts = _Parts("PNG chunks")
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
        _write(sink, head)
        crc = src.copy(length, sink, zlib.crc32(kind))
        stored = src.read(4)
        if struct.unpack(">I", stored)[0] != crc:
            raise damaged(f"PNG chunk {kind.decode()} fails its checksum")
        _write(sink, stored)
        if kind == b"IHDR" and orientation != 1:
            _write(out, _png_chunk(b"eXIf", orientation_exif(orientation)[6:]))
        if kind == b"IEND":
            return  # and nothing after it
        first = False


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# --- WebP: RIFF chunks, EXIF and XMP dropped, sizes and flags fixed -------------------------

_WEBP_KEEP = frozenset({b"VP8 ", b"VP8L", b"ALPH", b"ICCP", b"ANIM", b"ANMF"})
_VP8X_EXIF, _VP8X_XMP = 0x08, 0x04


def _webp(src: _Reader, out: Sink, orientation: int, _: FrameCheck | None) -> None:
    head = src.read(12)
    if head[:4] != b"RIFF" or head[8:] != b"WEBP":
        raise damaged("not a WebP RIFF file")
    remaining = struct.unpack("<I", head[4:8])[0] - 4  # bytes after the RIFF size stop here
    _write(out, b"RIFF\0\0\0\0WEBP")  # size written at the end
    extended = first = True
    parts = _Parts("WebP chunks")
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
            _write(out, chunk_head + bytes((wanted,)) + flags[1:])
        elif kind in _WEBP_KEEP and (extended or first):
            _write(out, chunk_head)
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


# --- GIF: blocks through the trailer; frames, graphic control and looping kept -------------

_NETSCAPE_LOOP = b"\x0bNETSCAPE2.0"


def _gif(src: _Reader, out: Sink, _: int, check_frame: FrameCheck | None) -> int:
    head = src.read(13)
    if head[:6] not in (b"GIF87a", b"GIF89a"):
        raise damaged("no GIF signature")
    if check_frame is not None:
        check_frame(0, *struct.unpack("<HH", head[6:10]))
    _write(out, head)
    if head[10] & 0x80:
        src.copy(3 << ((head[10] & 7) + 1), out)  # global colour table
    frames = 0
    control: bytes | None = None  # a graphic control block waits for the frame it belongs to
    parts = _Parts("GIF blocks")
    while not src.at_end():
        kind = src.read(1)
        if kind == b";":
            break
        parts.add(kind == b",")
        if kind == b"!":
            label = src.read(1)
            first = _sub_block(src)
            if label == b"\xf9":
                # Decoders read the first sub-block (4 bytes) only; the rest, if a hostile
                # file has any, is walked like other data and not kept.
                control = kind + label + first
                if first != b"\0":
                    control += b"\0"
                    src.copy_sub_blocks(None)
                continue
            keep = label == b"\xff" and first == _NETSCAPE_LOOP
            if label == b"\x01":  # plain text: drawn by no browser; its control goes too
                control = None
            sink = out if keep else None
            _write(sink, kind + label + first)
            if first != b"\0":
                src.copy_sub_blocks(sink)
        elif kind == b",":
            descriptor = src.read(9)
            left, top, width, height, packed = struct.unpack("<4HB", descriptor)
            frames += 1
            if check_frame is not None:
                check_frame(frames, left + width, top + height)
            _write(out, (control or b"") + kind + descriptor)
            control = None
            if packed & 0x80:
                src.copy(3 << ((packed & 7) + 1), out)  # local colour table
            _write(out, src.read(1))  # LZW minimum code size
            src.copy_sub_blocks(out)
        else:
            raise damaged("unknown GIF block")
    # Many GIFs in the wild end without a trailer after their last whole frame; browsers show
    # them, so they are accepted and given one. A cut inside a frame was refused above.
    if not frames:
        raise damaged("GIF without frames")
    _write(out, b";")
    return frames


def _sub_block(src: _Reader) -> bytes:
    size = src.read(1)
    return size + src.read(size[0]) if size != b"\0" else size


_REWRITERS: dict[str, Callable[[_Reader, Sink, int, FrameCheck | None], int | None]] = {
    "JPEG": _jpeg, "PNG": _png, "WEBP": _webp, "GIF": _gif,
}
