"""ISOBMFF (the HEIF container of HEIC and AVIF): a guarded walk of the boxes, no decoding.

HEIF files are boxes (size, type, payload) holding boxes. The still image lives in ``meta``:
items (``iinf``) whose bytes are located by ``iloc`` (offsets into ``mdat`` or ``idat``),
linked by ``iref`` (a grid's tiles, a thumbnail, the EXIF describing the picture) and
described by properties (``iprp``: ``ispe`` the size, ``irot``/``imir`` the orientation). This
module reads that structure with every count and size bounded, so neither libheif nor libavif
ever sees a file whose structure is hostile: sizes running past their parent (truncated),
boxes of impossible size (which would make a walker loop), nesting deeper than HEIF uses,
thousands of items, tiles or references, and image sizes beyond the limits, read from
``ispe`` before anything is decoded.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO

from shared.errors import UnsupportedImage
from shared.sanitize import sequence
from shared.sanitize.errors import damaged, too_many
from shared.sanitize.reader import FrameCheck

MAX_DEPTH = 8  # file > meta > iprp > ipco > property is 4 deep; HEIF never needs 8
MAX_TOP_LEVEL_BOXES = 1_000
MAX_META_BYTES = 4 * 1024 * 1024  # an iPhone's meta is ~5 KiB; 4 MiB is ~100,000 items' worth
MAX_ITEMS = 1_000  # an iPhone 48 MP photo: 192 tiles, a grid, thumbnail, gain map, EXIF
MAX_TILES = 1_024  # tiles of one grid
MAX_REFERENCES = 10_000  # item references, all kinds together
MAX_PROPERTIES = 2_000
MAX_ASSOCIATIONS = 20_000
MAX_EXTENTS = 10_000

AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm",
                         b"hevs"})
GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})  # "some HEIF": the primary item's coding decides
CODINGS = {b"av01": "AVIF", b"hvc1": "HEIC"}
METADATA_ITEMS = frozenset({b"Exif", b"mime", b"uri "})  # EXIF, XMP (a mime item) and links
# Items that are pictures (coded, derived, or a gain map's tone map): what the rewrite keeps.
# Any other item type is dropped like metadata: an unknown item can carry anything.
PICTURE_ITEMS = frozenset({b"hvc1", b"av01", b"grid", b"iden", b"iovl", b"tmap", b"jpeg",
                           b"avc1", b"vvc1", b"j2k1", b"unci"})


def brands(head: bytes) -> frozenset[bytes]:
    """The major and compatible brands of the ``ftyp`` box a file starts with (empty if it
    does not start with one)."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return frozenset()
    size = min(struct.unpack(">I", head[:4])[0], len(head))
    found = {head[8:12]}
    found.update(head[i:i + 4] for i in range(16, size - 3, 4))
    return frozenset(found)


def is_avif(head: bytes) -> bool:
    return bool(brands(head) & AVIF_BRANDS)


def is_heic(head: bytes) -> bool:
    found = brands(head)
    return not found & AVIF_BRANDS and bool(found & (HEIC_BRANDS | GENERIC_BRANDS))


@dataclass(frozen=True)
class Box:
    type: bytes
    start: int  # where its header starts
    body: int  # where its payload starts
    end: int


@dataclass
class Item:
    id: int
    type: bytes
    infe: bytes = b""  # the whole infe box, copied into a rewritten iinf
    content_type: bytes = b""
    construction: int = 0  # 0: offsets in the file, 1: in idat
    extents: list[tuple[int, int]] = field(default_factory=list)  # (offset, length); 0: to end
    iloc_entry: bytes = b""  # its iloc entry, copied into a rewritten iloc


@dataclass
class Layout:
    """What the walk found: enough to check limits and to rewrite the metadata out."""

    top: list[Box]
    meta: Box
    meta_children: list[Box]
    data: bytes  # the meta box, whole
    primary: int
    items: dict[int, Item]
    references: list[tuple[bytes, int, list[int]]]  # (kind, from, to...)
    iref_version: int
    iloc_header: bytes  # version/flags and field sizes, before the item count
    iloc_version: int
    iinf_version: int
    ipma_version_flags: bytes
    associations: dict[int, list[int]]  # item -> raw association entries (index | essential)
    properties: list[tuple[bytes, bytes]]  # (type, payload), 1-based in associations
    coding: str  # the registry name the primary item's coding means: "AVIF" or "HEIC"
    width: int  # as displayed: clap and irot applied
    height: int
    frames: int = 1  # an animated AVIF's: the samples of its picture track
    movie: bytes = b""  # its moov box, whole
    tracks: sequence.Tracks | None = None


