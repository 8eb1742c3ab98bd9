"""HEIC and AVIF test files, made at test time from the repository's own photos.

AVIF comes from Pillow (libavif). HEIC comes from Debian's ``heif-enc`` (package
libheif-examples, libheif with x265; installed with apt-get when missing): Kitteh itself only
decodes HEIC, and its own decoder cannot write one. Both carry the EXIF (camera, GPS, serial
number) and XMP that ``tests.test_privacy`` plants, so a test can look for them in what is
served.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

from PIL import Image

from deploy.system import require
from tests.test_privacy import XMP, gps_exif


def avif_bytes(img: Image.Image, orientation: int = 1, **save) -> bytes:
    out = io.BytesIO()
    img.save(out, "AVIF", quality=70, exif=gps_exif(orientation), xmp=XMP, **save)
    return out.getvalue()


def heic_bytes(img: Image.Image, quality: int = 60) -> bytes:
    """A HEIC written by libheif's own encoder from a JPEG carrying EXIF (GPS) and XMP."""
    heif_enc = require("heif-enc")["heif-enc"]
    with tempfile.TemporaryDirectory(prefix="kitteh-heic-") as tmp:
        source, target = Path(tmp) / "in.jpg", Path(tmp) / "out.heic"
        img.convert("RGB").save(source, quality=95, exif=gps_exif(1), xmp=XMP)
        subprocess.run([str(heif_enc), "-q", str(quality), str(source), "-o", str(target)],
                       check=True, capture_output=True, timeout=300)
        return target.read_bytes()


def with_rotation(clean_heic: bytes, quarter_turns: int) -> bytes:
    """A HEIC whose primary item gains an ``irot`` (counter-clockwise quarter turns)."""
    import struct

    return with_properties(clean_heic, [struct.pack(">I4sB", 9, b"irot", quarter_turns & 3)])


def with_properties(clean_heic: bytes, properties: list[bytes]) -> bytes:
    """A HEIC whose primary item gains ``properties`` (whole boxes: ``irot``, ``imir``,
    ``clap``...), associated in that order, each marked essential.

    Made from a file Kitteh already rewrote: removing its EXIF and XMP left a ``free`` box
    right after ``meta``, so meta can grow by what this needs (the properties, and their
    associations) while every offset after it stays right."""
    import struct

    from shared.sanitize.isobmff import read_boxes, walk

    with io.BytesIO(clean_heic) as fp:
        layout = walk(fp, None)
    meta = layout.meta
    assert layout.top[layout.top.index(meta) + 1].type == b"free", "rewrite a file first"
    data = bytearray(clean_heic)
    iprp = next(b for b in layout.meta_children if b.type == b"iprp")
    inner = {b.type: b for b in read_boxes(layout.data, iprp.body, iprp.end, 3, 10)}
    ipco, ipma = inner[b"ipco"], inner[b"ipma"]
    assert ipma.start > ipco.start and not layout.ipma_version_flags[3] & 1
    at = meta.start  # layout offsets are relative to meta's bytes
    added = b"".join(properties)
    grow = len(added) + len(properties)

    # the associations (ipma comes after ipco, so it is edited first)
    entry_width = 2 if layout.ipma_version_flags[0] < 1 else 4
    pos = at + ipma.body + 8
    while int.from_bytes(data[pos:pos + entry_width], "big") != layout.primary:
        pos += entry_width + 1 + data[pos + entry_width]
    count_at = pos + entry_width
    end_of_entry = count_at + 1 + data[count_at]
    data[count_at] += len(properties)
    data[end_of_entry:end_of_entry] = bytes(
        0x80 | (len(layout.properties) + 1 + i) for i in range(len(properties)))
    # the properties, at the end of ipco
    data[at + ipco.end:at + ipco.end] = added
    for box, size_grow in ((ipma, len(properties)), (ipco, len(added)), (iprp, grow),
                           (meta, grow)):
        start = at + box.start if box is not meta else meta.start
        if box is ipma:
            start += len(added)  # moved by the properties inserted before it
        size = struct.unpack(">I", data[start:start + 4])[0]
        data[start:start + 4] = struct.pack(">I", size + size_grow)
    free = meta.end + grow
    size = struct.unpack(">I", data[free:free + 4])[0]
    assert size - grow >= 8
    del data[free + 8:free + 8 + grow]
    data[free:free + 4] = struct.pack(">I", size - grow)
    return bytes(data)


