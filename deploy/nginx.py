"""Rendering the nginx templates the way the official nginx image does, and the small main
configuration the local runner wraps around them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from shared.formats import mime_types

TEMPLATES = Path(__file__).resolve().parent / "nginx"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# The official image includes /etc/nginx/mime.types; the runner carries the few it serves:
# the assets', and every image format's from the format registry.
IMAGE_TYPES = " ".join(f"{t} {' '.join(exts)};" for t, exts in mime_types().items())
MIME_TYPES = f"""
    types {{
        text/html html; text/css css; application/javascript js; application/json json;
        image/svg+xml svg; image/x-icon ico; text/plain txt;
        {IMAGE_TYPES}
    }}
    default_type application/octet-stream;
"""

GATEWAY_LOG_FORMAT = """
    log_format kitteh '$remote_addr - $remote_user [$time_local] "$request" $status '
                      '$body_bytes_sent "$http_referer" "$http_user_agent" '
                      'request_id=$kitteh_request_id';
"""


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute ``${NAME}`` for the names given, like the image's envsubst step; an
    unknown name is an error here rather than an empty string in a config."""
    missing = placeholders(template) - set(values)
    if missing:
        raise KeyError(f"no value for {', '.join(sorted(missing))}")
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def main_config(name: str, work_dir: Path, server_config: Path,
                worker_user: str | None = None) -> str:
    """A complete nginx.conf for one instance, everything it writes kept under work_dir.
    ``worker_user``: run the workers as this user (only means something when started as
    root; nginx's default is nobody)."""
    user = f"user {worker_user};\n" if worker_user else ""
    # The gateway logs the request id its template sets (its map), so a line of access.log
    # can be matched with the services' JSON lines.
    formats, log_format = (GATEWAY_LOG_FORMAT, "kitteh") if name == "gateway" \
        else ("", "combined")
    return f"""# Written by the Kitteh local runner; edit deploy/nginx/{name}.conf.template instead.
{user}worker_processes auto;
pid {work_dir}/nginx.pid;
error_log {work_dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
{MIME_TYPES}{formats}
    # Buffered: one write per 64 KiB of lines or per second, not one per request.
    access_log {work_dir}/access.log {log_format} buffer=64k flush=1s;
    client_body_temp_path {work_dir}/client_body;
    proxy_temp_path {work_dir}/proxy;
    fastcgi_temp_path {work_dir}/fastcgi;
    uwsgi_temp_path {work_dir}/uwsgi;
    scgi_temp_path {work_dir}/scgi;
    include {server_config};
}}
"""
