"""Video bombs and mutated videos through the upload's video preparation (the isolated child):
whatever the bytes, a stored video or a refusal the client can read (415, 422), never
another exception, never a scratch file left behind. The same bombs go through the gateway
in the hostile corpus (test_gateway_corpus.py)."""

from __future__ import annotations

import random

import pytest

from services.upload.prepare import prepare_image
from shared.config import Env, Limits
from shared.errors import KittehError
from shared.storage import Scratch
from tests.hostile.video import video_cases
from tests.video_files import android_mp4, iphone_mov, webm_vp9

MUTANTS_PER_SEED = 12  # each is a child process: ~0.3 s


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few changes of the kinds that break containers: bytes and lengths changed, a stretch
    cut out or repeated, the end cut off (as test_fuzz does for images)."""
    data = bytearray(data)
    for _ in range(rng.choice((1, 2, 4))):
        at = rng.randrange(len(data))
        roll = rng.random()
        if roll < 0.4:
            data[at] = rng.randrange(256)
        elif roll < 0.55:
            del data[at:]
        elif roll < 0.7:
            data[at:at] = data[at:at + rng.randrange(1, 2000)]
        elif roll < 0.85:
            del data[at:at + rng.randrange(1, 50)]
        else:
            data[at:at + 4] = rng.randrange(1 << 32).to_bytes(4, "big")
        if not data:
            data = bytearray(b"\0")
    return bytes(data)


@pytest.fixture
def scratch(tmp_path):
    scratch = Scratch(tmp_path / "tmp")
    scratch.prepare()
    return scratch


@pytest.mark.parametrize("case", video_cases(), ids=lambda c: c.name)
def test_video_bombs_are_refused_before_any_heavy_work(case, tmp_path, scratch):
    upload = tmp_path / "upload"
    upload.write_bytes(case.data)
    with pytest.raises(KittehError) as refused:
        prepare_image(upload, scratch, Limits.from_env(Env({})))
    assert (refused.value.status, refused.value.code) == (case.status, case.code), \
        refused.value
    assert list(scratch.directory.iterdir()) == []


def test_mutated_videos_are_stored_or_refused_never_an_error(tmp_path, scratch):
    rng = random.Random(21)
    limits = Limits.from_env(Env({}))
    outcomes = {"stored": 0, 415: 0, 422: 0}
    for seed in (android_mp4(0.5, (160, 90)), iphone_mov(0.5), webm_vp9(0.5)):
        for _ in range(MUTANTS_PER_SEED):
            upload = tmp_path / "upload"
            upload.write_bytes(mutate(seed, rng))
            try:
                prepared = prepare_image(upload, scratch, limits)
            except KittehError as error:
                assert error.status in (415, 422), error
                outcomes[error.status] += 1
            else:
                outcomes["stored"] += 1
                prepared.path.unlink()
                assert prepared.poster is not None
                prepared.poster.unlink()
            assert list(scratch.directory.iterdir()) == []
    assert outcomes[415] > 0 and outcomes["stored"] > 0, outcomes
