"""The sweeper against a real database and a real volume (the apps built by their factories):
what it removes, what it leaves alone, what it repairs, and when it refuses."""

from __future__ import annotations

import os
import shutil
import time

import asyncpg
import pytest

from services.resize.sweeper import SWEEP_LOCK, sweep
from shared.storage import LocalStore, scratch_for
from tests.reliability.harness import wait_until
from tests.support import file_form, image_bytes

HOUR = 3600


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


async def upload_some(upload_client, count: int) -> list[dict]:
    images = []
    for n in range(count):
        data = image_bytes(size=(320, 200), color=(n * 20 % 256, 90, 200 - n))
        response = await upload_client.post("/api/images", data=file_form(data, f"{n}.jpg"))
        assert response.status == 201
        images.append(await response.json())
    return images


def store_of(storage_dir):
    return LocalStore(storage_dir), scratch_for(storage_dir)


def image_dir(storage_dir, image: dict):
    return storage_dir / image["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0]


@pytest.fixture
async def pool(database_url):
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def test_old_temp_files_and_orphan_dirs_go_young_ones_stay(upload_client, pool,
                                                                storage_dir):
    images = await upload_some(upload_client, 2)
    tmp = storage_dir / "tmp"
    old_upload, young_upload = tmp / "upload-old", tmp / "upload-young"
    one_dir = image_dir(storage_dir, images[0])
    old_partial, young_partial = one_dir / ".tmp-old", one_dir / ".tmp-young"
    for path in (old_upload, young_upload, old_partial, young_partial):
        path.write_bytes(b"half an image")
    old_orphan = storage_dir / "ab" / ("ab" + "0" * 30)
    young_orphan = storage_dir / "cd" / ("cd" + "1" * 30)
    for orphan in (old_orphan, young_orphan):
        orphan.mkdir(parents=True)
        (orphan / "original.jpg").write_bytes(b"from an upload that never committed")
    age(old_upload, HOUR)
    age(old_partial, HOUR)
    age(old_orphan / "original.jpg", HOUR)
    for old in one_dir.glob("[!.]*"):
        age(old, HOUR)  # old files with a row are no orphan

    report = await sweep(pool, *store_of(storage_dir), max_age=600)

    assert sorted(report.temp_files) == sorted([str(old_upload), str(old_partial)])
    assert report.orphan_dirs == [old_orphan.name]
    assert not old_upload.exists() and not old_partial.exists() and not old_orphan.exists()
    assert young_upload.exists() and young_partial.exists() and young_orphan.exists()
    for image in images:
        assert (storage_dir / image["original"]["url"].removeprefix("/i/")).exists()
    assert not report.lost_originals and not report.lost_variants and not report.refused


async def backdate(db) -> None:
    """Make every row look an hour old, as rows are by the time a periodic sweep sees them."""
    await db.execute("UPDATE images SET created_at = created_at - interval '1 hour'")
    await db.execute("UPDATE variants SET updated_at = updated_at - interval '1 hour'")


async def test_rows_without_original_go_lost_variants_are_made_again(upload_client, pool, db,
                                                                     storage_dir):
    gone, damaged, fine = await upload_some(upload_client, 3)
    (storage_dir / gone["original"]["url"].removeprefix("/i/")).unlink()
    large = storage_dir / damaged["variants"]["large"]["url"].removeprefix("/i/")
    large.unlink()

    # A row is only judged once it is well older than the sweep: an upload whose transaction
    # began before the walk may commit, file in place, during it.
    young = await sweep(pool, *store_of(storage_dir), max_age=600)
    assert young.lost_originals == [] and young.removed_rows == 0
    assert await db.fetchval("SELECT count(*) FROM images") == 3
    await backdate(db)

    dry = await sweep(pool, *store_of(storage_dir), max_age=600, dry_run=True)
    assert dry.lost_originals == [gone["name"]] and dry.removed_rows == 0
    assert await db.fetchval("SELECT count(*) FROM images") == 3

    report = await sweep(pool, *store_of(storage_dir), max_age=600)
    assert report.lost_originals == [gone["name"]] and report.removed_rows == 1
    assert report.lost_variants == [f"{damaged['name']}/large.jpg"]
    tokens = {r["token"] for r in await db.fetch("SELECT token FROM images")}
    assert tokens == {damaged["token"], fine["token"]}
    # Back to pending, so the reconciler (running in the resize app) makes it again.
    async def remade() -> bool:
        state = await db.fetchval(
            "SELECT state FROM variants v JOIN images i ON i.id = v.image_id "
            "WHERE i.token = $1 AND kind = 'large' AND format = 'base'", damaged["token"])
        return state == "ready" and large.exists()

    await wait_until(remade, 60, step=0.1, what="the lost variant made again")


async def test_a_volume_that_looks_unmounted_is_reported_not_repaired(upload_client, pool, db,
                                                                      storage_dir):
    await upload_some(upload_client, 10)

    async def background_done() -> bool:  # nothing writes to the volume while it is moved
        return not await db.fetchval(
            "SELECT count(*) FROM variants WHERE state NOT IN ('ready', 'dropped')")

    await wait_until(background_done, 120, what="every variant made")
    await backdate(db)
    elsewhere = storage_dir.with_name("moved")
    shutil.move(storage_dir, elsewhere)
    storage_dir.mkdir()  # an empty mount point
    try:
        report = await sweep(pool, *store_of(storage_dir), max_age=0)
        assert len(report.lost_originals) == 10 and report.removed_rows == 0
        assert report.refused and "mounted" in report.refused
        assert await db.fetchval("SELECT count(*) FROM images") == 10
    finally:
        shutil.rmtree(storage_dir)
        shutil.move(elsewhere, storage_dir)


async def test_one_sweeper_at_a_time(pool, database_url, db, storage_dir):
    other = await asyncpg.connect(database_url)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", SWEEP_LOCK)
        report = await sweep(pool, *store_of(storage_dir), max_age=600)
        assert report.skipped
    finally:
        await other.close()
    assert not (await sweep(pool, *store_of(storage_dir), max_age=600)).skipped
