"""Mutated images through the whole preparation (structure walk, header, rewrite, decode).

Whatever the bytes, the answer is a stored image or a refusal the client can read (415 or
422): never an exception that would be a 500, never a temp file left behind. Deterministic
(a fixed seed), a few seconds.
"""

from __future__ import annotations

import io
import random

from PIL import Image

from services.upload.prepare import prepare_image
from shared.config import Env, Limits
from shared.errors import KittehError
from shared.imaging import configure_pillow
from shared.sanitize import sanitize
from shared.storage import Scratch
from tests.hostile.corpus import gif_frames, small_image
from tests.test_privacy import (
    gif_with_everything,
    jpeg_with_everything,
    png_with_everything,
    webp_with_everything,
)

MUTANTS = 3000


def seeds() -> list[bytes]:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 99, 199)).save(out, "JPEG", progressive=True)
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    apng = io.BytesIO()
    frames[0].save(apng, "PNG", save_all=True, append_images=frames[1:])
    return [*(small_image(fmt, 1) for fmt in ("JPEG", "PNG", "GIF", "WEBP")), out.getvalue(),
            apng.getvalue(), gif_frames(3), jpeg_with_everything(), png_with_everything(),
            webp_with_everything(), gif_with_everything()]


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        at = rng.randrange(len(data)) if data else 0
        roll = rng.random()
        if roll < 0.4 and data:
            data[at] = rng.randrange(256)  # a byte changed
        elif roll < 0.55:
            del data[at:]  # truncated
        elif roll < 0.7:
            other = rng.randrange(len(data) + 1)  # a stretch repeated
            data[at:at] = data[min(at, other):max(at, other)][:2000]
        elif roll < 0.8:
            del data[at:at + rng.randrange(1, 50)]
        elif roll < 0.9:
            data[at:at] = bytes((rng.choice((0, 0x7F, 0x80, 0xFF)),)) * rng.randrange(1, 8)
        else:
            data[at:at + 4] = rng.randrange(1 << 32).to_bytes(4, "big")  # a length changed
    return bytes(data)


def test_mutated_images_are_stored_or_refused_cleanly(tmp_path):
    limits = Limits.from_env(Env({}))
    configure_pillow(limits.max_pixels)
    scratch = Scratch(tmp_path / "scratch")
    scratch.prepare()
    rng = random.Random(7)
    originals = seeds()
    outcomes: dict[object, int] = {}
    for _ in range(MUTANTS):
        upload = tmp_path / "upload"
        upload.write_bytes(mutate(rng.choice(originals), rng))
        try:
            prepared = prepare_image(upload, scratch, limits)
        except KittehError as error:
            assert error.status in (415, 422), error
            outcomes[error.status] = outcomes.get(error.status, 0) + 1
            continue
        # what was stored is stable: rewriting it again changes nothing
        again = tmp_path / "again"
        sanitize(prepared.path, again, prepared.info.format, prepared.info.orientation)
        assert again.read_bytes() == prepared.path.read_bytes()
        prepared.path.unlink()
        outcomes["stored"] = outcomes.get("stored", 0) + 1
    assert list(scratch.directory.iterdir()) == []
    assert outcomes.get("stored", 0) > 50 and outcomes.get(415, 0) > 500, outcomes


def heif_seeds() -> list[bytes]:
    from tests.heif_files import avif_bytes, grid_heic, heic_bytes
    from tests.test_privacy import picture

    return [avif_bytes(picture((48, 32))), heic_bytes(picture((48, 32))),
            grid_heic(picture((128, 64)), tile=64)]


def test_mutated_heic_and_avif_are_stored_or_refused_cleanly(tmp_path):
    """The same for the ISOBMFF formats: changed box sizes, cut boxes, repeated stretches
    reach the box walk, libheif and libavif; the answer is still a file or a 415/422."""
    limits = Limits.from_env(Env({}))
    configure_pillow(limits.max_pixels)
    scratch = Scratch(tmp_path / "scratch")
    scratch.prepare()
    rng = random.Random(11)
    originals = heif_seeds()
    outcomes: dict[object, int] = {}
    for _ in range(MUTANTS // 3):
        upload = tmp_path / "upload"
        upload.write_bytes(mutate(rng.choice(originals), rng))
        try:
            prepared = prepare_image(upload, scratch, limits)
        except KittehError as error:
            assert error.status in (415, 422), error
            outcomes[error.status] = outcomes.get(error.status, 0) + 1
            continue
        again = tmp_path / "again"
        sanitize(prepared.path, again, prepared.info.format, prepared.info.orientation)
        assert again.read_bytes() == prepared.path.read_bytes()
        prepared.path.unlink()
        outcomes["stored"] = outcomes.get("stored", 0) + 1
    assert list(scratch.directory.iterdir()) == []
    assert outcomes.get("stored", 0) > 20 and outcomes.get(415, 0) > 300, outcomes
