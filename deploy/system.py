"""Finding the system programs Kitteh needs, and installing them with apt-get when we may."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path


class MissingProgram(RuntimeError):
    pass


# program -> Debian package that provides it
PACKAGES = {"nginx": "nginx", "postgres": "postgresql", "initdb": "postgresql",
            "pg_ctl": "postgresql", "pg_dump": "postgresql-client",
            "pg_restore": "postgresql-client", "wrk": "wrk", "convert": "imagemagick",
            "chromium": "chromium", "openssl": "openssl", "prometheus": "prometheus",
            "prometheus-nginx-exporter": "prometheus-nginx-exporter",
            "heif-enc": "libheif-examples", "ffmpeg": "ffmpeg"}


def is_root() -> bool:
    return os.geteuid() == 0


def find(program: str) -> Path | None:
    """PATH first, then the places Debian puts programs that are not on PATH."""
    extra = ["/usr/sbin", "/sbin"]
    if program in ("postgres", "initdb", "pg_ctl", "psql", "createdb", "pg_isready", "pg_dump",
                   "pg_restore"):
        # Newest PostgreSQL first; /usr/lib/postgresql/<major>/bin is Debian's layout.
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                          key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                          else 0, reverse=True)
        extra = versions + extra
    found = shutil.which(program) or shutil.which(program, path=os.pathsep.join(extra))
    if program == "convert" and found:
        found = "/usr/bin/convert" if Path("/usr/bin/convert").exists() else None
    return Path(found) if found else None


def apt_install(packages: list[str]) -> None:
    sudo: list[str] = []
    if not is_root():
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"],
                                                   capture_output=True).returncode == 0:
            sudo = ["sudo", "-n"]
        else:
            raise MissingProgram(f"please install: sudo apt-get install {' '.join(packages)}")
    if not shutil.which("apt-get"):
        raise MissingProgram(f"please install these packages: {' '.join(packages)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print(f"kitteh: installing {' '.join(packages)} with apt-get", file=sys.stderr, flush=True)
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends",
                    *packages], check=True, env=env, stdout=subprocess.DEVNULL)


def require(*programs: str) -> dict[str, Path]:
    """Paths of the programs, installing the missing ones' packages first when allowed."""
    missing = [p for p in programs if find(p) is None]
    if missing:
        apt_install(sorted({PACKAGES[p] for p in missing}))
    found = {p: find(p) for p in programs}
    still = [p for p, path in found.items() if path is None]
    if still:
        raise MissingProgram(f"still missing after install: {', '.join(still)}")
    return found  # type: ignore[return-value]
