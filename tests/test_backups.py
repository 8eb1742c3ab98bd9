"""backup/restore against a DATABASE_URL server (the compose-like case) and the one race a
running backup has: an image deleted between the dump's snapshot and the file copy."""

from __future__ import annotations

import asyncio
import secrets
import urllib.parse
from pathlib import Path

import asyncpg
import pytest

from deploy import backups
from deploy.installation import CommandError, Installation
from services.resize.app import create_app as create_resize
from services.upload.app import create_app as create_upload
from shared.config import Env, ResizeConfig, StoreConfig, UploadConfig
from shared.storage import open_store
from tests.support import file_form, image_bytes


def other_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


async def wait_ready(db, count: int) -> None:
    # Every (size, format) finished: made, or dropped (a modern file larger than its base).
    for _ in range(1200):
        if await db.fetchval("SELECT count(*) FROM variants "
                             "WHERE state NOT IN ('ready', 'dropped')") == 0 \
                and await db.fetchval("SELECT count(*) FROM images") == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("variants not ready")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "tmp" not in p.relative_to(root).parts}


@pytest.fixture
async def empty_database(database_url, db):
    name = f"kitteh_restore_{secrets.token_hex(4)}"
    await db.execute(f"CREATE DATABASE {name}")
    yield other_database(database_url, name)
    await db.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_backup_and_restore_through_database_url(upload_client, db, database_url,
                                                        storage_dir, empty_database,
                                                        tmp_path, monkeypatch):
    tokens = []
    for shade in (10, 90, 170):
        response = await upload_client.post("/api/images", data=_form(shade))
        assert response.status == 201
        tokens.append((await response.json())["token"])
    await wait_ready(db, 3)
    gone = await db.fetchval("SELECT storage_key FROM images WHERE token = $1", tokens[0])

    # The race, made certain: the image is deleted (its files removed) after the snapshot
    # was taken and before its directory is copied.
    copy = backups._copy_images

    async def deleted_meanwhile(store, files, keys):
        await store.delete_image(gone)
        return await copy(store, files, keys)

    monkeypatch.setattr(backups, "_copy_images", deleted_meanwhile)
    source = Installation(tmp_path / "unused", database_url, storage_dir)
    manifest = await asyncio.to_thread(backups.backup, source, tmp_path / "backup")
    assert manifest["database"]["images"] == 3
    assert manifest["files"]["images"] == 2
    assert manifest["deleted_during_backup"] == [gone]
    assert not (tmp_path / "backup" / "files" / gone[:2] / gone).exists()

    target = Installation(tmp_path / "unused", empty_database, tmp_path / "restored")
    done = await asyncio.to_thread(backups.restore, target, tmp_path / "backup")
    assert done["images"] == 2
    restored = await asyncpg.connect(empty_database)
    try:
        assert sorted(await restored.fetch("SELECT token FROM images ORDER BY token")) == \
            sorted(await db.fetch("SELECT token FROM images WHERE storage_key <> $1 "
                                  "ORDER BY token", gone))
        # Every variant row comes back in the state it had (ready, or dropped as larger).
        assert dict(await restored.fetch("SELECT state, count(*) FROM variants GROUP BY state")) \
            == dict(await db.fetch("SELECT v.state, count(*) FROM variants v JOIN images i "
                                   "ON i.id = v.image_id WHERE i.storage_key <> $1 "
                                   "GROUP BY v.state", gone))
    finally:
        await restored.close()
    assert tree(tmp_path / "restored") == tree(storage_dir)

    # Never into something that holds data: neither the database nor the volume.
    with pytest.raises(CommandError, match="already has tables"):
        await asyncio.to_thread(backups.restore,
                                Installation(tmp_path / "u", empty_database, tmp_path / "new"),
                                tmp_path / "backup")
    with pytest.raises(CommandError, match="is not empty"):
        await asyncio.to_thread(backups.restore, target, tmp_path / "backup")
    with pytest.raises(CommandError, match="is not empty"):
        await asyncio.to_thread(backups.backup, source, tmp_path / "backup")


def _form(shade: int):
    return file_form(image_bytes("PNG", size=(120, 80), color=(shade, 40, 200)), "c.png",
                     "image/png")


@pytest.fixture
async def s3_upload_client(aiohttp_client, aiohttp_server, env, db, seaweedfs, tmp_path):
    """The upload and resize apps keeping their pictures in a bucket of their own."""
    s3_env = {**env, **seaweedfs.env(f"kitteh-backup-{secrets.token_hex(4)}")}
    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(s3_env)))
    config = UploadConfig.from_env({**s3_env, "KITTEH_RESIZE_URL": str(resize.make_url(""))})
    return await aiohttp_client(create_upload(config)), s3_env


async def test_a_backup_of_an_s3_installation_restores_into_either_mode(
        s3_upload_client, db, database_url, empty_database, tmp_path, seaweedfs):
    client, s3_env = s3_upload_client
    for shade in (30, 130):
        response = await client.post("/api/images", data=_form(shade))
        assert response.status == 201
    await wait_ready(db, 2)
    source_store = StoreConfig.from_env(Env(s3_env))
    source = Installation(tmp_path / "unused", database_url, source_store.storage_dir,
                          source_store)
    manifest = await asyncio.to_thread(backups.backup, source, tmp_path / "backup")
    assert manifest["files"]["images"] == 2
    in_bucket = {f.name: await read_all(source_store, f.name)
                 for f in await listing(source_store)}
    assert len(in_bucket) == manifest["files"]["files"]

    # Into the local mode: the same files on a volume.
    local = Installation(tmp_path / "unused", empty_database, tmp_path / "restored")
    done = await asyncio.to_thread(backups.restore, local, tmp_path / "backup")
    assert done["images"] == 2
    assert tree(tmp_path / "restored") == in_bucket

    # Into another bucket (with another empty database): the same objects.
    other_db = other_database(database_url, f"kitteh_restore_{secrets.token_hex(4)}")
    await db.execute(f"CREATE DATABASE {urllib.parse.urlsplit(other_db).path[1:]}")
    try:
        target_store = StoreConfig.from_env(Env({
            **s3_env, **seaweedfs.env(f"kitteh-restore-{secrets.token_hex(4)}")}))
        target = Installation(tmp_path / "unused", other_db, target_store.storage_dir,
                              target_store)
        await asyncio.to_thread(backups.restore, target, tmp_path / "backup")
        assert {f.name: await read_all(target_store, f.name)
                for f in await listing(target_store)} == in_bucket
        # A store that holds pictures is never restored into.
        with pytest.raises(CommandError, match="is not empty"):
            await asyncio.to_thread(backups.restore, Installation(
                tmp_path / "u", empty_database, target_store.storage_dir, target_store),
                tmp_path / "backup")
    finally:
        await db.execute(f"DROP DATABASE {urllib.parse.urlsplit(other_db).path[1:]} "
                         "WITH (FORCE)")


async def listing(config: StoreConfig) -> list:
    store = open_store(config)
    try:
        return [f async for f in store.list()]
    finally:
        await store.close()


async def read_all(config: StoreConfig, name: str) -> bytes:
    store = open_store(config)
    try:
        return b"".join([c async for c in store.stream(name)])
    finally:
        await store.close()
