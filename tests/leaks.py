"""No process outlives the test run that started it.

A run gets an id (``KITTEH_TEST_RUN`` in the environment, set before the first fixture), so
every process it starts carries it: the runner, the services, pg_ctl's postgres, Chromium.
nginx and PostgreSQL's backends write their process title over their environment, so a
process also belongs to the run when its command line names one of the run's temp
directories (``tests.support.open_dir`` puts the id in their names), when it is in the
process group of one that does, or descends from one.

Two layers, both wired in tests/conftest.py:

- each test: the stacks and service processes it started (they call ``started`` and
  ``stopped``) and did not stop are stopped at its teardown, whether it passed, failed,
  errored or was interrupted;
- the session: once every fixture is torn down, whatever of the run is still alive is
  stopped (SIGTERM to its process group, SIGKILL after a grace period), named, and the run
  fails (``N leaked`` in pytest's summary line, exit status 1).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

RUN_VARIABLE = "KITTEH_TEST_RUN"
GRACE_SECONDS = 10  # between SIGTERM and SIGKILL; a service drains for a few seconds at most
SETTLE_SECONDS = 5  # a process stopped at the very end may still be on its way out


# -- the run's id ------------------------------------------------------------------------


def begin_run() -> str:
    """A new id for this run. A run started by a test of another run keeps the outer id
    too (space-separated), so the outer run counts the inner run's processes as its own."""
    run = uuid.uuid4().hex[:12]
    os.environ[RUN_VARIABLE] = " ".join([*os.environ.get(RUN_VARIABLE, "").split(), run])
    return run


def current_run() -> str:
    """This run's id ("" outside a test run, e.g. for a benchmark)."""
    ids = os.environ.get(RUN_VARIABLE, "").split()
    return ids[-1] if ids else ""


# -- what a test started -----------------------------------------------------------------


class Stoppable(Protocol):
    def stop(self) -> object: ...


_started: dict[int, Stoppable] = {}  # in the order they were started


def started(thing: Stoppable) -> None:
    _started[id(thing)] = thing


def stopped(thing: Stoppable) -> None:
    _started.pop(id(thing), None)


@pytest.fixture(autouse=True)
def stop_what_the_test_started():
    """Stops, newest first (service processes before their stack), what the test started
    and left running. Stacks of session or module fixtures were started before this fixture
    and are their fixtures' to stop."""
    before = set(_started)
    yield
    errors = []
    for key in reversed([key for key in _started if key not in before]):
        thing = _started.pop(key)
        try:
            thing.stop()
        except Exception as error:  # stop the others all the same
            errors.append(error)
    if errors:
        raise errors[0]


# -- the processes of a run --------------------------------------------------------------


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    pgid: int
    state: str
    user: str
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.user}): {self.command}"


def _read(pid: int) -> tuple[Process, bytes] | None:
    base = Path(f"/proc/{pid}")
    try:
        stat = (base / "stat").read_text()
        raw_command = (base / "cmdline").read_bytes()
        try:
            environ = (base / "environ").read_bytes()
        except PermissionError:  # not root: another user's process, never ours to mark
            environ = b""
        uid = base.stat().st_uid
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The name in parentheses may hold spaces and parentheses: split after the last one.
    state, ppid, pgid = stat[stat.rindex(")") + 2:].split()[:3]
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    command = raw_command.replace(b"\0", b" ").decode(errors="replace").strip()
    process = Process(pid, int(ppid), int(pgid), state, user, command[:300])
    return process, raw_command + b"\0" + environ + b"\0" + _open_files(base)


def _open_files(base: Path) -> bytes:
    """The paths a process holds open. An nginx worker whose master was killed alone names
    nothing of the run (its title is overwritten, its environment cleared, its group's
    leader gone) but still holds the run's error.log open."""
    names = []
    with contextlib.suppress(OSError):
        for fd in (base / "fd").iterdir():
            with contextlib.suppress(OSError):
                names.append(os.readlink(fd).encode())
    return b"\0".join(names)


def processes_of(run: str) -> list[Process]:
    """Live processes of the run (never this process or its ancestors)."""
    if not run:
        return []
    table: dict[int, Process] = {}
    marked: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        read = _read(int(entry.name))
        if read is None:
            continue
        process, text = read
        table[process.pid] = process
        if run.encode() in text:
            marked.add(process.pid)
    exempt = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in exempt:
        exempt.add(pid)
        pid = table[pid].ppid if pid in table else 1
    groups = {table[pid].pgid for pid in marked} - {os.getpgrp()}
    found = marked | {p.pid for p in table.values() if p.pgid in groups}
    children: dict[int, list[int]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process.pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return sorted((table[pid] for pid in found - exempt if _alive(table[pid])),
                  key=lambda p: p.pid)


def _alive(process: Process) -> bool:
    return process.state not in ("Z", "X")  # a zombie has exited, only its status is left


def still_alive(processes: Iterable[Process]) -> list[Process]:
    alive = []
    for process in processes:
        read = _read(process.pid)
        # The same pid and start of life: pid reuse within seconds is possible, not likely.
        if read is not None and _alive(read[0]) and read[0].command == process.command:
            alive.append(read[0])
    return alive


def wait_gone(processes: list[Process], seconds: float) -> list[Process]:
    deadline = time.monotonic() + seconds
    while (processes := still_alive(processes)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return processes


def stop_processes(processes: list[Process]) -> list[Process]:
    """SIGTERM to each process group (a process in pytest's own group alone), SIGKILL to
    what is left after GRACE_SECONDS. Returns those that survived even that."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        own_group = os.getpgrp()
        for process in processes:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if process.pgid != own_group:
                    os.killpg(process.pgid, sig)
                else:
                    os.kill(process.pid, sig)
        processes = wait_gone(processes, GRACE_SECONDS if sig == signal.SIGTERM else 5)
        if not processes:
            break
    return processes


# -- pytest hooks ------------------------------------------------------------------------


def pytest_configure(config: pytest.Config) -> None:
    begin_run()


def pytest_report_header(config: pytest.Config) -> str:
    return f"kitteh test run: {current_run()} (processes carry {RUN_VARIABLE})"


LEFT_RUNNING = pytest.StashKey[list[str]]()


@pytest.hookimpl(trylast=True)  # after pytest's own teardown of every fixture
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = current_run()
    left = wait_gone(processes_of(run), SETTLE_SECONDS)
    if not left:
        lines = [f"kitteh: test run {run}: no process left running"]
    else:
        survivors = {process.pid for process in stop_processes(left)}
        lines = [f"kitteh: test run {run} left {len(left)} process(es) running; stopped them:"]
        lines += [f"kitteh:   {process}{' (STILL ALIVE)' if process.pid in survivors else ''}"
                  for process in left]
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        print("\n".join(lines), flush=True)
        return
    session.config.stash[LEFT_RUNNING] = lines  # printed with the summary, below
    if left:
        reporter.stats.setdefault("leaked", []).extend(left)  # "N leaked" in the last line


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(LEFT_RUNNING, [])
    for line in lines:
        terminalreporter.write_line(line, red=len(lines) > 1)