def read_boxes(data: bytes, start: int, end: int, depth: int, limit: int,
               what: str = "HEIF boxes in one place") -> list[Box]:
    """The boxes in ``data[start:end]``, each checked to fit inside it."""
    if depth > MAX_DEPTH:
        raise damaged("HEIF boxes nested too deep")
    boxes = []
    pos = start
    while pos < end:
        if end - pos < 8:
            raise damaged("HEIF box header cut short")
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = pos + 8
        if size == 1:
            if end - pos < 16:
                raise damaged("HEIF box header cut short")
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            body += 8
        elif size == 0:
            raise damaged("HEIF box of unbounded size inside another")
        if kind == b"uuid":
            body += 16
        if size < body - pos or pos + size > end:
            raise damaged(f"HEIF box {_name(kind)} does not fit where it is")
        boxes.append(Box(kind, pos, body, pos + size))
        if len(boxes) > limit:
            raise too_many(what, limit)
        pos += size
    return boxes


def top_level(fp: BinaryIO) -> list[Box]:
    """The file's own boxes. Bytes after the last whole box that cannot be a box header (an
    appended ZIP, say) end the walk and are left behind; a box header whose size runs past
    the end of the file is a truncated file."""
    fp.seek(0, 2)
    file_end = fp.tell()
    boxes: list[Box] = []
    pos = 0
    while pos < file_end:
        fp.seek(pos)
        head = fp.read(16)
        if len(head) < 8:
            break
        size, kind = struct.unpack(">I4s", head[:8])
        if not boxes and kind != b"ftyp":
            raise damaged("HEIF file without ftyp first")
        if not (kind.isalnum() or kind in (b"uuid", b"free", b"skip")) or 1 < size < 8:
            if not boxes:
                raise damaged("not an ISOBMFF file")
            break  # not a box: appended data, dropped
        body = pos + 8
        if size == 1:
            if len(head) < 16:
                raise damaged("HEIF box header cut short")
            size = struct.unpack(">Q", head[8:16])[0]
            body += 8
        elif size == 0:
            size = file_end - pos  # to the end of the file
        if kind == b"uuid":
            body += 16
        if size < body - pos or pos + size > file_end:
            raise damaged(f"HEIF box {_name(kind)} runs past the end of the file")
        boxes.append(Box(kind, pos, body, pos + size))
        if len(boxes) > MAX_TOP_LEVEL_BOXES:
            raise too_many("HEIF top-level boxes", MAX_TOP_LEVEL_BOXES)
        pos += size
    return boxes


def walk(fp: BinaryIO, check_size: FrameCheck | None) -> Layout:
    top = top_level(fp)
    metas = [b for b in top if b.type == b"meta"]
    if len(metas) != 1:
        raise damaged("HEIF file without exactly one meta box")
    movies = [b for b in top if b.type == b"moov"]
    if movies and (len(movies) > 1 or b"avis" not in _ftyp_brands(fp, top[0])):
        raise UnsupportedImage("HEIC image sequences (animations) are not accepted; a still "
                               "HEIC, and a still or animated AVIF, are.")
    meta = metas[0]
    if meta.end - meta.start > MAX_META_BYTES:
        raise too_many("bytes of HEIF metadata boxes", MAX_META_BYTES)
    fp.seek(meta.start)
    data = fp.read(meta.end - meta.start)
    body = meta.body - meta.start
    children = read_boxes(data, body + 4, len(data), 2, 100)  # meta is a FullBox
    parsed = _Parser(data, children)
    layout = parsed.layout(top, meta)
    _check_images(layout, fp, check_size)
    if movies:  # an animated AVIF: its frames are a track (shared.sanitize.sequence)
        layout.movie, layout.tracks = sequence.read(fp, movies[0].start, movies[0].end)
        if check_size is not None:
            check_size(0, layout.tracks.width, layout.tracks.height)
        layout.frames = layout.tracks.frames
    return layout


def _ftyp_brands(fp: BinaryIO, ftyp: Box) -> frozenset[bytes]:
    fp.seek(ftyp.start)
    return brands(fp.read(min(ftyp.end - ftyp.start, 1024)))


