"""Child processes of the local runner: started with a log and a pid file, stopped in order,
and found again (by pid file) if a previous runner died without stopping them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Child:
    name: str
    command: list[str]
    log_file: Path
    pid_file: Path
    env: dict[str, str]
    stop_signal: int = signal.SIGTERM
    process: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as log:
            # A session of its own: Ctrl-C reaches the runner only, which then stops the
            # children in order instead of all of them at once.
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid_file.write_text(f"{self.process.pid}\n")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exited(self) -> int | None:
        """The exit status if the child has exited, else None."""
        return None if self.process is None else self.process.poll()

    def kill_leftovers(self) -> None:
        """After the child died: SIGKILL whatever is left of its process group (the child
        leads a session of its own). nginx workers outlive a master killed with SIGKILL and
        would keep the port, so a new master could not listen. The group id stays reserved
        while any member lives, so this never reaches an unrelated process."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    # Longer than a service's own graceful stop (up to 30 s for requests in progress, 5 s
    # more for aiohttp's shutdown, 10 s for the resize loops): SIGKILL is for a hung child.
    def stop(self, timeout: float = 60) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def process_mentions(pid: int, marker: str) -> bool:
    """Whether a live process carries ``marker`` in its command line or environment."""
    for part in ("cmdline", "environ"):
        try:
            if marker.encode() in Path(f"/proc/{pid}/{part}").read_bytes():
                return True
        except OSError:
            continue
    return False


# How a runner shows in /proc/<pid>/cmdline: ``python -m deploy.runner`` (make run),
# ``kitteh run`` (the console script) or ``python -m deploy.cli run``.
RUNNER_COMMANDS = ("deploy.runner", "kitteh\0run", "deploy.cli\0run")


def is_runner(pid: int) -> bool:
    return any(process_mentions(pid, marker) for marker in RUNNER_COMMANDS)


def clean_stale_pid_files(run_dir: Path, markers: tuple[str, ...]) -> list[str]:
    """Stop processes a crashed runner left behind (only ours: they carry one of the
    markers), then drop their pid files. Returns what was cleaned, for the log."""
    cleaned = []
    for pid_file in sorted(run_dir.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = 0
        if pid > 0 and any(process_mentions(pid, marker) for marker in markers):
            with contextlib.suppress(ProcessLookupError):  # it may have just exited
                os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            cleaned.append(f"{pid_file.stem} (pid {pid})")
        pid_file.unlink(missing_ok=True)
    return cleaned


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
