"""Access pieces through the services' own factories: the keys command, upload options, the
upload gate in keys mode, KITTEH_NEWEST=off and the ShareX file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest
from aiohttp import web

from services.gallery.app import create_app as create_gallery
from services.resize.app import create_app as create_resize
from services.upload.app import create_app as create_upload
from services.upload.options import parse_options
from shared.config import ConfigError, GalleryConfig, ResizeConfig, UploadConfig
from shared.errors import BadRequest
from shared.upload_keys import create_key
from tests.support import REPO, file_form, image_bytes


@pytest.fixture
async def no_keys(db):
    await db.execute("DELETE FROM upload_keys")
    return db


def kitteh(database_url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.cli", *args], cwd=REPO,
                          env={**os.environ, "DATABASE_URL": database_url},
                          capture_output=True, text=True, timeout=60)


async def test_keys_command_prints_the_key_once_and_stores_only_its_hash(database_url, no_keys):
    created = kitteh(database_url, "keys", "create", "alice", "--admin")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert len(key) == 43 and key.replace("-", "").replace("_", "").isalnum()  # 256 bits
    row = await no_keys.fetchrow("SELECT key_hash, admin FROM upload_keys WHERE name = 'alice'")
    assert bytes(row["key_hash"]) == hashlib.sha256(key.encode()).digest() and row["admin"]
    again = kitteh(database_url, "keys", "create", "alice")
    assert again.returncode == 1 and "exists already" in again.stderr
    listed = kitteh(database_url, "keys", "list")
    assert "alice" in listed.stdout and key not in listed.stdout
    assert kitteh(database_url, "keys", "revoke", "alice").returncode == 0
    assert await no_keys.fetchval("SELECT revoked_at FROM upload_keys WHERE name = 'alice'")
    assert kitteh(database_url, "keys", "revoke", "nobody").returncode == 1


@pytest.mark.parametrize("fields", [
    {"visibility": "private"}, {"expires_in": "59"}, {"expires_in": "31536001"},
    {"expires_in": "1e3"}, {"expires_in": "-60"}, {"expires_in": "²"}, {"expires_in": "9" * 50},
])
def test_bad_options_are_refused(fields):
    with pytest.raises(BadRequest):
        parse_options(fields)


def test_options_defaults_and_bounds():
    assert parse_options({}).visibility == "public" and parse_options({}).expires_in is None
    assert parse_options({"expires_in": ""}).expires_in is None  # the form's "never"
    assert parse_options({"visibility": "Unlisted", "expires_in": "60"}).expires_in == 60
    assert parse_options({"expires_in": "31536000"}).expires_in == 31536000


def test_unknown_modes_stop_the_service_with_the_variable_named(env):
    with pytest.raises(ConfigError, match="KITTEH_UPLOADS"):
        UploadConfig.from_env({**env, "KITTEH_UPLOADS": "closed"})
    with pytest.raises(ConfigError, match="KITTEH_NEWEST"):
        GalleryConfig.from_env({**env, "KITTEH_NEWEST": "maybe"})


@pytest.fixture
async def keys_upload(aiohttp_client, aiohttp_server, env, no_keys):
    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(env)))
    config = UploadConfig.from_env({**env, "KITTEH_RESIZE_URL": str(resize.make_url("")),
                                    "KITTEH_UPLOADS": "keys"})
    app: web.Application = create_upload(config)
    return await aiohttp_client(app)


async def test_keys_mode_refuses_before_the_file_is_written(keys_upload, no_keys, storage_dir):
    response = await keys_upload.post("/api/images", data=file_form(image_bytes()))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="kitteh"'
    assert not [p for p in storage_dir.rglob("*") if p.is_file()]
    _, secret = await create_key(no_keys, "carol", admin=False)
    form = file_form(image_bytes(color=(1, 2, 3)))
    response = await keys_upload.post("/api/images", data=form,
                                      headers={"Authorization": f"Bearer {secret}"})
    assert response.status == 201
    assert await no_keys.fetchval("SELECT count(*) FROM images WHERE key_id IS NOT NULL") == 1


async def test_newest_off_hides_the_grid_and_the_list(aiohttp_client, env, db):
    config = GalleryConfig.from_env({**env, "KITTEH_NEWEST": "off", "KITTEH_ACCEL_REDIRECT": "0"})
    client = await aiohttp_client(create_gallery(config))
    response = await client.get("/api/images")
    assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
    home = await (await client.get("/")).text()
    assert 'id="grid"' not in home and 'name="file"' in home


async def test_sharex_file_without_a_key_has_no_headers(gallery_client):
    response = await gallery_client.get("/api/sharex.sxcu", headers={"Host": "cats.example"})
    body = await response.json()
    assert "Headers" not in body and body["RequestURL"] == "http://cats.example/api/images"
    response = await gallery_client.get("/api/sharex.sxcu",
                                        headers={"Authorization": "Bearer not a key!"})
    assert response.status == 400