class _Parser:
    def __init__(self, data: bytes, children: list[Box]):
        self.data = data
        self.children = children
        self.by_type: dict[bytes, Box] = {}
        for box in children:
            if box.type in self.by_type and box.type in (b"iinf", b"iloc", b"pitm", b"iprp",
                                                        b"iref", b"hdlr", b"idat"):
                raise damaged(f"two {_name(box.type)} boxes in HEIF meta")
            self.by_type.setdefault(box.type, box)

    def need(self, kind: bytes) -> Box:
        if kind not in self.by_type:
            raise damaged(f"HEIF meta without {_name(kind)}")
        return self.by_type[kind]

    def layout(self, top: list[Box], meta: Box) -> Layout:
        d = self.data
        hdlr = self.need(b"hdlr")
        if d[hdlr.body + 8:hdlr.body + 12] != b"pict":
            raise damaged("HEIF meta is not a picture")
        pitm = self.need(b"pitm")
        version = d[pitm.body]
        primary = _uint(d, pitm.body + 4, 2 if version == 0 else 4, pitm.end)
        items, iinf_version = self.items()
        iloc_header, iloc_version = self.locations(items)
        properties, associations, ipma_head = self.properties()
        references, iref_version = self.references(items)
        if primary not in items:
            raise damaged("HEIF primary item missing")
        return Layout(top, meta, self.children, d, primary, items, references, iref_version,
                      iloc_header, iloc_version, iinf_version, ipma_head, associations,
                      properties, "", 0, 0)

    def items(self) -> tuple[dict[int, Item], int]:
        d = self.data
        iinf = self.need(b"iinf")
        version = d[iinf.body]
        pos = iinf.body + 4 + (2 if version == 0 else 4)
        items: dict[int, Item] = {}
        for box in read_boxes(d, pos, iinf.end, 3, MAX_ITEMS, "HEIF items"):
            if box.type != b"infe":
                continue
            v = d[box.body]
            if v < 2:
                raise damaged("HEIF item info of an old version")
            p = box.body + 4
            width = 2 if v == 2 else 4
            item_id = _uint(d, p, width, box.end)
            p += width + 2
            kind = d[p:p + 4]
            if len(kind) < 4:
                raise damaged("HEIF item info cut short")
            p += 4
            name_end = d.find(b"\0", p, box.end)
            content_type = b""
            if kind == b"mime" and name_end >= 0:
                ct_end = d.find(b"\0", name_end + 1, box.end)
                content_type = d[name_end + 1:ct_end if ct_end >= 0 else box.end]
            if item_id in items:
                raise damaged("two HEIF items with one id")
            items[item_id] = Item(item_id, kind, d[box.start:box.end], content_type)
        return items, version

    def locations(self, items: dict[int, Item]) -> tuple[bytes, int]:
        d = self.data
        iloc = self.need(b"iloc")
        version = d[iloc.body]
        if version > 2:
            raise damaged("HEIF item locations of an unknown version")
        p = iloc.body + 4
        sizes = _uint(d, p, 2, iloc.end)
        offset_size, length_size = sizes >> 12, (sizes >> 8) & 15
        base_size, index_size = (sizes >> 4) & 15, sizes & 15 if version else 0
        if any(s not in (0, 4, 8) for s in (offset_size, length_size, base_size, index_size)):
            raise damaged("HEIF item locations with impossible field sizes")
        p += 2
        count_width = 4 if version == 2 else 2
        header = d[iloc.body:p]
        count = _uint(d, p, count_width, iloc.end)
        if count > MAX_ITEMS:
            raise too_many("HEIF items", MAX_ITEMS)
        p += count_width
        extents_seen = 0
        for _ in range(count):
            entry_start = p
            item_id = _uint(d, p, count_width, iloc.end)
            p += count_width
            construction = 0
            if version:
                construction = _uint(d, p, 2, iloc.end) & 15
                p += 2
            reference = _uint(d, p, 2, iloc.end)
            base = _uint(d, p + 2, base_size, iloc.end)
            p += 2 + base_size
            extent_count = _uint(d, p, 2, iloc.end)
            p += 2
            extents_seen += extent_count
            if extents_seen > MAX_EXTENTS:
                raise too_many("HEIF item extents", MAX_EXTENTS)
            extents = []
            for _ in range(extent_count):
                p += index_size
                offset = _uint(d, p, offset_size, iloc.end)
                length = _uint(d, p + offset_size, length_size, iloc.end)
                p += offset_size + length_size
                extents.append((base + offset, length))
            if construction > 1 or reference != 0:
                raise UnsupportedImage("This HEIF file keeps its data in a way Kitteh does not "
                                       "read (item offsets or an external file).")
            item = items.get(item_id)
            if item is None or item.iloc_entry:
                raise damaged("HEIF location of an unknown or repeated item")
            item.construction, item.extents, item.iloc_entry = (construction, extents,
                                                                 d[entry_start:p])
        return header, version

    def properties(self) -> tuple[list[tuple[bytes, bytes]], dict[int, list[int]], bytes]:
        d = self.data
        iprp = self.need(b"iprp")
        inner = {b.type: b for b in read_boxes(d, iprp.body, iprp.end, 3, 10)}
        if b"ipco" not in inner or b"ipma" not in inner:
            raise damaged("HEIF properties incomplete")
        ipco = inner[b"ipco"]
        properties = [(b.type, d[b.body:b.end])
                      for b in read_boxes(d, ipco.body, ipco.end, 4, MAX_PROPERTIES,
                                         "HEIF properties")]
        ipma = inner[b"ipma"]
        version, flags = d[ipma.body], d[ipma.body + 3]
        p = ipma.body + 4
        count = _uint(d, p, 4, ipma.end)
        if count > MAX_ITEMS:
            raise too_many("HEIF items", MAX_ITEMS)
        p += 4
        associations: dict[int, list[int]] = {}
        total = 0
        id_width, entry_width = (2 if version < 1 else 4), (2 if flags & 1 else 1)
        for _ in range(count):
            item_id = _uint(d, p, id_width, ipma.end)
            n = _uint(d, p + id_width, 1, ipma.end)
            p += id_width + 1
            total += n
            if total > MAX_ASSOCIATIONS:
                raise too_many("HEIF property associations", MAX_ASSOCIATIONS)
            entries = [_uint(d, p + i * entry_width, entry_width, ipma.end) for i in range(n)]
            p += n * entry_width
            mask = 0x7FFF if entry_width == 2 else 0x7F
            if any((e & mask) > len(properties) for e in entries):
                raise damaged("HEIF property association to a missing property")
            associations[item_id] = entries
        return properties, associations, d[ipma.body:ipma.body + 4]

    def references(self, items: dict[int, Item]) -> tuple[list[tuple[bytes, int, list[int]]], int]:
        d = self.data
        iref = self.by_type.get(b"iref")
        if iref is None:
            return [], 0
        version = d[iref.body]
        width = 2 if version == 0 else 4
        found = []
        total = 0
        for box in read_boxes(d, iref.body + 4, iref.end, 3, MAX_REFERENCES,
                              "HEIF item references"):
            source = _uint(d, box.body, width, box.end)
            count = _uint(d, box.body + width, 2, box.end)
            total += count
            if total > MAX_REFERENCES:
                raise too_many("HEIF item references", MAX_REFERENCES)
            targets = [_uint(d, box.body + width + 2 + i * width, width, box.end)
                       for i in range(count)]
            if source not in items or any(t not in items for t in targets):
                raise damaged("HEIF reference to a missing item")
            found.append((box.type, source, targets))
        return found, version


