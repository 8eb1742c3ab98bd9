"""A full volume, for real: a 2 MiB tmpfs as KITTEH_STORAGE_DIR of apps built by their
factories. Uploads that do not fit answer 507 and leave nothing; /readyz and /metrics say so.

Mounting needs root (which the tests have here and in CI); without it the test fails and
says why rather than skipping.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess

import pytest
from PIL import Image

from services.resize.app import create_app as create_resize
from services.upload.app import create_app as create_upload
from shared.config import ResizeConfig, UploadConfig
from tests.support import file_form, image_bytes, photo
from tests.test_metrics import scrape, value

VOLUME = 2 * 1024 * 1024
MIN_FREE = 512 * 1024


@pytest.fixture
def small_volume(tmp_path):
    mount_point = tmp_path / "images"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME},mode=0755",
                              "tmpfs", str(mount_point)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a 2 MiB tmpfs and needs root: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.fixture
async def full_upload(aiohttp_client, aiohttp_server, env, db, small_volume):
    settings = {**env, "KITTEH_STORAGE_DIR": str(small_volume),
                "KITTEH_MIN_FREE_BYTES": str(MIN_FREE)}
    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(settings)))
    return await aiohttp_client(create_upload(UploadConfig.from_env(
        {**settings, "KITTEH_RESIZE_URL": str(resize.make_url(""))})))


def noise_png(side: int) -> bytes:
    """Random pixels: PNG cannot compress them, so the file is about 3 bytes a pixel."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def files_on(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def post(client, data: bytes, name: str):
    response = await client.post("/api/images", data=file_form(data, name))
    return response.status, await response.json()


async def test_full_volume_answers_507_and_keeps_nothing(full_upload, db, small_volume):
    # Larger than the whole volume: the disk fills while the upload is being received.
    status, body = await post(full_upload, noise_png(1000), "huge.png")
    assert status == 507, body
    assert body["error"]["code"] == "storage_full"
    assert "Storage is full" in body["error"]["message"]

    # Fits as received (1.4 MiB), but not twice: the disk fills while metadata is removed.
    status, body = await post(full_upload, photo("j03_seeding.jpg").read_bytes(), "seed.jpg")
    assert status == 507, body
    assert body["error"]["code"] == "storage_full"

    assert await db.fetchval("SELECT count(*) FROM images") == 0
    assert files_on(small_volume) == []  # no temp file, no directory of a half upload

    # Nothing is broken: a small picture still fits and gets its variants.
    status, body = await post(full_upload, image_bytes(size=(120, 90)), "small.jpg")
    assert status == 201, body
    assert all(v["ready"] for v in body["variants"].values())

    samples = await scrape(full_upload)
    assert value(samples, "kitteh_upload_refusals_total", code="storage_full") == 2
    assert value(samples, "kitteh_uploads_total", outcome="refused", format="unknown") == 2


async def test_readyz_and_metrics_report_free_space(full_upload, small_volume):
    ready = await full_upload.get("/readyz")
    assert ready.status == 200, await ready.text()

    filler = small_volume / "filler"
    filler.write_bytes(b"\0" * (VOLUME - MIN_FREE // 2))  # leaves less than MIN_FREE
    try:
        free = shutil.disk_usage(small_volume).free
        assert free < MIN_FREE
        ready = await full_upload.get("/readyz")
        body = await ready.json()
        assert ready.status == 503
        assert body["volume"].startswith("storage full:"), body
        assert "KITTEH_MIN_FREE_BYTES" in body["volume"]
        assert body["database"] == "ok"
        assert value(await scrape(full_upload), "kitteh_storage_free_bytes") == free
    finally:
        filler.unlink()
    ready = await full_upload.get("/readyz")
    assert ready.status == 200
    assert value(await scrape(full_upload), "kitteh_storage_free_bytes") > VOLUME - MIN_FREE
