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


def test_mutated_iphone_heic_metadata_is_rewritten_or_refused_cleanly(tmp_path):
    """The iPhone gain-map path (``shared.sanitize.applegain``): changes aimed at the HEIC's
    meta box and at its EXIF (maker notes) and XMP items, through the rewrite alone (a 12 MP
    decode per mutant would make this minutes). Whatever comes out: a 415/422, or a file that
    rewrites to itself, whose kept gain-map XMP item holds the packet Kitteh writes and
    nothing else. Where the change hit the EXIF or XMP items' bytes, none of what they
    held is left; a change to the item tables can make a picture item's extent cover them,
    which no rewrite can tell from coded data (as in ``tests/hostile/test_fuzz.py``, the
    planted-data check is for what stayed where it was planted)."""
    import io
    import re

    from shared.formats import BY_NAME
    from shared.sanitize import applegain
    from shared.sanitize.isobmff import item_bytes, walk

    upload = photo("h01_pug_iphone13pro_hdr.heic").read_bytes()
    layout = walk(io.BytesIO(upload), None)
    targets = [(layout.meta.start, layout.meta.end)] + [
        (offset, offset + length) for item in layout.items.values()
        if item.type in (b"Exif", b"mime") for offset, length in item.extents]
    rng = random.Random(21)
    outcomes: dict[object, int] = {}
    for _ in range(MUTANTS // 2):
        start, end = rng.choice(targets)
        in_tables = start == layout.meta.start
        changed = mutate(upload[start:end], rng)
        if not in_tables:  # an item's bytes: changed in place, every offset after stays
            changed = changed[:end - start].ljust(end - start, b"\0")
        mutant = data = upload[:start] + changed + upload[end:]
        source, target, again = tmp_path / "in", tmp_path / "out", tmp_path / "again"
        source.write_bytes(data)
        try:
            sanitize(source, target, BY_NAME["HEIC"], 1)
        except KittehError as error:
            assert error.status in (415, 422), error
            outcomes[error.status] = outcomes.get(error.status, 0) + 1
            continue
        cleaned = target.read_bytes()
        sanitize(target, again, BY_NAME["HEIC"], 1)
        assert again.read_bytes() == cleaned
        kept = walk(io.BytesIO(cleaned), None)
        assert {i.type for i in kept.items.values()} <= {b"hvc1", b"grid", b"mime"}
        for item in kept.items.values():
            if item.type == b"mime":
                packet = item_bytes(kept, item, io.BytesIO(cleaned), 1 << 16).rstrip(b" ")
                numbers = re.search(rb'Version="(\d+)" HDRGainMap:HDRGainMapHeadroom="([0-9.]+)"',
                                    packet)
                assert numbers, packet
                assert packet == applegain.xmp_packet(int(numbers.group(1)),
                                                      float(numbers.group(2))), packet
        if not in_tables:
            planted = [s for s in (b"Apple iOS", b"CreateDate", b"depthData")
                       if 0 < mutant.count(s) <= upload.count(s)]
            assert not [s for s in planted if s in cleaned], planted
        kept = b"HDRGainMapHeadroom" in cleaned
        outcomes["headroom kept" if kept else "stored"] = outcomes.get(
            "headroom kept" if kept else "stored", 0) + 1
    print(outcomes)  # shown with -s
    assert outcomes.get("headroom kept", 0) > 50 and outcomes.get(415, 0) > 20, outcomes
