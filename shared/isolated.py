"""Decoding HEIC and AVIF for the first time in a child process, where a crash costs nothing.

libheif and libavif are C libraries parsing attacker-chosen bytes, and the fuzz test found
a two-byte change of an honest HEIC (its HEVC configuration) that makes libheif crash the
whole process. Kitteh's own box walk (``shared.sanitize.isobmff``) refuses hostile
structure, but cannot know every decoder bug. So an upload's first decode (the damage check
on the rewritten file) runs in a process forked from a small fork server: a crash, a hang or
an error there is a 415 for the client and nothing else. Only bytes that decoded cleanly are
stored, and libheif/libavif are deterministic, so the resize service and the header parse
afterwards only ever see files that already decoded once.

A forked child costs ~10-20 ms (the fork server has Pillow and pi-heif loaded already);
the decode itself is the bulk (0.3 s for a 12 MP HEIC).
"""

from __future__ import annotations

import multiprocessing
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

# The fork server starts clean (never a fork of a threaded service) and forks each child.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["shared.imaging", "pi_heif"])
TIMEOUT_SECONDS = 60.0  # a decode of 40 MP takes ~1 s; a decoder loop is cut off here


@dataclass(frozen=True)
class Decoded:
    size: tuple[int, int]  # as Pillow reports it (HEIC: upright already)
    orientation: int  # the EXIF orientation Pillow derives (AVIF: from irot/imir)
    frames: int


class DecodeFailed(Exception):
    """The child raised, crashed, or took too long: the file cannot be read."""


def decode(path: Path, pillow_name: str, max_pixels: int) -> Decoded:
    receive, send = _CONTEXT.Pipe(duplex=False)
    child = _CONTEXT.Process(target=_child, args=(str(path), pillow_name, max_pixels, send),
                             daemon=True, name="kitteh-decode")
    child.start()
    send.close()
    try:
        result = receive.recv() if receive.poll(TIMEOUT_SECONDS) else None
    except (EOFError, OSError):  # it died before answering
        result = None
    finally:
        receive.close()
        child.join(1)
        if child.is_alive():
            child.kill()
            child.join()
    if not isinstance(result, Decoded):
        raise DecodeFailed(result if isinstance(result, str) else
                           f"the decoder stopped (exit {child.exitcode})")
    return result


def _child(path: str, pillow_name: str, max_pixels: int, send: Connection) -> None:
    from PIL import Image

    from shared.formats import register_plugins
    from shared.imaging import PILLOW_DAMAGE, orientation_of

    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    register_plugins()
    try:
        with Image.open(path, formats=[pillow_name]) as img:
            answer: Decoded | str = Decoded(img.size, orientation_of(img),
                                            getattr(img, "n_frames", 1))
            img.load()
    except (Image.UnidentifiedImageError, Image.DecompressionBombError,
            *PILLOW_DAMAGE) as error:
        answer = f"{type(error).__name__}: {error}"
    send.send(answer)
    send.close()
