"""Fixtures: a real PostgreSQL (started here unless DATABASE_URL names one), migrated with
the same command users run, and the three apps built by their own factories."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import asyncpg
import pytest

from deploy.postgres import LocalPostgres
from services.gallery.app import create_app as create_gallery
from services.resize.app import create_app as create_resize
from services.upload.app import create_app as create_upload
from shared.config import GalleryConfig, ResizeConfig, UploadConfig

# No process outlives the run: each test's leftovers stopped at its teardown, the session's
# checked at its end (tests/leaks.py).
from tests import leaks
from tests.leaks import (  # noqa: F401
    pytest_configure,
    pytest_report_header,
    pytest_sessionfinish,
    pytest_terminal_summary,
    stop_what_the_test_started,
)
from tests.seaweedfs import seaweedfs  # noqa: F401  (the session's S3 server)
from tests.stack import RunningStack, stack_env
from tests.support import REPO, open_dir


@pytest.fixture(scope="session")
def database_url():
    given = os.environ.get("DATABASE_URL")
    base = None
    cluster = None
    if given:
        url = given
    else:
        base = open_dir("kitteh-pg-")
        cluster = LocalPostgres(base / "postgres", base / "postgres.log")
        cluster.ensure_cluster()
        cluster.start()
        url = cluster.url
    subprocess.run([sys.executable, "-m", "shared.migrate"], check=True, cwd=REPO,
                   env={**os.environ, "DATABASE_URL": url})
    yield url
    if cluster is not None:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def db(database_url):
    """A connection for checking state; every test starts from empty tables."""
    conn = await asyncpg.connect(database_url)
    await conn.execute("TRUNCATE images, albums RESTART IDENTITY CASCADE")
    yield conn
    await conn.close()


@pytest.fixture
def storage_dir(tmp_path):
    return tmp_path / "images"


@pytest.fixture
def env(database_url, storage_dir):
    return {
        "DATABASE_URL": database_url,
        "KITTEH_STORAGE_DIR": str(storage_dir),
        "KITTEH_RECONCILE_INTERVAL": "1",
    }


@pytest.fixture
async def resize_client(aiohttp_client, env, db):
    return await aiohttp_client(create_resize(ResizeConfig.from_env(env)))


@pytest.fixture
async def upload_client(aiohttp_client, aiohttp_server, env, db):
    """The upload app, talking to a resize app on a real socket."""
    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(env)))
    config = UploadConfig.from_env({**env, "KITTEH_RESIZE_URL": str(resize.make_url(""))})
    return await aiohttp_client(create_upload(config))


@pytest.fixture
async def gallery_client(aiohttp_client, env, db):
    config = GalleryConfig.from_env({**env, "KITTEH_ACCEL_REDIRECT": "0"})
    return await aiohttp_client(create_gallery(config))


@pytest.fixture(scope="session")
def stack():
    """The whole stack, started once by the local runner for the tests that go through the
    gateway (end-to-end and browser tests), stopped at the end of the session."""
    data_dir = open_dir("kitteh-e2e-") / "var"
    running = RunningStack(data_dir, stack_env(data_dir))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_stack(seaweedfs):  # noqa: F811  (the fixture imported above)
    """The whole stack with KITTEH_STORAGE=s3: pictures in a bucket of the SeaweedFS (made by
    Kitteh at start), upload temp files alone on the local disk."""
    data_dir = open_dir("kitteh-s3-") / "var"
    running = RunningStack(data_dir, stack_env(data_dir, **seaweedfs.env(bucket="kitteh-stack")))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture(params=["local", "s3"])
def any_stack(request):
    """The local-mode stack, then the S3-mode one: a module whose tests must hold in both
    storage modes overrides ``stack`` with this."""
    running = request.getfixturevalue("stack" if request.param == "local" else "s3_stack")
    # Started (on first use) from inside this test, but a session fixture's to stop: not
    # among what tests.leaks stops at the end of the test.
    leaks.stopped(running)
    return running


@pytest.fixture(scope="session")
def keys_stack():
    """A second stack, in keys mode (KITTEH_UPLOADS=keys) with the Newest grid and the list
    API turned off (KITTEH_NEWEST=off): a private host. For the access tests."""
    data_dir = open_dir("kitteh-keys-") / "var"
    running = RunningStack(data_dir, stack_env(data_dir, KITTEH_UPLOADS="keys",
                                               KITTEH_NEWEST="off"))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)
