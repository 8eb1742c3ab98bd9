"""HDR JPEGs: the gain map kept, with only the numbers that describe it.

An Ultra HDR JPEG (Pixel, Samsung, and what libultrahdr writes) is a normal JPEG followed by a
second, smaller one: the *gain map*, which tells an HDR screen how much brighter each area
may be shown. The first picture's MPF segment (CIPA DC-007) says where the second starts; the
gain map's own XMP (Adobe's ``hdrgm`` namespace) or ISO 21496-1 segment holds its numbers
(content boost, gamma, offsets, display headroom), and the first picture's XMP
(``hdrgm:Version`` and a ``GContainer`` directory) or ISO version segment says to look.

Everything else still goes, as in ``shared.sanitize.jpeg``: EXIF, GPS, the XMP around the
HDR numbers, IPTC, and every other appended file (depth maps, a motion photo's video). What
is kept is rebuilt, never copied: the MPF segment with two entries, and XMP packets written
here holding the recognised ``hdrgm`` values (each parsed as a number), so nothing else an
XMP packet carried can ride along. The ISO 21496-1 segments are fixed binary records of
fractions; they are copied when their length fits one.

A gain map that does not hold (offsets outside the file, not a JPEG, no HDR numbers) is
dropped and the photo is stored as the SDR picture it also is, as before this module.
"""

from __future__ import annotations

import io
import math
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import BinaryIO

from shared.errors import KittehError
from shared.sanitize import jpeg
from shared.sanitize.errors import damaged
from shared.sanitize.limits import MAX_PARTS_BEFORE_IMAGE
from shared.sanitize.reader import Reader, write

MAX_GAIN_MAP_BYTES = 16 * 1024 * 1024  # a 50 MP phone's gain map is ~1-3 MB
MAX_MP_IMAGES = 16  # MPF entries: a primary, a gain map, a depth map, a preview or two
MPF_PREFIX = b"MPF\0"
XMP_PREFIX = b"http://ns.adobe.com/xap/1.0/\0"
ISO_PREFIX = b"urn:iso:std:iso:ts:21496:-1\0"
MAX_ISO_BYTES = len(ISO_PREFIX) + 160  # version, flags, and 3 channels × 5 fractions
HDRGM = "http://ns.adobe.com/hdr-gain-map/1.0/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
# The numbers of an Adobe gain map (hdrgm 1.0); one value, or one per colour channel.
HDRGM_NUMBERS = ("GainMapMin", "GainMapMax", "Gamma", "OffsetSDR", "OffsetHDR",
                 "HDRCapacityMin", "HDRCapacityMax")
_APP1, _APP2 = 0xE1, 0xE2


@dataclass(frozen=True)
class GainMap:
    """What the rewrite keeps of an HDR JPEG's second picture."""

    data: bytes  # the gain map JPEG, rewritten: its HDR segments, then its picture
    adobe: bool  # described by hdrgm XMP (else by ISO 21496-1 alone)
    iso: bool  # the primary says "ISO 21496-1" too


def rewrite(fp: BinaryIO, out: BinaryIO, orientation: int) -> bool:
    """Write the JPEG in ``fp`` with its gain map, if it has one that holds (True); False:
    nothing written, the caller writes the plain JPEG."""
    gain_map = find(fp)
    if gain_map is None:
        return False
    placeholder = primary_segments(gain_map, 0, 0)
    fp.seek(0)
    counted = _Counter(placeholder)
    jpeg.rewrite_primary(Reader(fp), counted, orientation, placeholder)  # sizes first
    if counted.extra_at < 0:  # no segment after JFIF to put them before: not a photo
        return False
    mpf_at = counted.extra_at + len(placeholder) - len(_mpf(0, 0))
    segments = primary_segments(gain_map, counted.size, counted.size - (mpf_at + 8))
    if len(segments) != len(placeholder):
        raise damaged("JPEG without room for its gain map's segments")
    fp.seek(0)
    jpeg.rewrite_primary(Reader(fp), out, orientation, segments)
    write(out, gain_map.data)
    return True


def primary_segments(gain_map: GainMap, primary_size: int, gain_map_offset: int) -> bytes:
    """The first picture's HDR segments, MPF last (its offsets count from inside it)."""
    parts = []
    if gain_map.adobe:
        parts.append(jpeg.segment(_APP1, XMP_PREFIX + _primary_xmp(len(gain_map.data))))
    if gain_map.iso:
        parts.append(jpeg.segment(_APP2, ISO_PREFIX + b"\0\0\0\0"))  # versions 0, 0
    parts.append(_mpf(primary_size, len(gain_map.data), gain_map_offset))
    return b"".join(parts)


