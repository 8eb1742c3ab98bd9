"""Resize engines: the image work behind one small interface (after thumbor's engines).

The service only calls ``render``; another engine (libvips, say) can be dropped in without
touching the handlers. Engines are plain blocking code: the service runs them in its executor.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Protocol

import thash
from PIL import Image, ImageFile

from services.resize import hdr
from services.resize.animation import render_animation
from services.resize.colour import to_srgb
from shared.encoding import WEBP_BASE, base_output, encode, output_for
from shared.formats import STILL_KINDS, Format, animation_kept
from shared.imaging import ORIENTATION_TAG, SWAPS_AXES
from shared.variants import BASE, VariantSpec

log = logging.getLogger("kitteh.resize")

# ThumbHash takes at most 100 × 100 pixels but keeps only the lowest frequencies: from 48 px
# the hash of a photo is the same (or nearly), in 5 ms instead of 20 ms of pure Python.
THUMBHASH_SIDE = 48

# What an engine reads an original from: a seekable binary file (what the image store's
# ``open`` gives: the file itself, or a scratch copy of an S3 object), or a path (bench, tests).
Source = Path | BinaryIO


@dataclass(frozen=True)
class RenderedVariant:
    kind: str
    width: int
    height: int
    data: bytes
    format: str = BASE
    seconds: float = 0.0  # resize and encode; for the first (largest), the decode as well


@dataclass(frozen=True)
class Rendering:
    variants: list[RenderedVariant]
    thumbhash: bytes | None = None  # when asked for
    animated: bool = False  # more than one frame: the base format is the animated one's
    # The largest variant's pixels (upright, sRGB), when asked: an HDR HEIC's Ultra HDR JPEGs
    # are made from them rather than from a second decode (services.resize.hdr).
    largest: Image.Image | None = None


class ResizeEngine(Protocol):
    def render_all(self, source: Source, fmt: Format, specs: Sequence[VariantSpec],
                   thumbhash: bool = False, pause: Callable[[], None] | None = None,
                   ) -> Rendering:
        """Make every variant in ``specs`` (largest first; several formats of one size may
        follow each other) from the original in ``source``, and its ThumbHash if asked.
        ``pause``, if given, is called before the decode and before each encode (background
        work waits there while someone waits for other work)."""
        ...


# EXIF orientation -> the transposition that makes the pixels upright.
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class PillowEngine:
    """One decode per image, shrink-on-load for JPEG, then a cascade largest to smallest.

    The numbers behind each choice are in docs/performance.md (``python -m bench.resize``):

    - JPEG is decoded by libjpeg at the smallest DCT scale (1/2, 1/4, 1/8) that still covers
      the largest variant (``draft_factor`` times it; 1 is enough), so a 16 MP photo is never
      decoded in full. The scaled image covers the original exactly only when the sides are
      multiples of the scale; ``draft`` returns the box the real pixels occupy, and resizing
      from that box (not the padded whole) keeps the variant aligned. Without the box the
      variant is stretched by up to a pixel, which costs up to 2.7 dB PSNR on detailed photos.
    - Each variant is resized from the one before it (600 → 300 → 90) with Lanczos, the
      high-quality filter, so every step is short and cheap.
    - Orientation is applied once, to the largest variant (a few hundred pixels a side), and the
      smaller ones are made from the upright image.
    - JPEG variants use optimized Huffman tables (2-9% smaller for ~2.5 ms an image); not
      progressive (another 2-3% smaller, but ~8 ms more an image: ~6% of the whole render).
    - The output format is the registry's (``shared.formats.variant_format``): HEIC and AVIF
      become JPEG, animations animated WebP (``services.resize.animation``) within the work
      budget, still posters beyond it and for the tiny grid tile.
    - Pixels are converted to sRGB (``services.resize.colour``) after the first resize, where
      it costs a few hundred kilopixels, not the original's megapixels.
    """

    draft_factor: float = 1.0
    # Image.save options over shared/encoding.py's, by output format name (for benchmarks).
    overrides: dict[str, dict] = field(default_factory=dict)
    max_animation_work: int = 100_000_000
    hdr: bool = True  # gain-map photos: Ultra HDR JPEG variants (services.resize.hdr)

    def render(self, source: Source, fmt: Format,
               specs: Sequence[VariantSpec]) -> list[RenderedVariant]:
        return self.render_all(source, fmt, specs).variants

    def render_all(self, source: Source, fmt: Format, specs: Sequence[VariantSpec],
                   thumbhash: bool = False, pause: Callable[[], None] | None = None,
                   keep_largest: bool = False) -> Rendering:
        pause = pause or (lambda: None)
        gain_map_specs = hdr.hdr_specs(source, fmt.name, specs) if self.hdr else []
        if gain_map_specs:
            return self._with_gain_map(source, fmt, specs, gain_map_specs, thumbhash, pause)
        pause()
        started = time.perf_counter()
        with Image.open(source, formats=list(fmt.pillow_names)) as img:
            frames = getattr(img, "n_frames", 1)
            out = base_output(fmt, frames > 1)
            orientation = 1 if img.format in ("GIF", "HEIF") else img.getexif().get(
                ORIENTATION_TAG, 1)  # HEIC: decoded upright already (irot/imir)
            transpose = TRANSPOSE.get(orientation)
            swap = orientation in SWAPS_AXES
            icc = img.info.get("icc_profile")
            rendered: list[RenderedVariant] = []
            if animation_kept(fmt, frames, *img.size, self.max_animation_work):
                moving = [s for s in specs if s.kind not in STILL_KINDS]
                if moving:  # none when only the tiny still is asked for (remade alone)
                    rendered += self._animated(img, moving, transpose, swap, icc)
                specs = [s for s in specs if s.kind in STILL_KINDS]
                if not specs:
                    return Rendering(rendered, animated=True)
            largest = specs[0]
            box = None
            if img.format == "JPEG":
                w, h = (largest.height, largest.width) if swap else (largest.width, largest.height)
                drafted = img.draft(img.mode if img.mode in ("L", "RGB") else "RGB",
                                    (int(w * self.draft_factor), int(h * self.draft_factor)))
                if drafted is not None:
                    box = drafted[1]
            current = _normalise_mode(img, out.pillow_name)
            for index, spec in enumerate(specs):
                if index > 0 and current.size == (spec.width, spec.height) and \
                        specs[index - 1].kind == spec.kind:
                    pass  # another format of the size just made
                elif index == 0:
                    stored = (spec.height, spec.width) if swap else (spec.width, spec.height)
                    if current.size != stored or (box and box != (0, 0, *current.size)):
                        # reducing_gap matters for formats without shrink-on-load (PNG...):
                        # a box reduce first, then Lanczos over the last 3× only.
                        current = current.resize(stored, Image.Resampling.LANCZOS, box=box,
                                                 reducing_gap=None if box else 3.0)
                    if transpose is not None:
                        current = current.transpose(transpose)
                    current = to_srgb(current, icc)
                    largest_pixels = current if keep_largest else None
                elif current.size != (spec.width, spec.height):
                    current = current.resize((spec.width, spec.height),
                                             Image.Resampling.LANCZOS)
                pause()
                data = self._encode(current, fmt, spec.format, icc, frames > 1)
                now = time.perf_counter()
                rendered.append(RenderedVariant(spec.kind, spec.width, spec.height, data,
                                                spec.format, now - started))
                started = now
            return Rendering(rendered, thumbhash_of(current) if thumbhash else None, frames > 1,
                             largest_pixels if keep_largest else None)

    def _with_gain_map(self, source: Source, fmt: Format, specs: Sequence[VariantSpec],
                       gain_map_specs: list[VariantSpec], thumbhash: bool,
                       pause: Callable[[], None]) -> Rendering:
        """The JPEG variants as Ultra HDR JPEGs (libvips), the others as for any photo: those
        first, keeping their largest pixels for a HEIC (libheif has no shrink-on-load, so a
        second decode would cost as much as all the rest)."""
        sdr_engine = replace(self, hdr=False)
        rest = [s for s in specs if s not in gain_map_specs]
        made: dict[tuple[str, str], RenderedVariant] = {}
        hashed = largest = None
        if rest:
            sdr = sdr_engine.render_all(source, fmt, rest, thumbhash, pause, keep_largest=True)
            made.update({(v.kind, v.format): v for v in sdr.variants})
            hashed, largest = sdr.thumbhash, sdr.largest
            if largest is not None and largest.size != (gain_map_specs[0].width,
                                                        gain_map_specs[0].height):
                largest = None
        if not isinstance(source, Path):
            source.seek(0)
        try:
            made.update({(v.kind, v.format): v for v in hdr.render(
                source, gain_map_specs, pause, fmt.name, largest)})
        except hdr.NOT_HDR:  # a gain map libheif or libvips cannot read: SDR, as before
            log.warning("gain map unreadable, variants stay SDR", exc_info=True)
            if not isinstance(source, Path):
                source.seek(0)
            made.update({(v.kind, v.format): v for v in sdr_engine.render_all(
                source, fmt, gain_map_specs, pause=pause).variants})
        if thumbhash and not rest:  # from the smallest HDR variant's base picture
            with Image.open(io.BytesIO(made[gain_map_specs[-1].kind, BASE].data)) as img:
                hashed = thumbhash_of(img)
        return Rendering([made[s.kind, s.format] for s in specs], hashed)

    def _animated(self, img: ImageFile.ImageFile, specs: Sequence[VariantSpec],
                  transpose: Image.Transpose | None, swap: bool,
                  icc: bytes | None) -> list[RenderedVariant]:
        def prepare(frame: Image.Image, spec: VariantSpec) -> Image.Image:
            """The frame at this variant's size: the first (largest) from the decoded frame,
            upright and in sRGB; each smaller one from the one before."""
            if spec is specs[0]:
                stored = (spec.height, spec.width) if swap else (spec.width, spec.height)
                if frame.size != stored:
                    frame = frame.resize(stored, Image.Resampling.LANCZOS, reducing_gap=3.0)
                if transpose is not None:
                    frame = frame.transpose(transpose)
                return to_srgb(frame, icc)
            if frame.size == (spec.width, spec.height):
                return frame
            return frame.resize((spec.width, spec.height), Image.Resampling.LANCZOS)

        started = time.perf_counter()
        data = render_animation(img, specs, prepare, WEBP_BASE.options["quality"])
        share = (time.perf_counter() - started) / len(specs)  # one pass made them all
        return [RenderedVariant(s.kind, s.width, s.height, data[s.kind], s.format, share)
                for s in specs]

    def _encode(self, img: Image.Image, fmt: Format, variant_format: str,
                icc: bytes | None, animated: bool) -> bytes:
        output = output_for(fmt, variant_format, animated)
        if variant_format != BASE and img.mode not in ("RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.mode else "RGB")  # greyscale: AVIF wants RGB
        # Pixels were converted to sRGB: only a profile that could not be applied (not RGB,
        # or unreadable) is kept, so what a viewer does with it stays as before.
        kept = icc if icc and img.mode not in ("RGB", "RGBA") else None
        return encode(img, output, kept, **self.overrides.get(output.name, {}))


def thumbhash_of(img: Image.Image) -> bytes:
    """The ThumbHash of an (upright) image, from a copy at most THUMBHASH_SIDE a side."""
    small = img.convert("RGBA")
    small.thumbnail((THUMBHASH_SIDE, THUMBHASH_SIDE), Image.Resampling.BILINEAR)
    # A list: thash's NumPy backend (used when NumPy is installed) takes no bytes object.
    return bytes(thash.rgba_to_thumb_hash(small.width, small.height, list(small.tobytes())))


def _normalise_mode(img: ImageFile.ImageFile, target: str) -> Image.Image:
    """Pick a mode the output format can store, keeping transparency where it can."""
    img.seek(0)  # animations: variants show the first frame
    has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
    if target == "JPEG" and has_alpha:
        # An AVIF or HEIC with transparency: JPEG has none, so over white, as a page shows it
        # (dropping the alpha would show whatever colour the transparent pixels hold).
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if target == "JPEG":
        wanted = "L" if img.mode in ("L", "1") else "RGB"
    elif has_alpha:
        wanted = "RGBA"
    else:
        wanted = "L" if img.mode in ("L", "1") else "RGB"
    if img.mode != wanted:
        return img.convert(wanted)  # also does the (possibly draft-reduced) decode
    img.load()  # no copy: every step after this makes a new image
    return img