def grid_heic(img: Image.Image, columns: int = 2, tile: int = 512) -> bytes:
    """A HEIC laid out as a phone writes one: a ``grid`` item (its description in ``idat``)
    over HEVC tiles encoded one by one by heif-enc, plus an EXIF item (with GPS) describing
    it. ``img`` is cut into ``columns`` × 1 tiles of ``tile`` pixels."""
    import struct

    from shared.sanitize.isobmff import walk
    from tests.hostile.heif import box, full_box, infe
    from tests.test_privacy import gps_exif

    tiles = []  # (hvcC payload, coded bytes)
    for column in range(columns):
        part = img.crop((column * tile, 0, (column + 1) * tile, tile))
        data = heic_bytes(part)
        with io.BytesIO(data) as fp:
            layout = walk(fp, None)
        item = layout.items[layout.primary]
        hvcc = next(p for t, p in layout.properties if t == b"hvcC")
        (offset, length), = item.extents
        tiles.append((hvcc, data[offset:offset + length]))
    exif = b"\0\0\0\6Exif\0\0" + gps_exif(1).tobytes()[6:]  # HEIF: offset to TIFF, then it
    ids = list(range(2, columns + 2))
    exif_id = columns + 2
    grid = struct.pack(">BBBBHH", 0, 0, 0, columns - 1, columns * tile, tile)
    properties = [box(b"hvcC", hvcc) for hvcc, _ in tiles] + [
        full_box(b"ispe", struct.pack(">II", tile, tile)),
        full_box(b"ispe", struct.pack(">II", columns * tile, tile))]
    tile_ispe, grid_ispe = columns + 1, columns + 2  # 1-based property indexes
    ipma = struct.pack(">I", columns + 1) + struct.pack(">HBB", 1, 1, grid_ispe)
    for index, item_id in enumerate(ids):
        ipma += struct.pack(">HBBB", item_id, 2, 0x80 | (index + 1), tile_ispe)
    iprp = box(b"iprp", box(b"ipco", b"".join(properties)) + full_box(b"ipma", ipma))
    iinf = full_box(b"iinf", struct.pack(">H", columns + 2) + infe(1, b"grid")
                    + b"".join(infe(i, b"hvc1") for i in ids) + infe(exif_id, b"Exif"))
    iref = full_box(b"iref", box(b"dimg", struct.pack(">HH", 1, columns)
                                 + b"".join(struct.pack(">H", i) for i in ids))
                    + box(b"cdsc", struct.pack(">HHH", exif_id, 1, 1)))
    hdlr = full_box(b"hdlr", b"\0" * 4 + b"pict" + b"\0" * 12 + b"\0")
    ftyp = box(b"ftyp", b"heic\0\0\0\0mif1heic")

    def iloc(mdat_body: int) -> bytes:
        entries = struct.pack(">HHHHII", 1, 1, 0, 1, 0, len(grid))  # in idat
        position = mdat_body
        for item_id, (_, coded) in zip(ids, tiles, strict=True):
            entries += struct.pack(">HHHHII", item_id, 0, 0, 1, position, len(coded))
            position += len(coded)
        entries += struct.pack(">HHHHII", exif_id, 0, 0, 1, position, len(exif))
        return full_box(b"iloc", bytes((0x44, 0)) + struct.pack(">H", columns + 2) + entries,
                        version=1)

    def meta(mdat_body: int) -> bytes:
        return full_box(b"meta", hdlr + full_box(b"pitm", struct.pack(">H", 1))
                        + iloc(mdat_body) + iinf + iref + iprp + box(b"idat", grid))

    body = len(ftyp) + len(meta(0)) + 8
    return ftyp + meta(body) + box(b"mdat", b"".join(c for _, c in tiles) + exif)
