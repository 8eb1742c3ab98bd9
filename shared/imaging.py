"""Reading what an uploaded file is, from its content, before anything is decoded.

Two steps, with the metadata rewrite (``shared.sanitize``) between them:

- ``inspect_header``: the format from the file's first bytes; then our own walk of its
  structure (lengths, checksums, counts of chunks, scans and frames, without decoding), so
  Pillow only ever parses a file whose structure is sane; then format, size, frames and
  orientation from Pillow's header parse (``Image.open`` is lazy), checked against the
  limits. Nothing here decodes pixels, so a decompression bomb (a few KiB that inflate to
  gigabytes) is refused at the cost of reading its header. Pillow's own guard is set to the
  same pixel limit and made an error.
- ``check_decodes``: the pixel data is decoded (at reduced scale where the format allows) to
  refuse truncated and damaged files. It runs on the rewritten file: what passes is exactly
  what will be served.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from shared import isolated
from shared.config import Limits
from shared.errors import ImageOverLimits, UnsupportedImage
from shared.formats import BY_NAME, NOT_AN_IMAGE, SNIFF_BYTES, Format, register_plugins, sniff
from shared.sanitize import FrameCheck, check_structure
from shared.sanitize.isobmff import walk

ORIENTATION_TAG = 0x0112
SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 or 270 degrees
# Frames × pixels an animation may have at all (an "animation bomb": 900 frames of 6000×6000
# fit the frame and pixel limits, and cost any browser that opens the original minutes).
# Resizing stops far earlier (KITTEH_MAX_ANIMATION_WORK: still posters past it).
MAX_ANIMATION_PIXELS = 2_000_000_000
DAMAGED = "This image is damaged or truncated and cannot be read."
# What Pillow raises for broken files, depending on the format and the damage. It also warns
# about some corrupt data (corrupt EXIF): where warnings are errors, as in the tests, that is
# damage too. (Never silence warnings around Pillow calls: the filters are process-wide, and
# the decompression-bomb warning must stay an error in every other thread.)
PILLOW_DAMAGE = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                 struct.error, ZeroDivisionError, RuntimeError, UserWarning)


def configure_pillow(max_pixels: int) -> None:
    """Make Pillow's own decompression-bomb guard match our limit and fail, never warn."""
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    register_plugins()


@dataclass(frozen=True)
class ImageInfo:
    format: Format
    width: int  # as displayed: EXIF orientation already applied
    height: int
    frames: int
    orientation: int
    stored_size: tuple[int, int]  # width, height as stored (before orientation)
    gain_map: bool = False  # the cleaned file keeps an HDR gain map (shared.sanitize.gainmap)


def sniff_format(path: Path) -> Format:
    """The format from the file's first bytes, by the registry's signatures."""
    with path.open("rb") as src:
        fmt = sniff(src.read(SNIFF_BYTES))
    if fmt is None:
        raise UnsupportedImage(NOT_AN_IMAGE)
    return fmt


def inspect_header(path: Path, limits: Limits) -> ImageInfo:
    fmt = sniff_format(path)
    # GIF frames are counted by this walk, which stops at the first frame over a limit;
    # Pillow's n_frames reads every block first (8 s for 40 MiB of tiny frames) and does not
    # look at frames reaching past the screen, which make Pillow's canvas larger.
    frames = check_structure(path, fmt, _gif_frame_check(limits))
    if fmt.isolated_decode:
        # HEIC and AVIF: every image item's size (ispe) was checked by the box walk; no
        # decoder has seen the file yet, and none will in this process before the isolated
        # damage check (check_decodes) has read the rewritten file once.
        with path.open("rb") as src:
            layout = walk(src, None)
        fmt = BY_NAME[layout.coding]  # generic HEIF brands are named by the coding
        check_dimensions(layout.width, layout.height, limits)
        check_frames(layout.frames, layout.width, layout.height, limits)  # animated AVIF
        return ImageInfo(fmt, layout.width, layout.height, layout.frames, 1, (0, 0))
    with pillow_errors(limits), Image.open(path, formats=[fmt.pillow_name]) as img:
        if img.format not in fmt.pillow_names:
            raise UnsupportedImage(NOT_AN_IMAGE)
        width, height = img.size  # HEIC: libheif has applied irot/imir already
        check_dimensions(width, height, limits)
        if fmt.name in ("PNG", "WEBP", "AVIF"):
            frames = getattr(img, "n_frames", 1)  # PNG: acTL; WebP: the demuxer
        check_frames(frames, width, height, limits)
        orientation = orientation_of(img)
        shown = (height, width) if orientation in SWAPS_AXES else (width, height)
        return ImageInfo(fmt, *shown, frames, orientation, (width, height))


