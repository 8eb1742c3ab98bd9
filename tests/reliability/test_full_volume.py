"""A volume that fills up under the whole stack: the runner's data directory with a real
12 MiB tmpfs as its image volume, filled with real photos through the gateway.

What must hold: every answer is 201 or 507 (never another 5xx), a 507 names the full
storage and leaves no row and no temp file, every accepted image stays whole and served,
/readyz and /metrics report it, and deleting images makes room for uploads again.
"""

from __future__ import annotations

import shutil
import subprocess

import aiohttp
import asyncpg
import pytest

from tests.reliability.harness import (
    OwnStack,
    files_on_volume,
    get_image,
    image_size,
    measured,
    own_stack_env,
    post_image,
    unique_photo,
    wait_until,
)
from tests.support import open_dir

pytestmark = pytest.mark.e2e

VOLUME = 12 * 1024 * 1024
MIN_FREE = 2 * 1024 * 1024
UPLOADS = 40


def mount_tmpfs(path, size: int) -> None:
    path.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                              str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"this test mounts a tmpfs and needs root: {mounted.stderr.strip()}")


def unmount(path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)


async def test_a_full_volume_answers_507_and_breaks_nothing():
    data_dir = open_dir("kitteh-full-") / "var"
    volume = data_dir / "images"  # where the runner keeps the image volume
    mount_tmpfs(volume, VOLUME)
    stack = OwnStack(data_dir, own_stack_env(data_dir, KITTEH_MIN_FREE_BYTES=str(MIN_FREE)))
    try:
        stack.start()
        upload_port = stack.env["KITTEH_UPLOAD_PORT"]
        answers = []
        async with aiohttp.ClientSession() as http:
            for index in range(UPLOADS):
                answers.append(await post_image(http, stack.url, unique_photo(index)))
            statuses = [status for status, _ in answers]
            assert set(statuses) <= {201, 507}, statuses
            created = [body for status, body in answers if status == 201]
            refused = [body for status, body in answers if status == 507]
            assert created and refused, statuses
            for body in refused:
                assert body["error"]["code"] == "storage_full"
                assert "Storage is full" in body["error"]["message"]

            conn = await asyncpg.connect(stack.database_url)
            try:
                tokens = {r["token"] for r in await conn.fetch("SELECT token FROM images")}
            finally:
                await conn.close()
            assert tokens == {body["token"] for body in created}  # no row of a refusal
            assert not list((volume / "tmp").iterdir())  # no temp file of a refusal
            assert len(files_on_volume(volume)) == len(created)

            # Every accepted image is whole and served, its variants too (or the original
            # in their place, if the volume was too full to write one).
            for body in created:
                status, _, data = await get_image(http, stack.url + body["original"]["url"])
                assert status == 200
                assert image_size(data) == (body["original"]["width"],
                                            body["original"]["height"])
                for variant in body["variants"].values():
                    status, _, data = await get_image(http, stack.url + variant["url"])
                    assert status == 200 and image_size(data)

            # The no-JavaScript form gets the form again, worded for a person.
            async with http.post(f"{stack.url}/upload",
                                 data=unique_photo(UPLOADS + 1).form()) as response:
                assert response.status == 507
                assert "storage is full" in await response.text()

            async with http.get(f"http://127.0.0.1:{upload_port}/readyz") as response:
                readiness = await response.json()
                assert response.status == 503, readiness
                assert readiness["volume"].startswith("storage full:")
            async with http.get(f"http://127.0.0.1:{upload_port}/metrics") as response:
                text = await response.text()
            assert f'kitteh_upload_refusals_total{{code="storage_full"}} {len(refused) + 1}.0' \
                in text

            # Deleting makes room: the next upload is accepted again.
            for body in created[:len(created) // 2]:
                async with http.delete(
                        f"{stack.url}/api/images/{body['token']}",
                        headers={"Authorization": f"Bearer {body['delete_token']}"}) as r:
                    assert r.status == 204
            # The gateway's open-file cache holds descriptors of the deleted files until
            # they have been idle for its `inactive` (10 s), noticed as other files are
            # looked up: the space comes back then, with ordinary traffic going on.
            kept = created[len(created) // 2]["original"]["url"]
            needed = 2 * len(unique_photo(UPLOADS).data) + MIN_FREE

            async def room_again() -> bool:
                await get_image(http, stack.url + kept)
                return shutil.disk_usage(volume).free > needed

            freed_after = await wait_until(room_again, within=30, step=0.5,
                                           what="space of deleted images freed")
            status, body = await post_image(http, stack.url, unique_photo(UPLOADS))
            assert status == 201, body
        free = shutil.disk_usage(volume).free
        measured(f"full volume ({VOLUME >> 20} MiB tmpfs): {len(created)} of {UPLOADS} "
                 f"uploads accepted, {len(refused)} refused with 507 storage_full, no other "
                 f"status, no row or temp file left by a refusal; after deleting "
                 f"{len(created) // 2}, their space was back after {freed_after:.1f} s "
                 f"(the gateway's open-file cache) and uploads were accepted again "
                 f"({free >> 20} MiB free)")
    finally:
        status = stack.stop()
        unmount(volume)
        shutil.rmtree(data_dir.parent, ignore_errors=True)
    assert status == 0