def find(fp: BinaryIO) -> GainMap | None:
    """The gain map of the JPEG in ``fp``, rewritten, or None (not an HDR JPEG, or one
    whose gain map does not hold)."""
    fp.seek(0)
    header = _header_segments(fp)
    mpf = next((p for m, p, _ in header if m == _APP2 and p.startswith(MPF_PREFIX)), None)
    if mpf is None:
        return None
    mpf_at = next(at for m, p, at in header if m == _APP2 and p.startswith(MPF_PREFIX))
    iso = any(m == _APP2 and p.startswith(ISO_PREFIX) for m, p, _ in header)
    try:
        entries = _mp_entries(mpf[len(MPF_PREFIX):])
    except (struct.error, ValueError):
        return None
    fp.seek(0, 2)
    file_end = fp.tell()
    for size, offset in entries[1:]:
        start = mpf_at + 4 + len(MPF_PREFIX) + offset  # offsets count from the MP header
        if offset == 0 or size > MAX_GAIN_MAP_BYTES or start + size > file_end:
            continue
        fp.seek(start)
        found = _gain_map(fp.read(size), iso)
        if found is not None:
            return found
    return None


def _header_segments(fp: BinaryIO) -> list[tuple[int, bytes, int]]:
    """(marker, payload, file offset) of the segments before the first scan."""
    src = Reader(fp)
    if src.read(2) != b"\xff\xd8":
        raise damaged("no JPEG start marker")
    found = []
    at = 2
    for _ in range(MAX_PARTS_BEFORE_IMAGE):
        marker = jpeg.read_marker(src)
        if marker in (0xDA, 0xD9):
            break
        if marker in jpeg.STANDALONE:
            at += 2
            continue
        (length,) = struct.unpack(">H", src.read(2))
        if length < 2:
            raise damaged("JPEG segment of impossible length")
        found.append((marker, src.read(length - 2), at))
        at += 2 + length
    return found


def _mp_entries(tiff: bytes) -> list[tuple[int, int]]:
    """(size, offset) of each image the MP index lists."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        raise ValueError("MPF byte order")
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    images, entries_at = 0, None
    for i in range(min(count, 32)):
        tag, _kind, number, value = struct.unpack(order + "HHII",
                                                  tiff[ifd + 2 + 12 * i:ifd + 14 + 12 * i])
        if tag == 0xB001:
            images = value
        elif tag == 0xB002:
            entries_at, entries_bytes = value, number
    if not 2 <= images <= MAX_MP_IMAGES or entries_at is None or entries_bytes != 16 * images:
        raise ValueError("MPF index")
    entries = []
    for i in range(images):
        _attribute, size, offset = struct.unpack(
            order + "III", tiff[entries_at + 16 * i:entries_at + 16 * i + 12])
        entries.append((size, offset))
    return entries


def _gain_map(data: bytes, primary_iso: bool) -> GainMap | None:
    """The gain map rewritten with its HDR numbers only, if ``data`` is one."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        segments = _header_segments(io.BytesIO(data))
        numbers = next((n for m, p, _ in segments if m == _APP1 and p.startswith(XMP_PREFIX)
                        for n in [_hdrgm_numbers(p[len(XMP_PREFIX):])] if n), None)
        iso = next((p for m, p, _ in segments
                    if m == _APP2 and p.startswith(ISO_PREFIX) and len(p) <= MAX_ISO_BYTES),
                   None)
        if numbers is None and iso is None:
            return None
        kept = b""
        if numbers:
            kept += jpeg.segment(_APP1, XMP_PREFIX + _gain_map_xmp(numbers))
        if iso is not None:
            kept += jpeg.segment(_APP2, iso)
        picture = io.BytesIO()
        jpeg.rewrite_primary(Reader(io.BytesIO(data)), picture, 1, kept)
    except (KittehError, ValueError, struct.error, ET.ParseError, OSError):
        return None  # a damaged or abusive gain map (the JPEG walk's 415/422): dropped
    return GainMap(picture.getvalue(), bool(numbers), primary_iso and iso is not None)


def has_gain_map(fp: BinaryIO) -> bool:
    """Does this (rewritten) JPEG carry a gain map? The rewrite keeps an MPF segment only
    for one, so its header alone says."""
    fp.seek(0)
    try:
        return any(m == _APP2 and p.startswith(MPF_PREFIX) for m, p, _ in _header_segments(fp))
    finally:
        fp.seek(0)


