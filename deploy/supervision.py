"""Restarting what dies: exponential backoff with a ceiling, and telling crash loops apart.

The runner keeps one ``Watch`` per child process. A child that dies is restarted after a
delay that starts at ``FIRST_DELAY`` and doubles on every death in a row up to ``CEILING``,
so a service that crashes at once on every start costs one start every 30 s, never a hot
loop. A child that stayed up ``STABLE_AFTER`` seconds counts as healthy again: its next
death starts over at ``FIRST_DELAY`` (an OOM kill once a day restarts in half a second).
"""

from __future__ import annotations

import contextlib
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

from deploy.processes import Child

FIRST_DELAY = 0.5
CEILING = 30.0
STABLE_AFTER = 30.0
LOOP_AFTER = 3  # deaths in a row, each before STABLE_AFTER, reported as a crash loop


@dataclass
class Backoff:
    first: float = FIRST_DELAY
    ceiling: float = CEILING
    stable_after: float = STABLE_AFTER
    failures: int = 0  # deaths in a row without a stable run in between

    def next_delay(self, uptime: float) -> float:
        """The wait before the next start, given how long the dead process had been up."""
        if uptime >= self.stable_after:
            self.failures = 0
        delay = min(self.ceiling, self.first * 2 ** self.failures)
        self.failures += 1
        return delay

    @property
    def crash_looping(self) -> bool:
        return self.failures >= LOOP_AFTER


@dataclass
class Watch:
    """One supervised child: when it started, whether a restart is due, whether it has
    answered its health check since it was last started."""

    child: Child
    health_url: str | None
    backoff: Backoff = field(default_factory=Backoff)
    started_at: float = field(default_factory=time.monotonic)
    restart_at: float | None = None
    healthy: bool = True  # it was healthy when the stack finished starting
    restarts: int = 0


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with status {status}"


def answers_health(url: str, timeout: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


class Stop(Exception):
    """SIGINT or SIGTERM reached the runner: stop everything, in order."""


class StopSignals:
    """The runner's SIGINT/SIGTERM handler. The stop arrives as an exception, except while
    a child is being started (``held``): then it waits until the new child is recorded, so
    the stop that follows sees, and stops, it. (Blocking the signals instead would not do:
    a child inherits the blocked mask through fork and exec and would ignore SIGTERM.)"""

    def __init__(self) -> None:
        self._holding = False
        self._pending: str | None = None

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self._holding:
            self._pending = self._pending or name
        else:
            raise Stop(name)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        if self._pending:
            raise Stop(self._pending)
