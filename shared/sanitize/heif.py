"""HEIC and AVIF: the metadata items rewritten out of the container, every offset unchanged.

EXIF and XMP are items of their own in a HEIF file (types ``Exif`` and ``mime``), listed in
``iinf``, located by ``iloc``, linked to the picture by ``iref`` (``cdsc``). The rewrite
removes their entries, and those of every item that is not a picture (an unknown item type
can carry anything), from those boxes (and their property associations) and writes the rest
of ``meta`` as it was; the bytes saved become a ``free`` box right after it, so every box
after ``meta`` stays where it was and no offset in ``iloc`` needs to change. In ``mdat`` and
``idat`` only bytes that a kept item points at are copied: everything else (the EXIF and XMP
data, and anything hidden between items) becomes zeros. Other top-level boxes (``free``,
``skip``, ``uuid``, unknown ones) become ``free`` boxes of zeros of the same size, and bytes
after the last box are dropped. The coded picture, its tiles, thumbnail, gain map and every
property (orientation ``irot``/``imir``, colour ``colr``) are copied byte for byte: nothing
is re-encoded, and the file keeps its size but for what followed its last box.
"""

from __future__ import annotations

import struct

from shared.sanitize import applegain, sequence
from shared.sanitize.errors import damaged
from shared.sanitize.isobmff import PICTURE_ITEMS, Layout, read_boxes, walk
from shared.sanitize.reader import CHUNK, FrameCheck, Reader, Sink, write


def rewrite(src: Reader, out: Sink, _: int, check_size: FrameCheck | None) -> None:
    fp = src.file
    layout = walk(fp, check_size)
    if out is None:
        return
    dropped = {i for i, item in layout.items.items() if item.type not in PICTURE_ITEMS}
    # An iPhone gain map's XMP item stays, holding only its version and headroom.
    patches: dict[int, bytes] = {}  # file offset (construction 0) or idat offset -> bytes
    idat_patches: dict[int, bytes] = {}
    kept_xmp = applegain.replacement(layout, fp)
    if kept_xmp is not None:
        xmp_id, content = kept_xmp
        dropped.discard(xmp_id)
        item = layout.items[xmp_id]
        (patches if item.construction == 0 else idat_patches)[item.extents[0][0]] = content
    kept_file = _ranges(layout, dropped, construction=0)
    if layout.tracks is not None:  # an animated AVIF's frames
        kept_file = sorted(kept_file + layout.tracks.samples)
    # Metadata wins: a kept item or frame whose extent reaches into the EXIF or XMP (a
    # crafted offset; the fuzz test found it) does not take those bytes along.
    metadata = [r for i in dropped for r in _extents(layout.items[i])
                if layout.items[i].construction == 0]
    kept_file = _without(kept_file, sorted(metadata))
    for box in layout.top:
        if box.type == b"meta":
            meta = _meta_without(layout, dropped, idat_patches)
            spare = (box.end - box.start) - len(meta)
            if spare and spare < 8:
                raise damaged("HEIF metadata that cannot be rewritten in place")
            write(out, meta)
            if spare:
                _free(out, spare)
        elif box.type == b"ftyp":
            fp.seek(box.start)
            write(out, fp.read(box.end - box.start))
        elif box.type == b"moov" and layout.tracks is not None:
            write(out, sequence.cleaned(layout.movie, layout.tracks))
        elif box.type == b"mdat":
            fp.seek(box.start)
            write(out, fp.read(box.body - box.start))
            _copy_kept(fp, out, box.body, box.end, kept_file, patches)
        else:
            _free(out, box.end - box.start)


def _meta_without(layout: Layout, dropped: set[int], patches: dict[int, bytes]) -> bytes:
    d = layout.data
    kept_idat = _ranges(layout, dropped, construction=1)
    parts = [d[layout.meta.body - layout.meta.start:layout.meta.body - layout.meta.start + 4]]
    for box in layout.meta_children:
        raw = d[box.start:box.end]
        if box.type == b"iinf":
            items = [i for i in layout.items.values() if i.id not in dropped]
            width = 2 if layout.iinf_version == 0 else 4
            parts.append(_box(b"iinf", d[box.body:box.body + 4]
                              + len(items).to_bytes(width, "big")
                              + b"".join(i.infe for i in items)))
        elif box.type == b"iloc":
            located = [i for i in layout.items.values() if i.id not in dropped and i.iloc_entry]
            width = 4 if layout.iloc_version == 2 else 2
            parts.append(_box(b"iloc", layout.iloc_header + len(located).to_bytes(width, "big")
                              + b"".join(i.iloc_entry for i in located)))
        elif box.type == b"iref":
            parts.append(_iref(layout, dropped, d[box.body:box.body + 4]))
        elif box.type == b"iprp":
            parts.append(_iprp(layout, dropped, box))
        elif box.type == b"idat":
            body = bytearray(len(raw) - (box.body - box.start))
            for start, end in kept_idat:
                body[start:end] = d[box.body + start:box.body + end]
            for start, content in patches.items():
                body[start:start + len(content)] = content
            parts.append(raw[:box.body - box.start] + bytes(body))
        else:
            parts.append(raw)
    return _box(b"meta", b"".join(parts))


