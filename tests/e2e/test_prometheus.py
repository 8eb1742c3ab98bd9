"""Debian's Prometheus scrapes the running stack and answers a PromQL question about uploads.

Prometheus and prometheus-nginx-exporter (for the gateway's stub_status) are installed with
apt-get when missing; both run on free loopback ports with a temporary configuration and
storage, and are stopped whatever the test's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from deploy.system import require
from tests.e2e.test_observability import fresh_image
from tests.stack import free_ports
from tests.support import REPO, file_form

pytestmark = pytest.mark.e2e

SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
{jobs}
"""
JOB = """\
  - job_name: {name}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
PATIENCE = 60  # seconds for Prometheus to start, scrape and answer
DASHBOARD = REPO / "deploy" / "grafana" / "kitteh.json"


@contextlib.contextmanager
def started(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def prometheus(stack, tmp_path) -> Iterator[str]:
    programs = require("prometheus", "prometheus-nginx-exporter")
    prometheus_port, exporter_port = free_ports(2)
    status_port = stack.env["KITTEH_GATEWAY_STATUS_PORT"]
    targets = {service: stack.env[f"KITTEH_{service.upper()}_PORT"]
               for service in ("upload", "resize", "gallery")}
    targets["gateway"] = exporter_port
    config = tmp_path / "prometheus.yml"
    config.write_text(SCRAPE_CONFIG.format(
        jobs="".join(JOB.format(name=name, port=port) for name, port in targets.items())))
    with started([str(programs["prometheus-nginx-exporter"]),
                  f"-nginx.scrape-uri=http://127.0.0.1:{status_port}/stub_status",
                  f"-web.listen-address=127.0.0.1:{exporter_port}"],
                 tmp_path / "exporter.log"), \
         started([str(programs["prometheus"]), f"--config.file={config}",
                  f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                  f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                 tmp_path / "prometheus.log") as process:
        try:
            yield f"http://127.0.0.1:{prometheus_port}"
        finally:
            if process.poll() is not None:
                print((tmp_path / "prometheus.log").read_text()[-3000:])


async def query(http, prometheus: str, promql: str) -> float | None:
    """The single value of an instant query, or None while there is none (yet)."""
    try:
        async with http.get(f"{prometheus}/api/v1/query", params={"query": promql}) as r:
            if r.status != 200:
                return None
            result = (await r.json())["data"]["result"]
    except aiohttp.ClientConnectionError:
        return None  # not listening yet
    return float(result[0]["value"][1]) if result else None


async def eventually(http, prometheus: str, promql: str, wanted) -> float:
    seen = None
    for _ in range(PATIENCE * 4):
        seen = await query(http, prometheus, promql)
        if seen is not None and wanted(seen):
            return seen
        await asyncio.sleep(0.25)
    raise AssertionError(f"{promql}: still {seen} after {PATIENCE} s")


async def test_prometheus_scrapes_the_stack_and_counts_an_upload(stack, prometheus):
    created = 'sum(kitteh_uploads_total{outcome="created"})'
    async with aiohttp.ClientSession() as http:
        # Every target is up, the gateway's through the exporter.
        await eventually(http, prometheus, "count(up == 1)", lambda n: n == 4)
        before = await eventually(http, prometheus, created, lambda n: n >= 0)

        form = file_form(fresh_image(), "counted.jpg")
        async with http.post(f"{stack.url}/api/images", data=form) as response:
            assert response.status == 201, await response.text()

        after = await eventually(http, prometheus, created, lambda n: n >= before + 1)
        assert after == before + 1
        # The variants were made and timed, and the gateway's requests are counted.
        await eventually(http, prometheus,
                         'sum(kitteh_variant_render_seconds_count{kind="tiny"})',
                         lambda n: n >= 1)
        await eventually(http, prometheus, "nginx_http_requests_total", lambda n: n >= 1)
        await eventually(http, prometheus, "min(kitteh_storage_free_bytes)", lambda n: n > 0)


async def test_every_dashboard_query_is_valid_and_finds_its_metrics(stack, prometheus):
    """The Grafana dashboard asks for what the stack really exposes."""
    exprs = [target["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"]
             for target in panel["targets"]]
    names = {name for expr in exprs for name in re.findall(r"\b(?:kitteh|nginx)_\w+", expr)}
    assert len(names) >= 10
    async with aiohttp.ClientSession() as http:
        await eventually(http, prometheus, "count(up == 1)", lambda n: n == 4)
        for name in sorted(names):
            await eventually(http, prometheus, f"count({name})", lambda n: n >= 1)
        for expr in exprs:
            async with http.get(f"{prometheus}/api/v1/query", params={"query": expr}) as r:
                assert r.status == 200, (expr, await r.text())
                assert (await r.json())["status"] == "success", expr
