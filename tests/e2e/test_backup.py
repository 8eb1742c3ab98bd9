"""``kitteh backup`` while Kitteh runs (an upload in flight), ``kitteh restore`` into a fresh
data directory, and a stack started on it serves the same JSON, pages and file bytes.
Also ``kitteh migrate`` and ``kitteh sweep`` with nothing but KITTEH_DATA_DIR set."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest

from deploy.postgres import LocalPostgres, cluster_dir, log_file_for
from tests.reliability.harness import (
    OwnStack,
    every_pair_finished,
    measured,
    own_stack_env,
    post_image,
    unique_photo,
    wait_until,
)
from tests.support import REPO, open_dir

pytestmark = pytest.mark.e2e

UPLOADS = 4
KITTEH = Path(sys.executable).with_name("kitteh")  # the console script (pyproject)


def command_env(data_dir: Path) -> dict[str, str]:
    """What an operator has: the data directory, nothing else of Kitteh's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("KITTEH_") and k != "DATABASE_URL"}
    return {**env, "KITTEH_DATA_DIR": str(data_dir)}


async def kitteh(*args: str, data_dir: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(KITTEH), *args, cwd=REPO, env=command_env(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 180)
    return process.returncode, output.decode()


async def snapshot(http: aiohttp.ClientSession, base: str) -> dict[str, bytes]:
    """Everything a visitor can see of every image: the list, each image's JSON, its page
    and the bytes of every file it links to."""
    seen: dict[str, bytes] = {}

    async def get(path: str) -> bytes:
        async with http.get(base + path) as response:
            assert response.status == 200, (path, response.status)
            data = await response.read()
        seen[path] = data
        return data

    listing = json.loads(await get("/api/images?limit=100"))
    for image in listing["images"]:
        body = json.loads(await get(f"/api/images/{image['token']}"))
        await get(body["page_url"])
        await get(body["download_url"])
        for url in [body["original"]["url"], *(v["url"] for v in body["variants"].values())]:
            await get(url)
    return seen


async def slow_upload(http: aiohttp.ClientSession, base: str,
                      release: asyncio.Event) -> tuple[int, dict]:
    """POST /api/images whose body stops half-way until ``release`` is set."""
    upload = unique_photo(99)
    boundary = "kittehbackupboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{upload.filename}\"\r\nContent-Type: {upload.content_type}\r\n\r\n"
            ).encode() + upload.data + f"\r\n--{boundary}--\r\n".encode()
    half = len(body) // 2

    async def chunks():
        yield body[:half]
        await release.wait()
        yield body[half:]

    async with http.post(f"{base}/api/images", data=chunks(), headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}"}) as response:
        return response.status, await response.json()


async def every_variant_ready(http: aiohttp.ClientSession, base: str, token: str) -> bool:
    async with http.get(f"{base}/api/images/{token}") as response:
        body = await response.json()
    return all(v["ready"] for v in body["variants"].values())


def postmaster_running(data_dir: Path) -> bool:
    cluster = cluster_dir(data_dir)
    return LocalPostgres(cluster, log_file_for(data_dir, cluster)).postmaster_state() \
        == "running"


