"""A test run that fails or is interrupted leaves no process behind, and says so
(tests/leaks.py).

Pytest runs of their own, in a subprocess. The first has two tests: one that starts a stack
and fails while it runs (its teardown must stop it), and one that passes but leaves a whole
stack running that nothing tracks any more, as test_sigkill_mid_upload... once did when its
photo was missing (the end of the session must find it, stop it, name it and fail the run).
The second is interrupted with SIGINT while its test's stack runs."""

from __future__ import annotations

import os
import re
import shutil
import signal
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


@pytest.fixture
def short_tmp():
    """The inner run's temp dirs under one short directory (PostgreSQL's socket path must
    stay under 108 bytes): no process may mention it afterwards."""
    base = Path(tempfile.mkdtemp(prefix="kl-"))
    base.chmod(0o755)  # the postgres user must reach its cluster
    yield base
    shutil.rmtree(base, ignore_errors=True)


def inner_pytest(tests: str, tmp_path: Path, base: Path) -> subprocess.Popen:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(tests))
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "tests.leaks", "-p", "no:cacheprovider",
         "-q", "-s", "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=REPO, env={**os.environ, "TMPDIR": str(base)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def assert_nothing_left(output: str, base: Path) -> dict[str, str]:
    """Nothing of the inner run is alive: checked on /proc, not by its own report. Returns
    the runners' pids by stack label."""
    run = re.search(r"kitteh: test run ([0-9a-f]{12})", output).group(1)
    assert run not in os.environ[RUN_VARIABLE].split(), "a run id of its own"
    runners = dict(re.findall(r"RUNNER (\w+) (\d+) ", output))
    assert runners, output
    assert not any(alive(int(pid)) for pid in runners.values())
    assert mentions(run) == []
    assert mentions(str(base)) == []
    # Every pid file the stacks wrote (services, nginx, the postmaster) names a dead one.
    for pid_file in base.rglob("*.pid"):
        pid = int(pid_file.read_text().split()[0])
        assert not alive(pid), (pid_file, pid)
    return runners


def test_a_failing_run_leaves_no_process_and_says_so(tmp_path, short_tmp):
    inner = inner_pytest(INNER_TESTS, tmp_path, short_tmp)
    output, _ = inner.communicate(timeout=600)

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
    assert set(assert_nothing_left(output, short_tmp)) == {"fail", "lost"}, output


INTERRUPTED_TEST = '''
import time

from tests.stack import RunningStack, stack_env
from tests.support import open_dir


def test_interrupted_while_its_stack_runs():
    data_dir = open_dir("kitteh-ctrlc-") / "var"
    stack = RunningStack(data_dir, stack_env(data_dir))
    stack.start()
    print(f"RUNNER ctrlc {stack.process.pid} {data_dir}", flush=True)
    time.sleep(600)
'''


def test_an_interrupted_run_leaves_no_process(tmp_path, short_tmp):
    """Ctrl-C (SIGINT to pytest alone: the runner has a session of its own) mid-test."""
    inner = inner_pytest(INTERRUPTED_TEST, tmp_path, short_tmp)
    lines = []
    try:
        for line in inner.stdout:
            lines.append(line)
            if line.startswith("RUNNER "):
                break
        inner.send_signal(signal.SIGINT)
        rest, _ = inner.communicate(timeout=120)
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait()
    output = "".join(lines) + rest
    assert inner.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output and "no process left running" in output, output
    assert set(assert_nothing_left(output, short_tmp)) == {"ctrlc"}, output
