"""iPhone HEIC gain maps: the one number that describes them, kept where readers look for it.

An iPhone HDR photo's gain map is an auxiliary image item of the HEIC
(``urn:com:apple:photo:2020:aux:hdrgainmap``, linked to the picture by ``auxl``), described
by an XMP item of its own (``HDRGainMap:HDRGainMapVersion``, and since iOS 17 its
``HDRGainMapHeadroom``). Older iPhones keep the headroom (how much brighter than white the
brightest area may be shown) only in two tags of Apple's maker notes inside the EXIF, which
the rewrite removes with everything else. So the rewrite (``shared.sanitize.heif``) puts a
new XMP packet in that XMP item's place, of the same length (padded with spaces, which XML
allows after the root element): the version and the headroom, nothing else. The gain map image
itself is an image item and stays byte for byte.

The headroom from the maker notes follows Apple's published formula ("Applying Apple HDR
effect to your photos"): from tag 33 (HDR headroom) and tag 48 (HDR gain), 0 when absent.
"""

from __future__ import annotations

import math
import re
import struct
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from shared.sanitize.isobmff import Layout

GAIN_MAP_URN = b"urn:com:apple:photo:2020:aux:hdrgainmap"
NAMESPACE = "http://ns.apple.com/HDRGainMap/1.0/"
MAX_HEADROOM = 16.0  # 4 stops; Apple's formula gives at most 2^3 = 8
_VERSION = re.compile(rb"HDRGainMapVersion(?:>|=\")\s*(\d{1,9})")
_HEADROOM = re.compile(rb"HDRGainMapHeadroom(?:>|=\")\s*([0-9.]{1,20})")
MAX_XMP_BYTES = 64 * 1024
# What Pillow raises for a broken EXIF (its warnings too, where warnings are errors, as in the
# tests; shared.imaging.PILLOW_DAMAGE, which this package cannot import).
EXIF_DAMAGE = (ValueError, struct.error, SyntaxError, OSError, TypeError, KeyError, IndexError,
               EOFError, ZeroDivisionError, RuntimeError, UserWarning)


def gain_map_item(layout: Layout) -> int | None:
    """The primary's Apple gain map item, if it has one."""
    from shared.sanitize.isobmff import _property

    for kind, source, targets in layout.references:
        if kind == b"auxl" and layout.primary in targets:
            auxc = _property(layout, source, b"auxC")
            if auxc is not None and auxc[4:].rstrip(b"\0") == GAIN_MAP_URN:
                return source
    return None


def describing_xmp(layout: Layout, item_id: int) -> int | None:
    """The XMP (``mime``) item that describes ``item_id`` (``cdsc``), if one."""
    for kind, source, targets in layout.references:
        if kind == b"cdsc" and item_id in targets and layout.items[source].type == b"mime":
            return source
    return None


def replacement(layout: Layout, fp: BinaryIO) -> tuple[int, bytes] | None:
    """(XMP item id, its new content) for a HEIC with an Apple gain map whose headroom is
    known; None otherwise (the XMP item then goes with the other metadata, as before)."""
    from shared.sanitize.isobmff import item_bytes

    gain_map = gain_map_item(layout)
    xmp_id = describing_xmp(layout, gain_map) if gain_map is not None else None
    if xmp_id is None or len(layout.items[xmp_id].extents) != 1:
        return None
    length = layout.items[xmp_id].extents[0][1]
    if not 0 < length <= MAX_XMP_BYTES:
        return None
    xmp = item_bytes(layout, layout.items[xmp_id], fp, length)
    version = _VERSION.search(xmp)
    if version is None:
        return None
    headroom = _float(_HEADROOM.search(xmp))
    if headroom is None:
        exif = next((i for i in layout.items.values() if i.type == b"Exif"), None)
        if exif is not None:
            headroom = maker_note_headroom(item_bytes(layout, exif, fp, MAX_XMP_BYTES))
    if headroom is None or not 1.0 < headroom <= MAX_HEADROOM:
        return None
    packet = xmp_packet(int(version.group(1)), headroom)
    if len(packet) > length:
        return None
    return xmp_id, packet + b" " * (length - len(packet))


def xmp_packet(version: int, headroom: float) -> bytes:
    return (f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/'
            f'02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:HDRGainMap='
            f'"{NAMESPACE}" HDRGainMap:HDRGainMapVersion="{version}" '
            f'HDRGainMap:HDRGainMapHeadroom="{headroom:.6f}"/></rdf:RDF></x:xmpmeta>').encode()


def headroom_of(xmp: bytes) -> float | None:
    return _float(_HEADROOM.search(xmp))


def kept_headroom(fp: BinaryIO) -> float | None:
    """The headroom a stored (rewritten) HEIC's gain-map XMP says, if it has a gain map with
    one: what makes it an HDR photo for the upload's row and the resize service."""
    from shared.sanitize.isobmff import item_bytes, walk

    fp.seek(0)
    try:
        layout = walk(fp, None)
        gain_map = gain_map_item(layout)
        xmp_id = describing_xmp(layout, gain_map) if gain_map is not None else None
        if xmp_id is None:
            return None
        return headroom_of(item_bytes(layout, layout.items[xmp_id], fp, MAX_XMP_BYTES))
    finally:
        fp.seek(0)


def maker_note_headroom(exif_item: bytes) -> float | None:
    """Apple's formula over maker-note tags 33 and 48, from a HEIF EXIF item (a 4-byte
    offset to the TIFF header, then EXIF). None if there is no Apple maker note."""
    from PIL import Image

    if len(exif_item) < 8:
        return None
    start = 4 + int.from_bytes(exif_item[:4], "big")
    try:
        exif = Image.Exif()
        exif.load(exif_item[start:])
        note = exif.get_ifd(0x8769).get(0x927C)
    except EXIF_DAMAGE:  # an unreadable EXIF: no headroom, the gain map's XMP goes
        return None
    if not isinstance(note, bytes):
        return None
    tags = _maker_note_rationals(note)
    if tags is None or 33 not in tags:
        return None
    headroom, gain = tags[33], tags.get(48, 0.0)
    if headroom < 1.0:
        stops = -20.0 * gain + 1.8 if gain <= 0.01 else -0.101 * gain + 1.601
    else:
        stops = -70.0 * gain + 3.0 if gain <= 0.01 else -0.303 * gain + 2.303
    return 2.0 ** max(stops, 0.0)


def _maker_note_rationals(note: bytes) -> dict[int, float] | None:
    """Tags 33 and 48 of an ``Apple iOS`` maker note (big-endian IFD at 14, offsets from the
    note's start)."""
    if not note.startswith(b"Apple iOS\0") or note[12:14] != b"MM" or len(note) < 16:
        return None
    (count,) = struct.unpack(">H", note[14:16])
    found = {}
    for i in range(min(count, 200)):
        entry = note[16 + 12 * i:28 + 12 * i]
        if len(entry) < 12:
            return None
        tag, kind, _, value = struct.unpack(">HHI4s", entry)
        if tag in (33, 48) and kind in (5, 10):
            (offset,) = struct.unpack(">I", value)
            raw = note[offset:offset + 8]
            if len(raw) == 8:
                numerator, denominator = struct.unpack(">ii" if kind == 10 else ">II", raw)
                if denominator:
                    found[tag] = numerator / denominator
    return found


def _float(match: re.Match[bytes] | None) -> float | None:
    if match is None:
        return None
    try:
        value = float(match.group(1))
    except ValueError:
        return None
    return value if math.isfinite(value) else None