async def test_backup_while_running_and_restore_into_a_fresh_data_dir():
    source = OwnStack.start_new("backup")
    work = open_dir("kitteh-restore-")
    backup_dir, fresh = work / "backup", work / "var"
    restored = None
    try:
        async with aiohttp.ClientSession() as http:
            tokens = []
            for number in range(UPLOADS):
                status, body = await post_image(http, source.url, unique_photo(number))
                assert status == 201, body
                tokens.append(body["token"])
            for token in tokens:
                await wait_until(lambda t=token: every_variant_ready(http, source.url, t), 30,
                                 what="variants ready")
            # The background too (AVIF, WebP, wider sizes): pages list what is on disk.
            await wait_until(lambda: every_pair_finished(source), 240,
                             what="every (size, format) made or dropped")

            # The backup runs while an upload is in flight: half its body sent, the rest
            # only once the backup is done. It is not in the backup, and does not hurt it.
            backup_done = asyncio.Event()
            in_flight = asyncio.create_task(slow_upload(http, source.url, backup_done))
            await asyncio.sleep(0.5)
            status, output = await kitteh("backup", str(backup_dir), data_dir=source.data_dir)
            backup_done.set()
            assert status == 0, output
            late_status, late = await in_flight
            assert late_status == 201, late
            manifest = json.loads((backup_dir / "manifest.json").read_text())
            assert manifest["format"] == "kitteh-backup" and manifest["version"] == 1
            assert manifest["database"]["images"] == UPLOADS
            assert manifest["files"]["images"] == manifest["database"]["images"]
            assert manifest["deleted_during_backup"] == []
            measured(f"backup of {manifest['database']['images']} images "
                     f"({manifest['files']['bytes'] / 1e6:.1f} MB of files) took "
                     f"{manifest['seconds']} s, an upload in flight meanwhile")

            # A second backup into the same directory is refused, not mixed in.
            status, output = await kitteh("backup", str(backup_dir), data_dir=source.data_dir)
            assert status == 1 and "is not empty" in output

            # What the restored copy must serve: the images the backup holds, seen now.
            before = await snapshot(http, source.url)
        assert source.stop() == 0

        # Restore refuses a data directory that is in use or not empty.
        status, output = await kitteh("restore", str(backup_dir), data_dir=source.data_dir)
        assert status == 1 and "not empty" in output, output
        status, output = await kitteh("restore", str(work), data_dir=fresh)
        assert status == 1 and "manifest.json" in output, output
        assert not fresh.exists()

        status, output = await kitteh("restore", str(backup_dir), data_dir=fresh)
        assert status == 0, output
        assert not postmaster_running(fresh)  # started for the restore, stopped after

        restored = OwnStack(fresh, own_stack_env(fresh))
        restored.start()
        async with aiohttp.ClientSession() as http:
            # A variant rendered after the snapshot is dumped as pending: the reconciler
            # marks it ready again once it finds the file.
            async with http.get(f"{restored.url}/api/images?limit=100") as response:
                listing = await response.json()
            for image in listing["images"]:
                await wait_until(lambda t=image["token"]: every_variant_ready(
                    http, restored.url, t), 30, what="variants ready after restore")
            await wait_until(lambda: every_pair_finished(restored), 240,
                             what="every (size, format) made or dropped after restore")
            after = await snapshot(http, restored.url)
        in_backup = json.loads(after["/api/images?limit=100"])["images"]
        assert len(in_backup) == manifest["database"]["images"]
        # Share URLs in pages are absolute on the host asked (no KITTEH_PUBLIC_URL here):
        # the restored stack listens on another port.
        expected = {path: data.replace(source.url.encode(), restored.url.encode())
                    for path, data in before.items() if not path.startswith("/api/images?")}
        # The in-flight upload may have committed after the backup's snapshot: compare the
        # images the backup holds, each JSON, page and file byte for byte.
        kept = {image["token"] for image in in_backup}
        for path, data in after.items():
            if path.startswith("/api/images?"):
                continue
            assert data == expected[path], path
        assert kept == set(tokens) and late["token"] not in kept
        assert restored.stop() == 0
        restored = None
    finally:
        source.stop_and_remove()
        if restored is not None:
            restored.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cluster_dir(fresh), ignore_errors=True)


async def test_migrate_and_sweep_with_only_the_data_dir():
    stack = OwnStack.start_new("commands")
    try:
        # While it runs: the runner's cluster is used, and left running.
        status, output = await kitteh("migrate", data_dir=stack.data_dir)
        assert status == 0 and "0 migration(s) applied" in output, output
        status, output = await kitteh("sweep", "--dry-run", data_dir=stack.data_dir)
        assert status == 0 and "kitteh sweep (dry run):" in output, output
        assert postmaster_running(stack.data_dir)
        assert stack.stop() == 0
        # Stopped: the cluster is started for the command and stopped again.
        for args in (("migrate",), ("sweep", "--dry-run")):
            status, output = await kitteh(*args, data_dir=stack.data_dir)
            assert status == 0, output
            assert "starting PostgreSQL" in output and "PostgreSQL stopped again" in output
            assert not postmaster_running(stack.data_dir)
        # A data directory with no installation in it: a clear refusal.
        status, output = await kitteh("migrate", data_dir=stack.data_dir / "nothing")
        assert status == 1 and "no Kitteh database in" in output, output
    finally:
        stack.stop_and_remove()
