"""``kitteh backup DIR`` and ``kitteh restore DIR``: the database and the files, together.

A backup directory holds::

    database.dump    pg_dump, custom format (pg_restore reads it)
    files/ab/ab12…/  the images' files the dump's rows refer to, copied from the store (the
                     volume or the S3 bucket: a backup restores into either)
    manifest.json    written last: a directory without one is an unfinished backup

Consistent while Kitteh runs, without stopping anything:

1. One REPEATABLE READ transaction exports its snapshot, lists the storage keys it sees, and
   pg_dump dumps exactly that snapshot (``--snapshot``): the list and the dump agree row
   for row, whatever commits meanwhile.
2. Then the files of each listed key are copied from the store. Files are content-addressed and
   never rewritten (a key names the same bytes forever, and every file is written to a
   temp name and renamed into place), so a file copied later is the file the row meant.
   Every file a dumped row needs existed before its row committed, hence before the
   snapshot, hence before the copy: the copy is complete. Uploads that commit after the
   snapshot are not in the dump and their directories are not copied (no strays).
   A variant rendered after the snapshot may be copied while its dumped row still says
   ``pending``: after a restore, the reconciler marks it ready again (harmless).
3. One race is left: an image deleted between the snapshot and the copy. Its row is in the
   dump but its files are gone. That deletion was asked for and acknowledged, so the
   restore honours it: the manifest lists such keys and the restore deletes their rows.

Restore goes into an empty installation only (an empty or missing data directory, or an
empty DATABASE_URL database and volume): it never merges into, or overwrites, live data.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psycopg
from psycopg import IsolationLevel

from deploy.installation import CommandError, Installation
from shared.config import StoreConfig
from shared.formats import mime_types
from shared.migrate import apply_migrations
from shared.storage import (
    KEY_PATTERN,
    ImageStore,
    Scratch,
    file_name,
    key_prefix,
    open_store,
    scratch_for,
)

FORMAT = "kitteh-backup"
VERSION = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"
FILES = "files"


@dataclass
class Copied:
    images: int = 0
    files: int = 0
    bytes: int = 0


def kitteh_version() -> str:
    try:
        return metadata.version("kitteh")
    except metadata.PackageNotFoundError:
        return "unknown"


def _run(command: list[str | os.PathLike], what: str) -> None:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True)
    if result.returncode != 0:
        raise CommandError(f"{what} failed (status {result.returncode}):\n{result.stderr}")


def _is_empty(directory: Path) -> bool:
    return not directory.exists() or not any(directory.iterdir())


def _store_is_empty(config: StoreConfig) -> bool:
    """No image file in the store (scratch files and empty directories do not count)."""

    async def look(store: ImageStore) -> bool:
        async for _found in store.list():
            return False
        return True

    return asyncio.run(_with_store(config, look))


async def _with_store(config: StoreConfig, work):
    store = open_store(config)
    try:
        await store.check()
        return await work(store)
    finally:
        await store.close()


# -- backup ---------------------------------------------------------------------------------


def backup(installation: Installation, target: Path) -> dict:
    target = target.expanduser().resolve()
    if not _is_empty(target):
        raise CommandError(f"{target} is not empty: give a new or empty directory for the "
                           "backup (backups are never mixed or overwritten)")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = time.monotonic()
    # The URLs Kitteh uses (a socket as ?host=/dir) are libpq URIs: psycopg and pg_dump
    # take them as they are.
    with installation.database() as url:
        pg_dump = installation.client_program("pg_dump")
        with psycopg.connect(url, autocommit=False) as conn:
            conn.isolation_level = IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot()")
                snapshot = cur.fetchone()[0]
                cur.execute("SELECT storage_key FROM images ORDER BY storage_key")
                keys = [row[0] for row in cur.fetchall()]
                cur.execute("SELECT count(*) FROM variants")
                variants = cur.fetchone()[0]
                cur.execute("SHOW server_version")
                server_version = cur.fetchone()[0]
            # The snapshot lives as long as this transaction: dump while it is open.
            _run([pg_dump, "--format=custom", f"--snapshot={snapshot}",
                  f"--file={target / DUMP}", f"--dbname={url}"], "pg_dump")
            conn.rollback()
    copied, deleted = asyncio.run(_with_store(
        installation.store_config, lambda store: _copy_images(store, target / FILES, keys)))
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "kitteh_version": kitteh_version(),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "postgres_server_version": server_version,
        "database": {"file": DUMP, "bytes": (target / DUMP).stat().st_size,
                     "images": len(keys), "variants": variants},
        "files": {"directory": FILES, "images": copied.images, "files": copied.files,
                  "bytes": copied.bytes},
        # Rows in the dump whose image was deleted before its files were copied: the restore
        # deletes them too (the deletion was acknowledged to its user).
        "deleted_during_backup": deleted,
        "seconds": round(time.monotonic() - started, 2),
    }
    temp = target / f".{MANIFEST}.tmp"
    temp.write_text(json.dumps(manifest, indent=2) + "\n")
    temp.rename(target / MANIFEST)
    return manifest


async def _copy_images(store: ImageStore, files: Path,
                       keys: list[str]) -> tuple[Copied, list[str]]:
    copied, deleted = Copied(), []
    for key in keys:
        if not KEY_PATTERN.match(key):
            raise CommandError(f"unexpected storage key in the database: {key!r}")
        dest = files / key[:2] / key
        dest.mkdir(parents=True, exist_ok=True)
        # Only finished files are listed (a write in progress is a temp file or an
        # unfinished multipart upload, invisible here).
        for found in sorted([f async for f in store.list(key_prefix(key))],
                            key=lambda f: f.name):
            target = dest / found.name.rsplit("/", 1)[1]
            try:
                await _download(store, found.name, target)
            except FileNotFoundError:
                continue  # removed meanwhile (its image deleted: checked below)
            copied.files += 1
            copied.bytes += target.stat().st_size
        if not any(dest.glob("original.*")):
            shutil.rmtree(dest)
            deleted.append(key)
        else:
            copied.images += 1
    return copied, deleted


# -- restore --------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict:
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise CommandError(f"{source} holds no {MANIFEST}: not a Kitteh backup, or an "
                           "unfinished one") from None
    except json.JSONDecodeError as error:
        raise CommandError(f"{source / MANIFEST} is damaged: {error}") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise CommandError(f"{source / MANIFEST} is not a version {VERSION} Kitteh backup")
    if not (source / manifest["database"]["file"]).is_file():
        raise CommandError(f"{source} lacks its database dump {manifest['database']['file']}")
    return manifest


def _refuse_unless_empty(installation: Installation) -> None:
    if installation.database_url is None:
        data = installation.data_dir
        if not _is_empty(data):
            present = ", ".join(sorted(p.name for p in data.iterdir())[:8])
            raise CommandError(f"{data} is not empty ({present}): restore goes into an empty "
                               "data directory only; choose a new KITTEH_DATA_DIR (or move "
                               "this one away)")
        if installation.cluster_dir.exists() and any(installation.cluster_dir.iterdir()):
            raise CommandError(f"a PostgreSQL cluster for {data} already exists at "
                               f"{installation.cluster_dir}; remove it or choose another "
                               "KITTEH_DATA_DIR")
    if not _store_is_empty(installation.store_config):
        store = open_store(installation.store_config)
        raise CommandError(f"the image store ({store.describe()}) is not empty")


def restore(installation: Installation, source: Path) -> dict:
    source = source.expanduser().resolve()
    manifest = read_manifest(source)
    _refuse_unless_empty(installation)
    if installation.database_url is None:
        installation.data_dir.mkdir(parents=True, exist_ok=True)
    with installation.database(create=True) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                  "current_schema()").fetchone()[0]
        if tables:
            raise CommandError("the database already has tables: restore goes into an empty "
                               "database only")
        _run([installation.client_program("pg_restore"), "--no-owner", "--no-privileges",
              "--exit-on-error", "--single-transaction", f"--dbname={url}",
              source / manifest["database"]["file"]], "pg_restore")
        with psycopg.connect(url, autocommit=True) as conn:
            deleted = manifest.get("deleted_during_backup", [])
            if deleted:
                conn.execute("DELETE FROM images WHERE storage_key = ANY(%s)", (deleted,))
            images = conn.execute("SELECT count(*) FROM images").fetchone()[0]
        expected = manifest["database"]["images"] - len(deleted)
        if images != expected:
            raise CommandError(f"the restored database has {images} images, the backup "
                               f"says {expected}")
        applied = apply_migrations(url)  # an older backup's schema, brought up to date
        files = _backup_files(source / manifest["files"]["directory"])
        scratch = scratch_for(installation.store_config.storage_dir)
        copied = asyncio.run(_with_store(
            installation.store_config, lambda store: _copy_back(files, store, scratch)))
    return {"images": images, "files": copied.files, "bytes": copied.bytes,
            "migrations_applied": applied}


async def _download(store: ImageStore, name: str, target: Path) -> None:
    """One stored file to a local file, streamed (an original may be large)."""
    partial = target.with_name(f".{target.name}.part")
    try:
        with partial.open("wb") as out:
            async for chunk in store.stream(name):
                out.write(chunk)
        partial.rename(target)
    finally:
        partial.unlink(missing_ok=True)


def _backup_files(files: Path) -> list[tuple[str, Path]]:
    """(stored name, file) of every file in a backup's files directory."""
    found = []
    for shard in sorted(files.iterdir()) if files.is_dir() else []:
        for image_dir in sorted(shard.iterdir()):
            if not KEY_PATTERN.match(image_dir.name) or image_dir.name[:2] != shard.name:
                raise CommandError(f"unexpected directory in the backup: {image_dir}")
            for path in sorted(image_dir.iterdir()):
                stem, _, extension = path.name.partition(".")
                found.append((file_name(image_dir.name, stem, extension), path))
    return found


async def _copy_back(files: list[tuple[str, Path]], store: ImageStore,
                     scratch: Scratch) -> Copied:
    """Put each file into the store through a scratch copy: a store may move what it is
    given (the local one renames), and the backup must stay whole."""
    copied = Copied()
    keys = set()
    loop = asyncio.get_running_loop()
    for name, path in files:
        copy = await loop.run_in_executor(None, _scratch_copy, path, scratch)
        try:
            await store.put_file(name, copy, _content_type(name.rsplit(".", 1)[1]))
        finally:
            copy.unlink(missing_ok=True)
        keys.add(name.split("/")[1])
        copied.files += 1
        copied.bytes += path.stat().st_size
    copied.images = len(keys)
    return copied


def _scratch_copy(path: Path, scratch: Scratch) -> Path:
    scratch.prepare()
    copy = scratch.new_file(prefix="restore-")
    shutil.copyfile(path, copy)
    return copy


def _content_type(extension: str) -> str:
    return next((t for t, extensions in mime_types().items() if extension in extensions),
                "application/octet-stream")
