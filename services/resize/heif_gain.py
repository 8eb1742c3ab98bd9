"""An iPhone HEIC's gain map as an Ultra HDR one, for its JPEG variants (issue 19).

Apple's gain map (``shared.sanitize.applegain``) and Ultra HDR's say the same thing in two
encodings. Apple ("Applying Apple HDR effect to your photos"): a pixel's HDR value is its SDR
value × (1 + (headroom − 1) × g), g being the gain map's sample with the Rec. 709 transfer
function undone (the map is linear data stored with that curve). Ultra HDR (``hdrgm``, gamma 1, no
offsets, minimum boost 1, maximum boost = headroom): log2(boost) = u × log2(headroom), u the
sample / 255. So each 8-bit Apple sample maps to one Ultra HDR sample: a 256-entry table, no
decode of anything but the gain map. The picture and the converted gain map are handed to
libvips (``services.resize.hdr``), which resizes them together and writes the Ultra HDR JPEG.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pi_heif
import pyvips
from PIL import Image

from shared.sanitize import applegain

if TYPE_CHECKING:
    from services.resize.engine import Source

URN = applegain.GAIN_MAP_URN.decode()


headroom = applegain.kept_headroom


def ultrahdr_table(headroom: float) -> list[int]:
    """Apple gain map sample -> Ultra HDR gain map sample."""
    out = []
    for sample in range(256):
        value = sample / 255
        linear = value / 4.5 if value < 0.081 else ((value + 0.099) / 1.099) ** (1 / 0.45)
        boost = 1 + (headroom - 1) * linear
        out.append(round(255 * math.log2(boost) / math.log2(headroom)))
    return out


def ultrahdr_image(source: Source, width: int, height: int,
                   picture: Image.Image | None = None) -> pyvips.Image:
    """The HEIC's picture (decoded upright by libheif) at ``width`` × ``height`` with its gain
    map attached, at half that, as libvips' ``uhdrsave`` wants it. Both are resized by Pillow
    first (Lanczos, as the SDR variants): libheif has no shrink-on-load, and handing libvips
    the full 12 MP would cost another copy and resize of it. ``picture``: those pixels already
    made (the SDR variants' largest, upright and in sRGB), so the HEIC is not decoded again."""
    fp = source.open("rb") if not hasattr(source, "read") else source
    try:
        boost = headroom(fp)
        fp.seek(0)
        heif = pi_heif.open_heif(fp)
        aux_id = heif.info["aux"][URN][0]
        gain = heif[0].get_aux_image(aux_id).to_pillow().convert("L")
        icc = None  # the given picture is sRGB already
        if picture is None:
            fp.seek(0)
            with Image.open(fp, formats=["HEIF"]) as img:
                picture = img.convert("RGB").resize((width, height), Image.Resampling.LANCZOS,
                                                    reducing_gap=3.0)
                icc = img.info.get("icc_profile")
        picture = picture.convert("RGB")
    finally:
        if fp is not source:
            fp.close()
    if boost is None or _aspect(gain.size) != _aspect(picture.size):
        raise ValueError("HEIC gain map without headroom, or not the picture's shape")
    gain = gain.point(ultrahdr_table(boost)).resize(
        (max(1, width // 2), max(1, height // 2)), Image.Resampling.LANCZOS)
    # copy_memory: libvips' own copy of the pixels. An image made with new_from_memory only
    # borrows the Python bytes, which go when their wrapper does while later images still
    # read them (a crash in uhdrsave under the service's threads).
    base = pyvips.Image.new_from_memory(picture.tobytes(), *picture.size, 3, "uchar")
    base = base.copy(interpretation="srgb").copy_memory()
    if icc:
        base.set_type(pyvips.GValue.blob_type, "icc-profile-data", icc)
    gain_map = pyvips.Image.new_from_memory(gain.tobytes(), *gain.size, 1, "uchar")
    base.set_type(pyvips.GValue.image_type, "gainmap",
                  gain_map.copy(interpretation="b-w").copy_memory())
    for name, value in (("max-content-boost", boost), ("min-content-boost", 1.0),
                        ("gamma", 1.0), ("offset-sdr", 0.0), ("offset-hdr", 0.0)):
        base.set_type(pyvips.GValue.array_double_type, f"gainmap-{name}", [value] * 3)
    base.set_type(pyvips.GValue.gdouble_type, "gainmap-hdr-capacity-min", 1.0)
    base.set_type(pyvips.GValue.gdouble_type, "gainmap-hdr-capacity-max", boost)
    base.set_type(pyvips.GValue.gint_type, "gainmap-use-base-cg", 1)
    base.set_type(pyvips.GValue.gint_type, "gainmap-scale-factor", 2)
    return base


def _aspect(size: tuple[int, int]) -> float:
    return round(size[0] / size[1], 2)
