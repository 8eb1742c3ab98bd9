"""Configuration: defaults, validation with the variable's name, one documented list."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.config import ConfigError, GalleryConfig, ResizeConfig, UploadConfig
from shared.settings import BY_NAME, markdown_table

URL = "postgresql://kitteh@localhost/kitteh"


def test_defaults():
    config = UploadConfig.from_env({"DATABASE_URL": URL})
    assert config.port == 8081 and config.limits.max_upload_bytes == 40 * 1024 * 1024
    assert ResizeConfig.from_env({"DATABASE_URL": URL}).workers >= 1
    assert GalleryConfig.from_env({"DATABASE_URL": URL}).assets_url == "/assets/"


@pytest.mark.parametrize(("name", "value", "fragment"), [
    ("DATABASE_URL", "", "DATABASE_URL is required"),
    ("DATABASE_URL", "mysql://x/y", "DATABASE_URL='mysql://x/y'"),
    ("KITTEH_UPLOAD_PORT", "eighty", "KITTEH_UPLOAD_PORT='eighty' is not a whole number"),
    ("KITTEH_UPLOAD_PORT", "70000", "KITTEH_UPLOAD_PORT='70000' must be between 1 and 65535"),
    ("KITTEH_MAX_UPLOAD_BYTES", "10", "KITTEH_MAX_UPLOAD_BYTES='10' must be >= 1024"),
    ("KITTEH_RESIZE_URL", "resize:8082", "KITTEH_RESIZE_URL='resize:8082' must be a URL"),
    ("KITTEH_LOG_LEVEL", "LOUD", "KITTEH_LOG_LEVEL='LOUD'"),
    ("KITTEH_FETCH_ALLOW_NETWORKS", "10.0.0.0/8, intranet",
     "KITTEH_FETCH_ALLOW_NETWORKS='10.0.0.0/8, intranet': 'intranet' is not a network"),
    ("KITTEH_FETCH_ALLOW_NETWORKS", "10.0.0.1/8", "'10.0.0.1/8' is not a network"),
])
def test_bad_values_name_the_variable(name, value, fragment):
    env = {"DATABASE_URL": URL, name: value}
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        UploadConfig.from_env(env)


def test_fetch_allow_networks_are_parsed():
    config = UploadConfig.from_env({"DATABASE_URL": URL,
                                    "KITTEH_FETCH_ALLOW_NETWORKS": " 127.0.0.2/32,fd00::/8 ,"})
    assert [str(n) for n in config.fetch_allow_networks] == ["127.0.0.2/32", "fd00::/8"]
    assert UploadConfig.from_env({"DATABASE_URL": URL}).fetch_allow_networks == ()


def test_every_variable_read_is_declared_and_documented():
    """Every literal name passed to an Env reader exists in shared/settings.py, and the
    README's configuration table is the generated one."""
    repo = Path(__file__).resolve().parent.parent
    read = set()
    for path in [*repo.glob("shared/*.py"), *repo.glob("services/*/*.py"),
                 *repo.glob("deploy/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("raw", "text", "integer", "port", "flag", "url",
                                           "directory", "choice", "networks") and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) \
                    and node.args[0].value.isupper():
                read.add(node.args[0].value)
    assert read, "the scan found the readers"
    assert read <= set(BY_NAME), read - set(BY_NAME)
    readme = (repo / "README.md").read_text()
    assert markdown_table() in readme, "run `python -m shared.settings` and paste the table"
