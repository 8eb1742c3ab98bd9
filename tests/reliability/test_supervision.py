"""The runner heals: a service (or the gateway) killed with SIGKILL, as the OOM killer does,
is restarted while the rest keeps serving; a service that crashes on every start backs off
instead of looping hot, and the runner still stops cleanly while a restart is pending."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from tests.reliability.harness import (
    OwnStack,
    measured,
    post_image,
    unique_photo,
    wait_until,
)

pytestmark = pytest.mark.e2e

HEAL_WITHIN = 30  # seconds, the bar


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def blocked_signals(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigBlk line")


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


def runner_said(stack: OwnStack, text: str) -> int:
    return sum(text in line for line in list(stack.output))


async def every_variant_ready(http: aiohttp.ClientSession, stack: OwnStack, token: str) -> bool:
    async with http.get(f"{stack.url}/api/images/{token}") as response:
        body = await response.json()
    return bool(body["variants"]) and all(v["ready"] for v in body["variants"].values())


async def test_killed_services_and_gateway_heal_and_uploads_get_every_variant():
    stack = OwnStack.start_new("heal")
    try:
        async with aiohttp.ClientSession() as http:
            for number, name in enumerate(("resize", "upload", "gallery", "nginx-gateway")):
                old = stack.child_pids()[name]
                killed = time.monotonic()
                os.kill(old, signal.SIGKILL)

                async def healed(name=name, old=old) -> bool:
                    pid = stack.child_pids().get(name, old)
                    return pid != old and alive(pid) and \
                        runner_said(stack, f"{name} is back") > 0 and \
                        status_of(f"{stack.url}/api/images") == 200

                took = await wait_until(healed, HEAL_WITHIN, what=f"{name} healed")
                measured(f"{name} killed with SIGKILL: serving again after {took:.1f} s")
                assert stack.process.poll() is None, "".join(stack.output[-30:])
                assert f"{name} killed by SIGKILL" in "".join(stack.output)
                assert time.monotonic() - killed < HEAL_WITHIN
                # The new process takes SIGTERM: the runner's stop must reach it.
                assert blocked_signals(stack.child_pids()[name]) == 0

                # An upload after each heal gets all of its variants, through the gateway.
                status, body = await post_image(http, stack.url, unique_photo(number))
                assert status == 201, body
                await wait_until(lambda body=body: every_variant_ready(http, stack,
                                                                       body["token"]),
                                 30, what="every variant ready")
                for variant in body["variants"].values():
                    async with http.get(stack.url + variant["url"]) as response:
                        assert response.status == 200
                        assert response.headers.get("Cache-Control") != "no-store"
    finally:
        assert stack.stop_and_remove() == 0


def hold_port(port: int, within: float = 10) -> socket.socket:
    """Listen on ``port`` as soon as the killed process released it."""
    deadline = time.monotonic() + within
    while True:
        holder = socket.socket()
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind(("127.0.0.1", port))
            holder.listen()
            return holder
        except OSError:
            holder.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


async def test_a_crash_loop_backs_off_and_the_runner_still_stops_cleanly():
    stack = OwnStack.start_new("crash-loop")
    holder = None
    try:
        gallery_port = stack.config.ports["gallery"]
        os.kill(stack.child_pids()["gallery"], signal.SIGKILL)
        # The port taken by someone else: every new gallery dies at once ("address in use").
        holder = hold_port(gallery_port)
        window = 14.0
        started = time.monotonic()
        async with aiohttp.ClientSession() as http:
            # Meanwhile the rest keeps serving: uploads are accepted.
            status, body = await post_image(http, stack.url, unique_photo(0))
            assert status == 201, body
        await asyncio.sleep(max(0.0, window - (time.monotonic() - started)))
        restarts = runner_said(stack, "gallery restarted")
        measured(f"gallery crashing on every start: {restarts} restarts in {window:g} s "
                 "(backoff 0.5, 1, 2, 4, 8 s...)")
        # 0.5 + 1 + 2 + 4 + 8 s of waits: at most 5 starts in 14 s; a hot loop makes hundreds.
        assert 2 <= restarts <= 5, "".join(stack.output[-40:])
        output = "".join(stack.output)
        assert "gallery is crash-looping" in output
        assert "address already in use" in output.lower()  # the log tail says why
        assert stack.process.poll() is None

        # Stop while the next restart is still pending: prompt, clean, nothing left behind.
        pids = stack.child_pids()
        stopping = time.monotonic()
        assert stack.stop() == 0
        measured(f"stop with a restart pending took {time.monotonic() - stopping:.1f} s")
        assert time.monotonic() - stopping < 20
        assert not any(alive(pid) for pid in pids.values())
        assert "gallery restarted" not in "".join(stack.output).split("stopping", 1)[-1]
    finally:
        if holder is not None:
            holder.close()
        stack.stop_and_remove()


async def test_a_crashed_postgres_is_restarted_and_a_stopped_one_left_alone():
    stack = OwnStack.start_new("pg-crash")
    try:
        pid_file = stack.data_dir / "postgres" / "data" / "postmaster.pid"
        postmaster = int(pid_file.read_text().split()[0])
        os.kill(postmaster, signal.SIGKILL)  # leaves postmaster.pid behind: a crash
        readyz = f"http://127.0.0.1:{stack.config.ports['upload']}/readyz"

        async def back() -> bool:
            return runner_said(stack, "PostgreSQL restarted") > 0 and status_of(readyz) == 200

        took = await wait_until(back, HEAL_WITHIN, what="PostgreSQL restarted")
        measured(f"PostgreSQL killed with SIGKILL: services ready again after {took:.1f} s")
        assert "PostgreSQL died" in "".join(stack.output)
        async with aiohttp.ClientSession() as http:
            status, body = await post_image(http, stack.url, unique_photo(1))
            assert status == 201, body

        # A clean stop (an operator's pg_ctl stop) is reported once and not undone.
        stack.postgres().stop()
        await wait_until(lambda: _true(runner_said(stack, "PostgreSQL was stopped") == 1),
                         10, what="stop reported")
        await asyncio.sleep(2)
        assert stack.postgres().postmaster_state() == "stopped"
        assert runner_said(stack, "PostgreSQL was stopped") == 1
        stack.postgres().start()
    finally:
        assert stack.stop_and_remove() == 0


async def _true(value: bool) -> bool:
    return value
