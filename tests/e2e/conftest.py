"""Stacks for the end-to-end tests besides the session's open one (tests/conftest.py)."""

from __future__ import annotations

import shutil

import pytest

from tests.stack import RunningStack, stack_env
from tests.support import open_dir


@pytest.fixture(scope="session")
def keys_stack():
    """A stack in keys mode with the Newest grid and list API turned off (a private host)."""
    data_dir = open_dir("kitteh-keys-") / "var"
    running = RunningStack(data_dir, stack_env(data_dir, KITTEH_UPLOADS="keys",
                                               KITTEH_NEWEST="off"))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)
