"""Restarting what dies: exponential backoff with a ceiling, and telling crash loops apart.

The runner keeps one ``Watch`` per child process. A child that dies is restarted after a
delay that starts at ``FIRST_DELAY`` and doubles on every death in a row up to ``CEILING``,
so a service that crashes at once on every start costs one start every 30 s, never a hot
loop. A child that stayed up ``STABLE_AFTER`` seconds counts as healthy again: its next
death starts over at ``FIRST_DELAY`` (an OOM kill once a day restarts in half a second).
``PostgresWatch`` does the same for the embedded PostgreSQL, which is not a child.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from deploy import gateway
from deploy.postgres import LocalPostgres
from deploy.processes import Child

Say = Callable[..., None]  # the runner's output: say("resize is back")

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

    def tend(self, stop_signals: StopSignals, say: Say) -> None:
        """One look: start it if its restart is due, note it healthy again, or notice
        that it died and schedule the restart."""
        child, now = self.child, time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                with stop_signals.held():
                    child.start()
                    self.restart_at = None
                self.started_at, self.healthy = now, False
                self.restarts += 1
                say(f"{child.name} restarted (pid {child.pid}, restart {self.restarts})")
            return
        status = child.exited()
        if status is None:
            if not self.healthy and self.health_url and answers_health(self.health_url):
                self.healthy = True
                say(f"{child.name} is back: healthy {now - self.started_at:.1f} s "
                    "after its restart")
            return
        child.kill_leftovers()
        uptime = now - self.started_at
        delay = self.backoff.next_delay(uptime)
        self.restart_at = now + delay
        say(f"{child.name} {describe_exit(status)} after {uptime:.1f} s up; "
            f"restarting it in {delay:g} s; the rest keeps serving")
        if self.backoff.failures == 1:
            say(f"last lines of {child.log_file}:\n{child.log_tail(15) or '(empty)'}")
        elif self.backoff.crash_looping and (delay == self.backoff.ceiling
                                             or self.backoff.failures == LOOP_AFTER):
            say(f"{child.name} is crash-looping: {self.backoff.failures} deaths in a row, "
                f"each soon after starting; retrying at most every "
                f"{self.backoff.ceiling:g} s. Last lines of {child.log_file}:\n"
                f"{child.log_tail(15)}")


@dataclass
class PostgresWatch:
    """The embedded cluster is pg_ctl's daemon, not the runner's child: its pid file tells.
    A postmaster.pid whose process is gone is a crash: restart it with the same backoff. No
    pid file means someone stopped it on purpose (maintenance): say so once, leave it."""

    postgres: LocalPostgres
    backoff: Backoff = field(default_factory=Backoff)
    restart_at: float | None = None
    stopped_reported: bool = False

    def tend(self, say: Say) -> None:
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                self._restart(say)
            return
        state = self.postgres.postmaster_state()
        if state == "running":
            self.stopped_reported = False
        elif state == "crashed":
            delay = self.backoff.next_delay(0)
            self.restart_at = now + delay
            say(f"PostgreSQL died (its postmaster.pid is left behind); restarting it in "
                f"{delay:g} s; until then the services answer 503")
        elif not self.stopped_reported:
            self.stopped_reported = True
            say("PostgreSQL was stopped (not by this runner); the services answer 503 until "
                "it is started again")

    def _restart(self, say: Say) -> None:
        self.restart_at = None
        try:
            # Fails while the dead postmaster's backends still hold its shared memory, or
            # while it is an unreaped zombie (pg_ctl then takes it for alive, and the
            # database check fails): the backoff retries until it is really gone.
            self.postgres.start()
        except (RuntimeError, subprocess.CalledProcessError) as error:
            delay = self.backoff.next_delay(0)
            self.restart_at = time.monotonic() + delay
            reason = "the old server is still going away" \
                if isinstance(error, subprocess.CalledProcessError) \
                else str(error).strip().splitlines()[-1]
            say(f"PostgreSQL did not start again ({reason}); next try in {delay:g} s")
            return
        self.backoff.failures = 0
        say("PostgreSQL restarted; the services reconnect by themselves")


def describe_exit(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exited with status {status}"


def answers_health(url: str, timeout: float = 0.5) -> bool:
    # An HTTPS gateway is probed on loopback, where its certificate's name cannot match.
    context = gateway.probe_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
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