def _hdrgm_numbers(xmp: bytes) -> dict[str, list[float]] | None:
    """The hdrgm values of a gain map's XMP, each one number or three; None if it has no
    ``hdrgm:Version`` (then it is not an Adobe gain map)."""
    root = ET.fromstring(xmp)  # xpacket wrappers are processing instructions: allowed
    numbers: dict[str, list[float]] = {}
    version = None
    for description in root.iter(f"{{{RDF}}}Description"):
        version = description.get(f"{{{HDRGM}}}Version", version)
        for name in HDRGM_NUMBERS:
            value = description.get(f"{{{HDRGM}}}{name}")
            if value is not None:
                numbers[name] = [_number(value)]
                continue
            element = description.find(f"{{{HDRGM}}}{name}")
            if element is not None:
                items = [li.text or "" for li in element.iter(f"{{{RDF}}}li")]
                numbers[name] = [_number(v) for v in (items or [element.text or ""])]
                if len(numbers[name]) not in (1, 3):
                    raise ValueError("hdrgm value of neither 1 nor 3 channels")
    if version is None or "GainMapMax" not in numbers:
        return None
    return numbers


def _number(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value) or abs(value) > 1e6:
        raise ValueError("hdrgm value out of range")
    return value


def _gain_map_xmp(numbers: dict[str, list[float]]) -> bytes:
    attributes = "".join(f' hdrgm:{name}="{values[0]:.6g}"'
                         for name, values in numbers.items() if len(values) == 1)
    elements = "".join(
        f"<hdrgm:{name}><rdf:Seq>{''.join(f'<rdf:li>{v:.6g}</rdf:li>' for v in values)}"
        f"</rdf:Seq></hdrgm:{name}>" for name, values in numbers.items() if len(values) == 3)
    return _packet(f'xmlns:hdrgm="{HDRGM}" hdrgm:Version="1.0"{attributes}', elements)


def _primary_xmp(gain_map_bytes: int) -> bytes:
    item = "http://ns.google.com/photos/1.0/container/item/"
    directory = (
        '<Container:Directory><rdf:Seq>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="Primary" '
        'Item:Mime="image/jpeg"/></rdf:li>'
        '<rdf:li rdf:parseType="Resource"><Container:Item Item:Semantic="GainMap" '
        f'Item:Mime="image/jpeg" Item:Length="{gain_map_bytes}"/></rdf:li>'
        '</rdf:Seq></Container:Directory>')
    return _packet(f'xmlns:hdrgm="{HDRGM}" '
                   'xmlns:Container="http://ns.google.com/photos/1.0/container/" '
                   f'xmlns:Item="{item}" hdrgm:Version="1.0"', directory)


def _packet(attributes: str, body: str) -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{RDF}">'
            f'<rdf:Description rdf:about="" {attributes}>{body}</rdf:Description>'
            '</rdf:RDF></x:xmpmeta>').encode()


def _mpf(primary_size: int, gain_map_size: int, gain_map_offset: int = 0) -> bytes:
    """An MPF segment (big-endian) listing the primary and the gain map, as libultrahdr
    writes it: version, number of images, and the two MP entries."""
    entries_at = 8 + 2 + 3 * 12 + 4  # TIFF header, IFD count, three tags, next IFD
    ifd = struct.pack(">H", 3) + b"".join((
        struct.pack(">HHI4s", 0xB000, 7, 4, b"0100"),
        struct.pack(">HHII", 0xB001, 4, 1, 2),
        struct.pack(">HHII", 0xB002, 7, 32, entries_at))) + struct.pack(">I", 0)
    entries = (struct.pack(">IIIHH", 0x030000, primary_size, 0, 0, 0)
               + struct.pack(">IIIHH", 0, gain_map_size, gain_map_offset, 0, 0))
    return jpeg.segment(_APP2, MPF_PREFIX + b"MM\0*" + struct.pack(">I", 8) + ifd + entries)


class _Counter:
    """A sink that only counts: the primary's rewritten size, and where ``extra`` (written
    on its own by ``jpeg.rewrite_primary``) lands."""

    def __init__(self, extra: bytes) -> None:
        self.extra = extra
        self.size = 0
        self.extra_at = -1

    def write(self, data: bytes) -> int:
        if data is self.extra:
            self.extra_at = self.size
        self.size += len(data)
        return len(data)
