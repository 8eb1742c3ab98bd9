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
