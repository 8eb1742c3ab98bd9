#!/usr/bin/env python
"""Container healthcheck of a Python service: ``kitteh-healthz upload|resize|gallery``.

Exits 0 when the service answers ``GET /healthz`` with 200, 1 otherwise (the reason on
stderr, which ``docker inspect`` shows). The port is the one the service itself listens on
(``KITTEH_<NAME>_PORT``, else its default in shared.settings), so a changed port cannot
leave a stale healthcheck behind. Python's urllib because the image has no curl.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Mapping

from shared.settings import BY_NAME

SERVICES = ("upload", "resize", "gallery")
WILDCARDS = ("", "0.0.0.0", "::")


def probe_url(service: str, environ: Mapping[str, str]) -> str:
    variable = f"KITTEH_{service.upper()}_PORT"
    port = environ.get(variable) or BY_NAME[variable].default
    host = environ.get("KITTEH_BIND_HOST") or BY_NAME["KITTEH_BIND_HOST"].default
    if host in WILDCARDS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/healthz"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in SERVICES:
        print(f"usage: kitteh-healthz {'|'.join(SERVICES)}", file=sys.stderr)
        return 2
    url = probe_url(argv[1], os.environ)
    # No proxy, whatever HTTP_PROXY the container was given: the probe is local.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError as error:  # refused, timed out, or an HTTP error status
        print(f"kitteh-healthz: {url}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