def check_frames(frames: int, width: int, height: int, limits: Limits) -> None:
    if frames > limits.max_frames:
        raise ImageOverLimits(
            f"This animation has {frames:,} frames: the limit is {limits.max_frames:,}.")
    if frames * width * height > MAX_ANIMATION_PIXELS:
        raise ImageOverLimits(
            f"This animation is {frames:,} frames of {width:,}×{height:,} pixels: at most "
            f"{MAX_ANIMATION_PIXELS // 1_000_000:,} megapixels of frames in all.")


def check_dimensions(width: int, height: int, limits: Limits) -> None:
    if width < 1 or height < 1:
        raise UnsupportedImage(DAMAGED)
    if width > limits.max_side or height > limits.max_side:
        raise ImageOverLimits(
            f"This image is {width:,}×{height:,} pixels: the limit is {limits.max_side:,} "
            "pixels a side."
        )
    if width * height > limits.max_pixels:
        raise ImageOverLimits(
            f"This image has {width * height:,} pixels: the limit is {limits.max_pixels:,}."
        )


def check_decodes(path: Path, info: ImageInfo, limits: Limits) -> ImageInfo:
    """Decode the (rewritten) file; it must still be the image ``inspect_header`` saw.
    Returns what is now known of it (HEIC and AVIF: the decoder's view, from a child)."""
    if info.format.isolated_decode:
        return _check_decodes_isolated(path, info, limits)
    with pillow_errors(limits):
        if info.format.verify_chunks:
            with Image.open(path) as img:
                img.verify()  # every chunk's CRC, without decoding pixels
        with Image.open(path, formats=[info.format.pillow_name]) as img:
            if img.size != info.stored_size or orientation_of(img) != info.orientation:
                raise UnsupportedImage(DAMAGED)
            if info.format.draft_decode:
                # Decoding at 1/8 scale still walks the whole entropy-coded stream, so a
                # truncated file is caught, at a fraction of the cost of a full decode.
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()  # the first frame of an animation
    return info


def _check_decodes_isolated(path: Path, info: ImageInfo, limits: Limits) -> ImageInfo:
    try:
        decoded = isolated.decode(path, info.format.pillow_name, limits.max_pixels)
    except isolated.DecodeFailed:
        raise UnsupportedImage(DAMAGED) from None
    width, height = decoded.size
    orientation = decoded.orientation if info.format.name != "HEIC" else 1
    shown = (height, width) if orientation in SWAPS_AXES else (width, height)
    # The decoder must agree with the boxes. Frames only for an animated AVIF: pi-heif counts
    # a HEIC's top-level images as frames (a stereo pair, tiles not marked hidden).
    if shown != (info.width, info.height) or (info.frames > 1 and decoded.frames != info.frames):
        raise UnsupportedImage(DAMAGED)
    return ImageInfo(info.format, *shown, info.frames, orientation, decoded.size)


@contextmanager
def pillow_errors(limits: Limits) -> Iterator[None]:
    """Pillow's exceptions, as the answers a client gets."""
    try:
        yield
    except UnidentifiedImageError:
        raise UnsupportedImage(NOT_AN_IMAGE) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageOverLimits(
            f"This image has too many pixels: the limit is {limits.max_pixels:,}.") from None
    except PILLOW_DAMAGE:
        raise UnsupportedImage(DAMAGED) from None


def _gif_frame_check(limits: Limits) -> FrameCheck:
    width = height = 1

    def check(index: int, right: int, bottom: int) -> None:
        """Frame 0 is the screen; Pillow's canvas grows to hold any frame reaching past it."""
        nonlocal width, height
        if index > limits.max_frames:
            raise ImageOverLimits(
                f"This animation has more than {limits.max_frames:,} frames: the limit is "
                f"{limits.max_frames:,}.")
        if right > width or bottom > height:
            width, height = max(width, right), max(height, bottom)
            check_dimensions(width, height, limits)

    return check


def orientation_of(img: Image.Image) -> int:
    """The EXIF orientation Pillow sees (1 to 8; 1 when there is none)."""
    if img.format in ("GIF", "HEIF"):
        return 1  # HEIC: decoded upright (irot/imir); its EXIF orientation is not the truth
    # The base class's getexif, on purpose: PngImageFile.getexif() decodes the whole image to
    # look for an eXIf chunk after the pixel data. This one reads only what the header pass
    # saw (EXIF, or XMP's tiff:Orientation), which is also all the rewritten file keeps.
    try:
        value = Image.Image.getexif(img).get(ORIENTATION_TAG, 1)
    except PILLOW_DAMAGE:
        return 1  # unreadable EXIF is dropped by the rewrite anyway
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