def _iref(layout: Layout, dropped: set[int], head: bytes) -> bytes:
    width = 2 if layout.iref_version == 0 else 4
    boxes = []
    for kind, source, targets in layout.references:
        kept = [t for t in targets if t not in dropped]
        if source in dropped or not kept:
            continue
        boxes.append(_box(kind, source.to_bytes(width, "big") + len(kept).to_bytes(2, "big")
                          + b"".join(t.to_bytes(width, "big") for t in kept)))
    return _box(b"iref", head + b"".join(boxes))


def _iprp(layout: Layout, dropped: set[int], iprp) -> bytes:
    d = layout.data
    head = layout.ipma_version_flags
    id_width = 2 if head[0] < 1 else 4
    entry_width = 2 if head[3] & 1 else 1
    entries = [(item, assoc) for item, assoc in layout.associations.items()
               if item not in dropped]
    ipma = head + struct.pack(">I", len(entries)) + b"".join(
        item.to_bytes(id_width, "big") + bytes((len(assoc),))
        + b"".join(a.to_bytes(entry_width, "big") for a in assoc) for item, assoc in entries)
    inner = [d[b.start:b.end] if b.type != b"ipma" else _box(b"ipma", ipma)
             for b in read_boxes(d, iprp.body, iprp.end, 3, 10)]
    return _box(b"iprp", b"".join(inner))


def _ranges(layout: Layout, dropped: set[int], construction: int) -> list[tuple[int, int]]:
    """(start, end) of the bytes kept items point at: file offsets, or offsets in idat.
    An extent of length 0 runs to the end of what holds it."""
    found = []
    for item in layout.items.values():
        if item.id in dropped or item.construction != construction:
            continue
        for offset, length in item.extents:
            found.append((offset, offset + length if length else 1 << 62))
    return sorted(found)


def _extents(item) -> list[tuple[int, int]]:
    return [(offset, offset + length if length else 1 << 62) for offset, length in item.extents]


def _without(kept: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sorted ranges ``kept`` with every range in ``holes`` cut out of them."""
    if not holes:
        return kept
    out = []
    for lo, hi in kept:
        for hole_lo, hole_hi in holes:
            if hole_hi <= lo or hole_lo >= hi:
                continue
            if hole_lo > lo:
                out.append((lo, hole_lo))
            lo = max(lo, hole_hi)
            if lo >= hi:
                break
        if lo < hi:
            out.append((lo, hi))
    return out


def _copy_kept(fp, out: Sink, start: int, end: int, kept: list[tuple[int, int]],
               patches: dict[int, bytes]) -> None:
    """Bytes start..end of the file, zeros outside the kept ranges, a chunk at a time."""
    pos = start
    for lo, hi in kept:
        lo, hi = max(lo, pos), min(hi, end)
        if lo >= hi:
            continue
        _zeros(out, lo - pos)
        fp.seek(lo)
        remaining = hi - lo
        while remaining:
            at = fp.tell()
            piece = fp.read(min(CHUNK, remaining))
            if not piece:
                raise damaged("HEIF data ends early")
            write(out, _overlay(piece, at, patches))
            remaining -= len(piece)
        pos = hi
    _zeros(out, end - pos)


def _overlay(piece: bytes, at: int, patches: dict[int, bytes]) -> bytes:
    """``piece`` (file bytes from ``at``) with the parts of ``patches`` that fall in it."""
    for start, content in patches.items():
        lo, hi = max(start, at), min(start + len(content), at + len(piece))
        if lo < hi:
            piece = piece[:lo - at] + content[lo - start:hi - start] + piece[hi - at:]
    return piece


def _zeros(out: Sink, count: int) -> None:
    while count > 0:
        step = min(CHUNK, count)
        write(out, bytes(step))
        count -= step


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload) + 8, kind) + payload


def _free(out: Sink, size: int) -> None:
    """A ``free`` box of ``size`` bytes in all, zeros inside."""
    if size >= 1 << 32:
        write(out, struct.pack(">I4sQ", 1, b"free", size))
        _zeros(out, size - 16)
    else:
        write(out, struct.pack(">I4s", size, b"free"))
        _zeros(out, size - 8)
