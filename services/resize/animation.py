"""Animated variants: every frame resized, encoded as animated WebP, timing and looping kept.

GIF, APNG and animated WebP all come out as animated WebP (smaller than GIF, with full
colour and alpha, shown by every current browser). Pillow hands us each frame already
composed onto the canvas (disposal and blending done), so each is simply resized. Frames
stream through one libwebp animation encoder per variant, added as they are decoded: memory
holds the encoders' state and one frame at each size, never the whole animation.

Whether an animation is kept at all is ``shared.formats.animation_kept`` (the work budget,
``KITTEH_MAX_ANIMATION_WORK``); past it, and for the tiny grid variant, the engine writes a
still WebP of the first frame instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image, ImageFile, _webp

from shared.variants import VariantSpec

DEFAULT_DURATION_MS = 100  # what browsers show a GIF frame of no (or 0) delay for
# libwebp's keyframe spacing for lossy animations, as gif2webp (and Pillow) choose it.
KEYFRAME_MIN, KEYFRAME_MAX = 3, 5


def render_animation(img: ImageFile.ImageFile, specs: Sequence[VariantSpec],
                     prepare: Callable[[Image.Image, VariantSpec], Image.Image],
                     quality: int) -> dict[str, bytes]:
    """Animated WebP bytes per variant kind. ``prepare`` makes one frame into one variant's
    frame (resize, orientation, colour), from the previous size's frame (largest first)."""
    loop = img.info.get("loop", 1)  # no NETSCAPE block in a GIF: play once (WebP's 1)
    encoders = {s.kind: _webp.WebPAnimEncoder((s.width, s.height), 0, loop, False,
                                              KEYFRAME_MIN, KEYFRAME_MAX, False, False)
                for s in specs}
    timestamp = 0
    for index in range(img.n_frames):
        img.seek(index)
        current: Image.Image = img.convert("RGBA")  # loads: WebP sets the duration then
        duration = int(img.info.get("duration") or DEFAULT_DURATION_MS)
        for spec in specs:
            current = prepare(current, spec)
            encoders[spec.kind].add(current.getim(), timestamp, False, quality, 100, 4)
        timestamp += duration
    rendered = {}
    for kind, encoder in encoders.items():
        encoder.add(None, timestamp, False, quality, 100, 0)  # flush: last duration
        data = encoder.assemble(b"", b"", b"")
        if data is None:
            raise OSError("the WebP animation encoder returned nothing")
        rendered[kind] = data
    return rendered
