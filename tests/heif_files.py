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
    """A HEIC whose primary item gains an ``irot`` (counter-clockwise quarter turns).

    Made from a file Kitteh already rewrote: removing its EXIF and XMP left a ``free`` box
    right after ``meta``, so meta can grow by the 10 bytes this needs (the property, and
    its association) while every offset after it stays right."""
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

    # the association (ipma comes after ipco, so it is edited first)
    entry_width = 2 if layout.ipma_version_flags[0] < 1 else 4
    pos = at + ipma.body + 8
    while int.from_bytes(data[pos:pos + entry_width], "big") != layout.primary:
        pos += entry_width + 1 + data[pos + entry_width]
    count_at = pos + entry_width
    data[count_at] += 1
    data.insert(count_at + 1 + data[count_at] - 1, 0x80 | (len(layout.properties) + 1))
    # the property, at the end of ipco
    irot = struct.pack(">I4sB", 9, b"irot", quarter_turns & 3)
    data[at + ipco.end:at + ipco.end] = irot
    for box, grow in ((ipma, 1), (ipco, 9), (iprp, 10), (meta, 10)):
        start = at + box.start if box is not meta else meta.start
        if box is ipma:
            start += 9  # moved by the property inserted before it
        size = struct.unpack(">I", data[start:start + 4])[0]
        data[start:start + 4] = struct.pack(">I", size + grow)
    free = meta.end + 10
    size = struct.unpack(">I", data[free:free + 4])[0]
    assert size - 10 >= 8
    del data[free + 8:free + 18]
    data[free:free + 4] = struct.pack(">I", size - 10)
    return bytes(data)
