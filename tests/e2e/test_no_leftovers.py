"""A test run that fails leaves no process behind, and says so (tests/leaks.py).

A pytest run of its own, in a subprocess, with two tests: one that starts a stack and fails
while it runs (its teardown must stop it), and one that passes but leaves a whole stack
running that nothing tracks any more, as test_sigkill_mid_upload... once did when its photo
was missing (the end of the session must find it, stop it, name it and fail the run)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.leaks import RUN_VARIABLE
from tests.support import REPO

pytestmark = pytest.mark.e2e

INNER_TESTS = '''
import pytest

from tests import leaks
from tests.stack import RunningStack, stack_env
from tests.support import open_dir


def start_stack(label):
    data_dir = open_dir(f"kitteh-{label}-") / "var"
    stack = RunningStack(data_dir, stack_env(data_dir))
    stack.start()
    print(f"RUNNER {label} {stack.process.pid} {data_dir}", flush=True)
    return stack


def test_fails_while_its_stack_runs():
    start_stack("fail")
    pytest.fail("deliberately failing with the stack running")


def test_passes_but_forgets_a_running_stack():
    stack = start_stack("lost")
    leaks.stopped(stack)  # what a test does that never reaches its cleanup
'''


def mentions(needle: str) -> list[str]:
    """Live processes whose command line or environment holds ``needle``: read from /proc
    here, independently of tests/leaks.py, which is under test."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] not in "ZX" and needle.encode() in text:
            found.append(f"{entry.name}: {(entry / 'cmdline').read_bytes()[:200]!r}")
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def test_a_failing_run_leaves_no_process_and_says_so(tmp_path):
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    # The inner run's temp dirs under one short directory (PostgreSQL's socket path must
    # stay under 108 bytes): no process may mention it afterwards.
    base = Path(tempfile.mkdtemp(prefix="kl-"))
    base.chmod(0o755)  # the postgres user must reach its cluster
    try:
        inner = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "tests.leaks", "-p", "no:cacheprovider",
             "-q", "-s", "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
            cwd=REPO, env={**os.environ, "TMPDIR": str(base)},
            capture_output=True, text=True, timeout=600)
        output = inner.stdout + inner.stderr
        run = re.search(r"kitteh: test run ([0-9a-f]{12})", output).group(1)
        assert run not in os.environ[RUN_VARIABLE].split(), "a run id of its own"

        assert inner.returncode == 1, output
        assert re.search(r"1 failed, 1 passed, \d+ leaked", output), output
        leftovers = re.findall(r"^kitteh:   pid \d+ \(\w+\): (.*)$", output, re.M)
        # Only the forgotten stack is left for the end of the session; all of it is named.
        assert any("deploy.runner" in line for line in leftovers), output
        for part in ("services.upload", "services.resize", "services.gallery",
                     "nginx: master", "postgres"):
            assert any(part in line for line in leftovers), (part, output)
        assert not any("kitteh-fail-" in line for line in leftovers), output
        assert "STILL ALIVE" not in output, output

        runners = dict(re.findall(r"RUNNER (\w+) (\d+) ", output))
        assert set(runners) == {"fail", "lost"}, output
        assert not any(alive(int(pid)) for pid in runners.values())
        assert mentions(run) == []
        assert mentions(str(base)) == []
        # Every pid file the stacks wrote (services, nginx, the postmaster) names a dead one.
        for pid_file in base.rglob("*.pid"):
            pid = int(pid_file.read_text().split()[0])
            assert not alive(pid), (pid_file, pid)
    finally:
        shutil.rmtree(base, ignore_errors=True)
