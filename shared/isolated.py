"""Decoding HEIC and AVIF for the first time in a child process, where a crash costs nothing.

libheif and libavif are C libraries parsing attacker-chosen bytes, and the fuzz test found
a two-byte change of an honest HEIC (its HEVC configuration) that makes libheif crash the
whole process. Kitteh's own box walk (``shared.sanitize.isobmff``) refuses hostile
structure, but cannot know every decoder bug. So an upload's first decode (the damage check
on the rewritten file) runs in a child, ``python -m shared.isolated FILE PLUGIN MAX_PIXELS``:
a crash, a hang or an error there is a 415 for the client and nothing else. Only bytes that
decoded cleanly are stored, and libheif/libavif are deterministic, so the resize service
only ever decodes files that already decoded once.

A fresh interpreter with Pillow and pi-heif costs 60-90 ms; the decode itself is the bulk
(0.3 s for a 12 MP HEIC). Nothing outlives the call: no server, no pool to shut down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_SECONDS = 60.0  # a decode of 40 MP takes ~1 s; a decoder loop is cut off here


@dataclass(frozen=True)
class Decoded:
    size: tuple[int, int]  # as Pillow reports it (HEIC: upright already)
    orientation: int  # the EXIF orientation Pillow derives (AVIF: from irot/imir)
    frames: int


class DecodeFailed(Exception):
    """The child raised, crashed, or took too long: the file cannot be read."""


def decode(path: Path, pillow_name: str, max_pixels: int) -> Decoded:
    command = [sys.executable, "-m", "shared.isolated", str(path), pillow_name, str(max_pixels)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=TIMEOUT_SECONDS,
                              check=False)
    except subprocess.TimeoutExpired:  # run() has killed it
        raise DecodeFailed(f"no answer within {TIMEOUT_SECONDS:g} s") from None
    if done.returncode != 0:
        raise DecodeFailed(f"the decoder stopped (exit {done.returncode})")
    answer = json.loads(done.stdout)
    if "error" in answer:
        raise DecodeFailed(answer["error"])
    return Decoded(tuple(answer["size"]), answer["orientation"], answer["frames"])


def _main(path: str, pillow_name: str, max_pixels: str) -> None:
    from PIL import Image

    from shared.formats import register_plugins
    from shared.imaging import PILLOW_DAMAGE, orientation_of

    Image.MAX_IMAGE_PIXELS = int(max_pixels)
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    register_plugins()
    try:
        with Image.open(path, formats=[pillow_name]) as img:
            answer = {"size": img.size, "orientation": orientation_of(img),
                      "frames": getattr(img, "n_frames", 1)}
            img.load()
    except (Image.UnidentifiedImageError, Image.DecompressionBombError,
            *PILLOW_DAMAGE) as error:
        answer = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(answer))


if __name__ == "__main__":
    _main(*sys.argv[1:4])
