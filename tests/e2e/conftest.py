"""One stack for the end-to-end tests that share it (started once, stopped at the end)."""

from __future__ import annotations

import shutil

import pytest

from tests.stack import RunningStack, stack_env
from tests.support import open_dir


@pytest.fixture(scope="session")
def stack():
    data_dir = open_dir("kitteh-e2e-") / "var"
    running = RunningStack(data_dir, stack_env(data_dir))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)