def _check_images(layout: Layout, fp: BinaryIO, check_size: FrameCheck | None) -> None:
    """Every image item's size within the limits (from ``ispe``); the primary's coding and
    displayed size; a grid's tile count."""
    primary = layout.items[layout.primary]
    for item in layout.items.values():
        if item.type in METADATA_ITEMS:
            continue
        size = _property(layout, item.id, b"ispe")
        if size is None:
            if item.id == layout.primary or item.type in CODINGS:
                raise damaged("HEIF image without its size (ispe)")
            continue
        width, height = struct.unpack(">II", size[4:12]) if len(size) >= 12 else (0, 0)
        if check_size is not None:
            check_size(0, width, height)
        if item.id == layout.primary:
            layout.width, layout.height = _displayed(layout, item.id, width, height)
    coding = primary.type
    if primary.type == b"grid":
        tiles = next((to for kind, source, to in layout.references
                      if kind == b"dimg" and source == primary.id), [])
        rows, columns, out_w, out_h = _grid(layout, primary, fp)
        if rows * columns > MAX_TILES:
            raise too_many("tiles in a HEIF grid", MAX_TILES)
        if len(tiles) != rows * columns:
            raise damaged("HEIF grid without its tiles")
        if check_size is not None:
            check_size(0, out_w, out_h)
        kinds = {layout.items[t].type for t in tiles}
        if len(kinds) != 1:
            raise damaged("HEIF grid of mixed tiles")
        coding = kinds.pop()
    if coding not in CODINGS:
        raise UnsupportedImage(f"This HEIF image is coded as {_name(coding)}; Kitteh reads "
                               "HEVC (HEIC) and AV1 (AVIF).")
    if layout.width < 1 or layout.height < 1:
        raise damaged("HEIF image of no size")
    layout.coding = CODINGS[coding]


