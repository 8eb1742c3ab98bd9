"""Makes tests/data/photos/u01_seeding_ultrahdr.jpg: an Ultra HDR JPEG from a CC0 photo.

    python -m tests.make_ultrahdr tests/data/photos/j03_seeding.jpg 1600 OUT.jpg

The base picture is the photo downscaled; the gain map (a quarter of its size, as a Pixel
writes it) brightens its highlights up to 4× on an HDR screen: 0 below grey level 140, rising
to 1 at white. libvips' ``uhdrsave`` (libultrahdr) writes the JPEG, its MPF index and its
ISO 21496-1 gain map metadata, as a phone would. ``bench.hdr`` makes a 12 MP one the same way.
"""

from __future__ import annotations

import sys

import pyvips

KEEP = pyvips.enums.ForeignKeep.ICC | pyvips.enums.ForeignKeep.GAINMAP


def ultrahdr(source: str, width: int | None, max_boost: float = 4.0) -> bytes:
    base = pyvips.Image.new_from_file(source)
    if width:
        base = base.thumbnail_image(width)
    grey = base.colourspace("b-w").extract_band(0)
    gain = ((grey - 140).maxpair(0) * (255 / 115)).cast("uchar").resize(0.25, kernel="linear")
    img = base.copy()
    img.set_type(pyvips.GValue.image_type, "gainmap", gain.copy(interpretation="b-w"))
    for name, value in (("max-content-boost", max_boost), ("min-content-boost", 1.0),
                        ("gamma", 1.0), ("offset-sdr", 1 / 64), ("offset-hdr", 1 / 64)):
        img.set_type(pyvips.GValue.array_double_type, f"gainmap-{name}", [value] * 3)
    img.set_type(pyvips.GValue.gdouble_type, "gainmap-hdr-capacity-min", 1.0)
    img.set_type(pyvips.GValue.gdouble_type, "gainmap-hdr-capacity-max", max_boost)
    img.set_type(pyvips.GValue.gint_type, "gainmap-use-base-cg", 1)
    img.set_type(pyvips.GValue.gint_type, "gainmap-scale-factor", 4)
    return img.uhdrsave_buffer(Q=90, keep=KEEP)


if __name__ == "__main__":
    source, width, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(target, "wb") as out:
        out.write(ultrahdr(source, width or None))
