"""Mutated HDR photos and animated AVIFs through the whole preparation (issue 19).

Like ``tests/hostile/test_fuzz.py``, aimed at what issue 19 added: the gain-map rewrite
(MPF index, XMP packets, ISO 21496-1 segments, the second JPEG; ``shared.sanitize.gainmap``)
and the sequence walk of animated AVIF (``shared.sanitize.sequence``). Whatever the bytes:
a stored image or a 415/422, never another exception (a 500), no scratch file left, the
stored file stable under a second rewrite, and no planted metadata in it. Half the changes
land in the bytes these modules read (the JPEG header segments and the gain map; the
``moov`` box), so they are reached far more often than by chance. Deterministic.
"""

from __future__ import annotations

import random

from services.upload.prepare import prepare_image
from shared.config import Env, Limits
from shared.errors import KittehError
from shared.imaging import configure_pillow
from shared.sanitize import sanitize
from shared.storage import Scratch
from tests.hostile.test_fuzz import mutate
from tests.make_ultrahdr import ultrahdr
from tests.support import photo
from tests.test_hdr import VIDEO, phone_ultrahdr
from tests.test_phone_photos import animated_avif
from tests.test_privacy import SECRETS

MUTANTS = 600


def hdr_seeds() -> list[tuple[bytes, int, int]]:
    """(file, start, end): where in it the targeted changes land."""
    small = ultrahdr(str(photo("j03_seeding.jpg")), 200)
    jpeg = phone_ultrahdr(VIDEO, small)
    sequence = animated_avif(4, (48, 32))
    moov = sequence.index(b"moov") - 4
    scan = jpeg.index(b"\xff\xda")
    gain = len(jpeg) - len(VIDEO) - 1
    while not jpeg.startswith(b"\xff\xd8\xff", gain):  # the gain map's start
        gain -= 1
    return [(jpeg, 0, scan), (jpeg, gain, len(jpeg) - len(VIDEO)),
            (sequence, moov, moov + int.from_bytes(sequence[moov:moov + 4], "big"))]


def aimed(data: bytes, start: int, end: int, rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        return mutate(data, rng)
    return data[:start] + mutate(data[start:end], rng) + data[end:]


def test_mutated_hdr_photos_and_sequences_are_stored_or_refused_cleanly(tmp_path):
    limits = Limits.from_env(Env({}))
    configure_pillow(limits.max_pixels)
    scratch = Scratch(tmp_path / "scratch")
    scratch.prepare()
    rng = random.Random(19)
    seeds = hdr_seeds()
    outcomes: dict[object, int] = {}
    for _ in range(MUTANTS):
        upload = tmp_path / "upload"
        seed = rng.choice(seeds)
        mutant = aimed(*seed, rng)
        upload.write_bytes(mutant)
        try:
            prepared = prepare_image(upload, scratch, limits)
        except KittehError as error:
            assert error.status in (415, 422), error
            outcomes[error.status] = outcomes.get(error.status, 0) + 1
            continue
        stored = prepared.path.read_bytes()
        # A secret the mutation copied (a repeated stretch) may have landed inside coded
        # picture data, which is kept as it is; one left where it was planted must go.
        planted = [s for s in (*SECRETS, b"secret-video")
                   if 0 < mutant.count(s) <= seed[0].count(s)]
        assert not [s for s in planted if s in stored], planted
        again = tmp_path / "again"
        sanitize(prepared.path, again, prepared.info.format, prepared.info.orientation)
        assert again.read_bytes() == stored
        kind = "hdr" if b"MPF\0" in stored[:4096] else "stored"
        outcomes[kind] = outcomes.get(kind, 0) + 1
        prepared.path.unlink()
    assert list(scratch.directory.iterdir()) == []
    assert outcomes.get("hdr", 0) > 30 and outcomes.get("stored", 0) > 30, outcomes
    assert outcomes.get(415, 0) > 50, outcomes
    print(outcomes)  # shown with -s: how the mutants fared
