"""/readyz reports the database and the volume; /healthz stays cheap (no database, no disk)."""

from __future__ import annotations

import shutil


async def test_readyz_needs_the_volume_for_a_service_that_writes_it(resize_client, storage_dir):
    response = await resize_client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "database": "ok", "storage": "local",
                                     "store": "ok", "volume": "ok"}

    moved = storage_dir.with_name("unmounted")
    shutil.move(storage_dir, moved)
    try:
        response = await resize_client.get("/readyz")
        assert response.status == 503
        body = await response.json()
        assert body["database"] == "ok" and "not mounted" in body["volume"]
        assert (await resize_client.get("/healthz")).status == 200  # alive, just not ready
    finally:
        shutil.move(moved, storage_dir)
    assert (await resize_client.get("/readyz")).status == 200


async def test_a_service_that_only_reads_the_volume_reports_it(gallery_client, storage_dir):
    shutil.rmtree(storage_dir, ignore_errors=True)
    response = await gallery_client.get("/readyz")
    assert response.status == 200  # the gallery hands files to nginx: still ready
    assert "not mounted" in (await response.json())["volume"]
