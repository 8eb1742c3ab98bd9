"""The compose project the test runs: a copy of what a checkout gives a user, with a .env made
from .env.example as the README says (`cp .env.example .env`, then set the password).

A copy, so that the test edits a template (compose watch), writes .env and certs/ and never
touches the working tree it runs from.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

import yaml

from tests.support import REPO

# Everything compose.yaml and the Dockerfiles read (.dockerignore admits no more).
COPIED = ("compose.yaml", "compose.dev.yaml", "compose.tls.yaml", "compose.s3.yaml",
          ".dockerignore", ".env.example", "pyproject.toml", "requirements", "deploy",
          "services", "shared")
NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", ".env", "certs")


def copy_project(target: Path) -> Path:
    target.mkdir(parents=True)
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=NOT_COPIED)
        else:
            shutil.copy2(source, target / name)
    return target


def write_dotenv(project: Path, **values: str) -> dict[str, str]:
    """.env.example with a fresh password and the given values; returns what was set."""
    values = {"POSTGRES_PASSWORD": secrets.token_hex(24), **values}
    text = (project / ".env.example").read_text()
    for name, value in values.items():
        text, count = re.subn(rf"^{name}=.*$", f"{name}={value}", text, flags=re.MULTILINE)
        assert count == 1, f".env.example has no {name}= line"
    (project / ".env").write_text(text)
    return values


def without_start_interval(project: Path, files: list[str], target: Path) -> Path:
    """An override that removes healthcheck.start_interval where the files set it: it needs
    Docker API 1.44 (Docker Engine 25), and compose refuses it against podman 4.3's 1.41.
    (HealthProbes probes every second until healthy anyway.)"""
    services: dict[str, dict] = {}
    for name in files:
        document = yaml.load((project / name).read_text(), _TaggedLoader) or {}
        for service, config in (document.get("services") or {}).items():
            if "start_interval" in (config.get("healthcheck") or {}):
                services[service] = {"healthcheck": {"start_interval": _Reset()}}
    target.write_text(yaml.dump({"services": services}, Dumper=_ResetDumper))
    return target


class _TaggedLoader(yaml.SafeLoader):
    """Reads compose's `!override` / `!reset` tags as plain values."""


for _tag in ("!override", "!reset"):
    _TaggedLoader.add_constructor(_tag, lambda loader, node: (
        loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode)
        else loader.construct_scalar(node)))


class _Reset:
    """Written as `!reset null`: the key is removed from the merged configuration."""


class _ResetDumper(yaml.SafeDumper):
    pass


_ResetDumper.add_representer(_Reset, lambda dumper, _: dumper.represent_scalar("!reset", ""))
