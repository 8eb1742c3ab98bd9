"""The deployment the compose tests share: an engine, the images built from this repository's
Dockerfiles, and `docker compose up -d --wait` of a copy of the project.

Whatever happens (a failed step, Ctrl-C), the teardown removes every container, volume,
network and image it made and stops the engine; tests/leaks.py then finds no process of it.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.compose import base_image
from tests.compose.compose_cli import Compose, compose_binary
from tests.compose.engine import Podman
from tests.compose.project import copy_project, without_start_interval, write_dotenv
from tests.stack import free_ports
from tests.support import REPO, open_dir

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kitteh" / "compose"
REPORT = REPO / "test-artifacts" / "compose-up.txt"
BUILD_TIMEOUT = 900
UP_TIMEOUT = 300


@dataclass
class Deployment:
    engine: Podman
    compose: Compose
    project: Path
    run_dir: Path
    port: int
    overrides: Path  # what this engine needs on top of the project's files
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    shared: dict = field(default_factory=dict)  # what one test leaves for a later one

    def files(self, *overlays: str) -> list[str]:
        return ["compose.yaml", *overlays, str(self.overrides)]

    def timed(self, phase: str, *args: str, timeout: float = UP_TIMEOUT, **kwargs):
        start = time.monotonic()
        try:
            result = self.compose.run(*args, timeout=timeout, **kwargs)
        except AssertionError as error:
            raise AssertionError(f"{error}\n-- the engine's view --\n{self.engine_state()}") \
                from None
        self.timings[phase] = time.monotonic() - start
        return result

    def engine_state(self) -> str:
        """What the containers are doing, for a failure message."""
        podman = self.engine.podman
        parts = [podman("ps", "--all", "--format",
                        "{{.Names}} {{.Status}} {{.State}}", check=False).stdout]
        ids = podman("ps", "--all", "--quiet", check=False).stdout.split()
        if ids:
            parts.append(podman("inspect", "--format", "{{.Name}} {{json .State}}", *ids,
                                check=False).stdout)
        parts.append(self.engine.log_tail(30))
        return "\n".join(parts)

    def report(self) -> None:
        REPORT.parent.mkdir(exist_ok=True)
        lines = [f"{phase}: {seconds:.1f} s" for phase, seconds in self.timings.items()]
        REPORT.write_text("\n".join([*self.notes, *lines, ""]))


def debian_base() -> str:
    """The base image the Dockerfiles name (one, as tests/test_compose.py checks)."""
    bases = {match for path in (REPO / "deploy" / "docker").glob("*Dockerfile*")
             for match in re.findall(r"^FROM\s+(debian:\S+)", path.read_text(), re.MULTILINE)}
    [base] = bases
    return base


@pytest.fixture(scope="module")
def deployment():
    started = time.monotonic()
    run_dir = open_dir("kitteh-compose-")
    engine = Podman(run_dir / "engine")
    [port] = free_ports(1)
    project = copy_project(run_dir / "project")
    write_dotenv(project, KITTEH_PORT=f"127.0.0.1:{port}")
    files = ["compose.yaml", "compose.tls.yaml", "compose.dev.yaml"]
    overrides = without_start_interval(project, files, run_dir / "engine-overrides.yaml")
    deployment = None
    try:
        engine.start()
        compose = Compose(project, engine.docker_host, run_dir / "docker",
                          compose_binary(CACHE))
        deployment = Deployment(engine, compose, project, run_dir, port, overrides)
        deployment.timings["engine ready (packages, service)"] = time.monotonic() - started
        mark = time.monotonic()
        how = base_image.provide(engine, debian_base(), CACHE)
        deployment.notes.append(f"{debian_base()}: {how}")
        deployment.timings["base image"] = time.monotonic() - mark
        compose.files = deployment.files()
        # One build at a time: the images share their first stages, which are then built
        # once and found in the cache by the next (and podman's builder crashed here once,
        # with several builds at once and one of them failing).
        deployment.timed("build", "build", timeout=BUILD_TIMEOUT, COMPOSE_PARALLEL_LIMIT="1")
        deployment.timed("up -d --wait", "up", "--detach", "--wait",
                         "--wait-timeout", str(UP_TIMEOUT))
        yield deployment
    finally:
        try:
            if deployment is not None:
                deployment.timings["whole run"] = time.monotonic() - started
                deployment.report()
                deployment.compose.run(
                    "down", "--volumes", "--remove-orphans", "--rmi", "all", "--timeout", "10",
                    files=deployment.files("compose.tls.yaml"), check=False, timeout=300,
                    KITTEH_HTTP_PORT="80")
        finally:
            engine.stop()
            shutil.rmtree(run_dir, ignore_errors=True)
