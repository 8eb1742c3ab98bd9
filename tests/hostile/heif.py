"""Hand-built HEIF files (the container of HEIC and AVIF), honest or hostile, box by box.

No decoder ever sees the hostile ones: Kitteh's own walk of the boxes refuses them. So they
need no real coded picture, only the structure: ``ftyp``, a ``meta`` with its item boxes, and
an ``mdat``.
"""

from __future__ import annotations

import struct


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", len(payload) + 8, kind) + payload


def full_box(kind: bytes, payload: bytes, version: int = 0, flags: int = 0) -> bytes:
    return box(kind, bytes((version,)) + flags.to_bytes(3, "big") + payload)


def infe(item_id: int, kind: bytes) -> bytes:
    return full_box(b"infe", struct.pack(">HH4s", item_id, 0, kind) + b"\0", version=2)


def heif(brand: bytes = b"heic", *, size=(64, 48), items: int = 1, item_type: bytes = b"hvc1",
         grid: tuple[int, int, int, int] | None = None, meta_tail: bytes = b"",
         mdat: bytes = b"\0" * 64) -> bytes:
    """A HEIF file whose primary item (1) is ``item_type`` of ``size`` (its ispe), with
    ``items`` items in all; ``grid`` (rows, columns, width, height) makes item 1 a grid of
    the others. ``meta_tail`` is appended inside meta (hostile boxes)."""
    kinds = [b"grid" if grid else item_type] + [item_type] * (items - 1)
    ftyp = box(b"ftyp", brand + b"\0\0\0\0" + b"mif1" + brand)
    hdlr = full_box(b"hdlr", b"\0" * 4 + b"pict" + b"\0" * 12 + b"\0")
    pitm = full_box(b"pitm", struct.pack(">H", 1))
    iinf = full_box(b"iinf", struct.pack(">H", items)
                    + b"".join(infe(i + 1, k) for i, k in enumerate(kinds)))
    grid_data = b""
    if grid:
        rows, columns, width, height = grid
        grid_data = struct.pack(">BBBBII", 0, 1, rows - 1, columns - 1, width, height)
    ispe = full_box(b"ispe", struct.pack(">II", *size))
    ipco = box(b"ipco", ispe)
    ipma = full_box(b"ipma", struct.pack(">I", items) + b"".join(
        struct.pack(">HBB", i + 1, 1, 0x81) for i in range(items)))
    iprp = box(b"iprp", ipco + ipma)
    iref = b""
    if grid:
        tiles = list(range(2, items + 1))
        iref = full_box(b"iref", box(b"dimg", struct.pack(">HH", 1, len(tiles))
                                     + b"".join(struct.pack(">H", t) for t in tiles)))

    def iloc(mdat_start: int) -> bytes:
        entries = []
        for i in range(items):
            offset, length = (mdat_start, len(grid_data)) if grid and i == 0 else (
                mdat_start + len(grid_data), 16)
            entries.append(struct.pack(">HHHII", i + 1, 0, 1, offset, length))
        return full_box(b"iloc", bytes((0x44, 0)) + struct.pack(">H", items)
                        + b"".join(entries))

    def meta(mdat_start: int) -> bytes:
        return full_box(b"meta", hdlr + pitm + iloc(mdat_start) + iinf + iref + iprp
                        + meta_tail)

    head_len = len(ftyp) + len(meta(0)) + 8  # offsets do not change the meta's length
    return ftyp + meta(head_len) + box(b"mdat", grid_data + mdat)


def truncated() -> bytes:
    data = heif()
    return data[:60]  # inside meta: the box claims more than the file has


def unbounded_box_inside_meta() -> bytes:
    """A size-0 box ("to the end") inside meta: a walker that believes it never ends."""
    return heif(meta_tail=struct.pack(">I4s", 0, b"free"))


def box_of_impossible_size() -> bytes:
    """A box claiming 4 bytes, shorter than its own header: a walker that trusts it loops."""
    return heif(meta_tail=struct.pack(">I4s", 4, b"loop"))


def deep_boxes(depth: int = 40) -> bytes:
    nested = b""
    for _ in range(depth):
        nested = box(b"dinf", nested)
    return heif(meta_tail=box(b"iref", b"\0" * 4 + nested))


def image_sequence() -> bytes:
    """An animated HEIF (a ``moov`` track beside the still): not accepted, and said so."""
    return heif() + box(b"moov", box(b"mvhd", b"\0" * 100))
