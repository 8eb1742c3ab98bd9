"""Helpers for the access tests: a stack in keys mode, its database, the keys command."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys

import aiohttp
import asyncpg

from deploy.postgres import cluster_dir, socket_url
from tests.stack import RunningStack
from tests.support import REPO, image_bytes

_colors = itertools.count(1)


def fresh_jpeg() -> bytes:
    """A JPEG no other upload of the session has (uploads are deduplicated by their bytes)."""
    n = next(_colors)
    return image_bytes("JPEG", size=(80 + n % 50, 60), color=(n * 7 % 256, n * 13 % 256, 99))


def upload_form(data: bytes | None = None, **fields: str) -> aiohttp.FormData:
    """A multipart upload: the text fields first (as the page sends them), then the file."""
    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", io.BytesIO(data or fresh_jpeg()), filename="cat.jpg",
                   content_type="image/jpeg")
    return form


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def kitteh(stack: RunningStack, *args: str) -> subprocess.CompletedProcess:
    """The operator's command, finding the stack's embedded database by KITTEH_DATA_DIR."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["KITTEH_DATA_DIR"] = str(stack.data_dir)
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def create_key(stack: RunningStack, name: str, admin: bool = False) -> str:
    result = kitteh(stack, "keys", "create", name, *(["--admin"] if admin else []))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


async def stack_db(stack: RunningStack) -> asyncpg.Connection:
    return await asyncpg.connect(socket_url(cluster_dir(stack.data_dir)))