def _displayed(layout: Layout, item_id: int, width: int, height: int) -> tuple[int, int]:
    """The size a decoder shows: the transformative properties in their association order.
    ``clap`` crops (HEVC codes even sizes, so an odd-sized photo, as iPhones write some, is
    coded one pixel larger and cropped back); ``irot`` by a quarter turn swaps the sides;
    ``imir`` changes neither."""
    mask = 0x7FFF if layout.ipma_version_flags[3] & 1 else 0x7F
    for entry in layout.associations.get(item_id, ()):
        index = entry & mask
        if not index:
            continue
        kind, payload = layout.properties[index - 1]
        if kind == b"clap":
            width, height = _clean_aperture(payload, width, height)
        elif kind == b"irot" and payload[:1] and payload[0] & 1:
            width, height = height, width
    return width, height


def _clean_aperture(payload: bytes, width: int, height: int) -> tuple[int, int]:
    """A ``clap`` crop's size, rounded as libheif rounds it (its edges to the nearest pixel
    around the offset centre, clamped to the image)."""
    if len(payload) < 32:
        raise damaged("HEIF clean aperture cut short")
    w_n, w_d, h_n, h_d = struct.unpack(">IIII", payload[:16])
    x_n, x_d, y_n, y_d = struct.unpack(">iIiI", payload[16:32])
    if 0 in (w_d, h_d, x_d, y_d):
        raise damaged("HEIF clean aperture divides by zero")
    return (_aperture_side(Fraction(w_n, w_d), Fraction(x_n, x_d), width),
            _aperture_side(Fraction(h_n, h_d), Fraction(y_n, y_d), height))


def _aperture_side(side: Fraction, offset: Fraction, full: int) -> int:
    centre = offset + Fraction(full - 1, 2)
    first = max(0, math.floor(centre - (side - 1) / 2 + Fraction(1, 2)))
    last = min(full - 1, math.floor(centre + (side - 1) / 2 + Fraction(1, 2)))
    if last < first:
        raise damaged("HEIF clean aperture outside the image")
    return last - first + 1


def _grid(layout: Layout, item: Item, fp: BinaryIO) -> tuple[int, int, int, int]:
    data = item_bytes(layout, item, fp, 32)
    if len(data) < 8:
        raise damaged("HEIF grid description cut short")
    wide = data[1] & 1
    rows, columns = data[2] + 1, data[3] + 1
    width, height = struct.unpack(">II" if wide else ">HH", data[4:12 if wide else 8])
    return rows, columns, width, height


def item_bytes(layout: Layout, item: Item, fp: BinaryIO, limit: int) -> bytes:
    """Up to ``limit`` bytes of an item's data (descriptions, never pixels)."""
    out = b""
    for offset, length in item.extents:
        want = min(limit - len(out), length or limit)
        if item.construction == 1:
            idat = next((b for b in layout.meta_children if b.type == b"idat"), None)
            if idat is None:
                raise damaged("HEIF item in a missing idat")
            start = idat.body + offset
            if start + want > idat.end:
                raise damaged("HEIF item runs past its idat")
            out += layout.data[start:start + want]
        else:
            fp.seek(offset)
            out += fp.read(want)
        if len(out) >= limit:
            break
    return out


def _property(layout: Layout, item_id: int, kind: bytes) -> bytes | None:
    mask = 0x7FFF if layout.ipma_version_flags[3] & 1 else 0x7F
    for entry in layout.associations.get(item_id, ()):
        index = entry & mask
        if index and layout.properties[index - 1][0] == kind:
            return layout.properties[index - 1][1]
    return None


def _uint(data: bytes, pos: int, width: int, end: int) -> int:
    if width == 0:
        return 0
    if pos + width > end:
        raise damaged("HEIF box cut short")
    return int.from_bytes(data[pos:pos + width], "big")


def _name(kind: bytes) -> str:
    return kind.decode("latin-1") if kind.isascii() and kind.isalnum() else repr(kind)
