"""The runner's own promises: clean stop, restart with data kept, a bad start reported."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from deploy.postgres import FALLBACK_ROOT, cluster_dir
from tests.stack import RunningStack, stack_env
from tests.support import open_dir, photo

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_stop_leaves_nothing_and_restart_keeps_data():
    data_dir = open_dir("kitteh-runner-") / "var"
    env = stack_env(data_dir)
    first = RunningStack(data_dir, env)
    first.start()
    pids = first.child_pids()
    assert set(pids) >= {"resize", "upload", "gallery", "nginx-gateway", "nginx-assets"}
    postgres_pid = int((data_dir / "postgres/data/postmaster.pid").read_text().split()[0])
    marker = f"{first.url}/healthz"
    assert urllib.request.urlopen(marker).status == 200
    # A crash: the runner dies without stopping anything.
    first.stop(signal.SIGKILL)
    assert all(alive(pid) for pid in pids.values())

    second = RunningStack(data_dir, env)
    second.start()  # cleans the leftovers through their pid files, reuses the cluster
    assert not any(alive(pid) for pid in pids.values())
    assert "stopped leftovers of an earlier run" in "".join(second.output)
    assert second.stop() == 0
    assert not any(alive(pid) for pid in second.child_pids().values())
    for pid in (*pids.values(), postgres_pid):
        assert not alive(pid)
    assert not (data_dir / "postgres/data/postmaster.pid").exists()
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_a_child_dying_while_starting_stops_the_runner_with_its_log():
    """Before the stack is up a death is a bad setting, which restarting would not fix: the
    runner says so and exits non-zero. (Deaths after that are healed:
    tests/reliability/test_supervision.py.)"""
    data_dir = open_dir("kitteh-runner-") / "var"
    running = RunningStack(data_dir, stack_env(data_dir, KITTEH_RESIZE_QUEUE="-1"))
    with pytest.raises(RuntimeError, match="did not come up"):
        running.start()
    assert running.stop() == 1
    output = "".join(running.output)
    assert "resize exited with status 2 while starting" in output
    assert "KITTEH_RESIZE_QUEUE" in output  # the log tail names the bad setting
    assert not any(alive(pid) for pid in running.child_pids().values())
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def test_a_second_runner_is_refused_and_leaves_the_first_ones_lock():
    data_dir = open_dir("kitteh-runner-") / "var"
    env = stack_env(data_dir)
    first = RunningStack(data_dir, env)
    first.start()
    try:
        kitteh = Path(sys.executable).with_name("kitteh")  # `kitteh run`, the console script
        second = subprocess.run([str(kitteh), "run"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1
        assert f"another runner (pid {first.process.pid}) is using" in second.stderr
        lock = data_dir / "run" / "runner.lock"
        assert lock.read_text().strip() == str(first.process.pid)
    finally:
        assert first.stop() == 0
    shutil.rmtree(data_dir.parent, ignore_errors=True)


def upload_photo(base_url: str, path) -> dict:
    boundary = "kittehboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{path.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{base_url}/api/images", data=body, method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def test_runs_from_a_directory_the_postgres_user_cannot_enter():
    """A clone in /root (mode 0700) run as root: PostgreSQL refuses to run as root and its
    user cannot enter /root, so the cluster lives under /var/lib/kitteh instead."""
    private = open_dir("kitteh-private-")
    private.chmod(0o700)
    data_dir = private / "var"
    running = RunningStack(data_dir, stack_env(data_dir))
    running.start()
    try:
        expected = cluster_dir(data_dir)
        if os.geteuid() == 0:
            assert expected.parent == FALLBACK_ROOT
        assert (expected / "data" / "PG_VERSION").exists()
        assert f"starting PostgreSQL in {expected}" in "".join(running.output)
        assert urllib.request.urlopen(f"{running.url}/api/images").status == 200
        # nginx must read the private volume and assets too, not only the services.
        body = upload_photo(running.url, photo("p03_coffee.png"))
        for url in (body["original"]["url"], body["variants"]["tiny"]["url"]):
            with urllib.request.urlopen(f"{running.url}{url}") as response:
                assert response.status == 200 and response.headers["Content-Type"] == "image/png"
        home = urllib.request.urlopen(f"{running.url}/").read().decode()
        css = re.search(r'href="(/assets/[^"]+\.css)"', home).group(1)
        assert urllib.request.urlopen(f"{running.url}{css}").status == 200
    finally:
        assert running.stop() == 0
    shutil.rmtree(expected, ignore_errors=True)
    shutil.rmtree(private, ignore_errors=True)
