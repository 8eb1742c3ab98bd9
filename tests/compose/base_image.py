"""The one image the Dockerfiles pull, ``debian:<suite>-slim``, for an engine that may reach
no registry at all.

A registry first, as users get it. Where none answers (this project's machines reach
Debian's archive and PyPI only), the image is made here the way Debian's official one is (a
``minbase`` bootstrap, the slim variant's dpkg excludes, the image's apt settings), with
mmdebstrap from the host's own Debian mirror configuration, and imported. It also carries
what the builds need to reach Debian and PyPI *from this machine*: the host's apt proxy
settings, its pip configuration and its CA certificates (those of a TLS-inspecting proxy
among them). None of that is in the Dockerfiles; a pulled image does not have it.

The tarball is cached under ~/.cache/kitteh (``XDG_CACHE_HOME``), keyed by everything it is
made from and remade after a week, so that security updates arrive; a machine without the
cache makes it (about 25 s).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

from tests.compose.engine import Podman

PULL_TIMEOUT = 90
BOOTSTRAP_TIMEOUT = 600
CACHE_DAYS = 7

# The official image's apt settings (debuerreotype): no package cache kept in a layer, no
# translations, compressed lists.
APT_OPTIONS = (
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
    ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
    ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };',
    'Dir::Cache::pkgcache "";',
    'Dir::Cache::srcpkgcache "";',
    'Acquire::GzipIndexes "true";',
    'Acquire::Languages "none";',
    'Apt::AutoRemove::SuggestsImportant "false";',
)
# The slim variant: documentation, manuals and translations are never unpacked.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*", "path-exclude=/usr/share/groff/*",
    "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/lintian/*",
    "path-exclude=/usr/share/linda/*", "path-exclude=/usr/share/locale/*",
)


def provide(engine: Podman, image: str, cache_dir: Path) -> str:
    """Makes ``image`` (``debian:<suite>-slim``) available to the engine; says how."""
    suite = re.fullmatch(r"debian:([a-z]+)-slim", image)
    assert suite, image
    reference = f"docker.io/library/{image}"
    if engine.podman("image", "exists", reference, check=False).returncode == 0:
        return "already there"
    try:
        if engine.podman("pull", "--quiet", reference, check=False,
                         timeout=PULL_TIMEOUT).returncode == 0:
            return "pulled"
    except subprocess.TimeoutExpired:
        pass
    tarball = bootstrap(suite[1], cache_dir)
    engine.podman("import", "--change", 'CMD ["bash"]', str(tarball), reference, timeout=300)
    return f"made with mmdebstrap ({tarball})"


def bootstrap(suite: str, cache_dir: Path) -> Path:
    sources = mirror_lines(suite)
    carried = carried_files()
    key = hashlib.sha256(repr((suite, sources, APT_OPTIONS, DPKG_OPTIONS,
                               sorted((str(p), p.read_bytes()) for p in carried))).encode())
    tarball = cache_dir / f"debian-{suite}-slim-{key.hexdigest()[:16]}.tar"
    if tarball.exists() and time.time() - tarball.stat().st_mtime < CACHE_DAYS * 86400:
        return tarball
    cache_dir.mkdir(parents=True, exist_ok=True)
    for old in cache_dir.glob(f"debian-{suite}-slim-*.tar"):
        old.unlink()  # an outdated one, or made from other sources
    partial = tarball.with_name(f".{tarball.name}.{os.getpid()}.partial.tar")
    command = ["mmdebstrap", "--variant=minbase", "--format=tar", "--quiet"]
    command += [f"--aptopt={option}" for option in APT_OPTIONS]
    command += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
    for path in carried:
        command.append(f'--customize-hook=mkdir -p "$1{path.parent}"')
        command.append(f"--customize-hook=copy-in {path} {path.parent}")
    command += [suite, str(partial), *sources]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True,
                       timeout=BOOTSTRAP_TIMEOUT)
        partial.replace(tarball)  # complete or not at all, if interrupted
    finally:
        partial.unlink(missing_ok=True)
    return tarball


def mirror_lines(suite: str) -> list[str]:
    """The host's Debian entries (its release and its -updates/-security suites), for
    ``suite``: ``deb URI SUITE COMPONENTS``, as mmdebstrap takes them."""
    codename = os_release().get("VERSION_CODENAME", "")
    lines = []
    for uri, suites, components in apt_sources():
        for host_suite in suites:
            if codename and (host_suite == codename or host_suite.startswith(codename + "-")):
                target = suite + host_suite[len(codename):]
                lines.append(f"deb {uri} {target} {' '.join(components)}")
    if not lines:
        raise RuntimeError(f"no Debian ({codename or 'unknown release'}) entries in the host's "
                           "apt sources to make the base image from")
    return list(dict.fromkeys(lines))


def apt_sources() -> list[tuple[str, list[str], list[str]]]:
    """(URI, suites, components) of every enabled deb entry, one-line and deb822 alike."""
    entries = []
    apt = Path("/etc/apt")
    for path in [apt / "sources.list", *sorted((apt / "sources.list.d").glob("*.list"))]:
        if path.exists():
            for line in path.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", "", line.split("#")[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]], words[3:]))
    for path in sorted((apt / "sources.list.d").glob("*.sources")):
        for paragraph in re.split(r"\n\s*\n", path.read_text()):
            fields = deb822(paragraph)
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled") != "no":
                entries.append((fields.get("URIs", "").split()[0], fields.get("Suites", "").split(),
                                fields.get("Components", "").split()))
    return entries


def deb822(paragraph: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    name = ""
    for line in paragraph.splitlines():
        if line.startswith("#"):
            continue
        if line[:1].isspace() and name:
            fields[name] += " " + line.strip()
        elif ":" in line:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return fields


def os_release() -> dict[str, str]:
    text = Path("/etc/os-release").read_text()
    return {key: value.strip('"') for key, _, value in
            (line.partition("=") for line in text.splitlines()) if key}


def carried_files() -> list[Path]:
    """What builds need to leave this machine as the host does: its CA certificates (the
    bundle, and the local ones that update-ca-certificates adds to any bundle made in a
    build), its pip configuration and its apt proxy settings."""
    found = [Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pip.conf")]
    found += sorted(Path("/usr/local/share/ca-certificates").rglob("*.crt"))
    found += [path for path in sorted(Path("/etc/apt/apt.conf.d").glob("*"))
              if path.is_file() and "proxy" in path.read_text(errors="replace").lower()]
    return [path for path in found if path.is_file()]
