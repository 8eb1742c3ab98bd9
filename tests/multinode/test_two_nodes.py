"""Two Kitteh nodes behind a load balancer, sharing one PostgreSQL and one S3 store, each on
a host of its own (network namespaces the test makes), the database and SeaweedFS on a
third; then one node loses every process at once (SIGKILL) in the middle of a stream of
uploads. Nothing that was accepted is lost: the survivor finishes every variant, and the
balancer keeps answering.

A node is what `make run` starts (the runner: three services and the gateway), told where
the shared database and store are (DATABASE_URL, KITTEH_STORAGE=s3); see docs/scaling.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest
from PIL import Image

from deploy.postgres import LocalPostgres
from deploy.system import require
from tests import leaks
from tests.multinode.netns import Host, Network, namespaces_work
from tests.reliability.harness import wait_until
from tests.seaweedfs import start_seaweedfs
from tests.stack import RunningStack, free_ports, stack_env
from tests.stored import StoredFiles
from tests.support import REPO, file_form, open_dir

pytestmark = pytest.mark.e2e

NODE_PORT = 8080
BUCKET = "kitteh-nodes"
LB_CONFIG = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    upstream kitteh_nodes {{
        server {node1}:{port} max_fails=1 fail_timeout=10s;
        server {node2}:{port} max_fails=1 fail_timeout=10s;
    }}
    server {{
        listen 127.0.0.1:{listen};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://kitteh_nodes;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_connect_timeout 2s;
            # A node that vanished mid-request: the upload (buffered here) is sent to the
            # other node. Safe for POST too: the same bytes are the same image (sha256).
            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 2;
            add_header X-Kitteh-Node $upstream_addr always;
        }}
    }}
}}
"""


@dataclass
class Stoppable:
    """Something started by hand, registered with tests.leaks until stopped."""
    stop_action: object

    def stop(self) -> None:
        leaks.stopped(self)
        self.stop_action()


def started(action) -> Stoppable:
    thing = Stoppable(action)
    leaks.started(thing)
    return thing


def picture(n: int) -> bytes:
    """A small JPEG unique to ``n`` (identical bytes would be one image)."""
    rng = random.Random(n)
    img = Image.new("RGB", (720, 480), (rng.randrange(256), rng.randrange(256), n % 256))
    for _ in range(40):
        x, y = rng.randrange(700), rng.randrange(460)
        img.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)),
                  (x, y, x + 20, y + 20))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, comment=f"kitteh multinode {n}".encode())
    return out.getvalue()


@pytest.fixture
def network(request):
    namespaces_work()
    require("nginx", "postgres", "initdb", "pg_ctl")  # installed in the root namespace
    network = Network.create()
    request.addfinalizer(network.close)
    return network


@pytest.fixture
def shared_services(network):
    """PostgreSQL and SeaweedFS on the third host."""
    db_host = network.add_host("db", 2)
    prefix = ("ip", "netns", "exec", db_host.namespace)
    base = open_dir("kitteh-nodes-db-")
    cluster = LocalPostgres(base / "postgres", base / "postgres.log", listen=db_host.address,
                            trusted_network=network.cidr, command_prefix=prefix)
    cluster.ensure_cluster()
    cluster.start()
    database = started(lambda: cluster.stop("immediate"))
    store = start_seaweedfs(host=db_host.address, bucket=BUCKET, command_prefix=prefix)
    subprocess.run([sys.executable, "-m", "shared.migrate"], check=True, cwd=REPO,
                   env={**stack_env(base), "DATABASE_URL": cluster.tcp_url})
    yield cluster.tcp_url, store
    store.stop()
    database.stop()
    shutil.rmtree(base, ignore_errors=True)


def start_node(host: Host, database_url: str, store) -> RunningStack:
    data_dir = open_dir(f"kitteh-{host.name}-") / "var"
    # Every request comes from the balancer's address: the per-address limit is the
    # balancer's to enforce (docs/scaling.md).
    env = stack_env(data_dir, KITTEH_GATEWAY_HOST=host.address, KITTEH_PORT=str(NODE_PORT),
                    KITTEH_RATE_LIMIT="100000", **store.env(BUCKET))
    env["DATABASE_URL"] = database_url
    node = RunningStack(data_dir, env, command_prefix=host.command())
    node.start()
    node.url = f"http://{host.address}:{NODE_PORT}"
    return node


def start_balancer(network: Network, nodes: list[Host]) -> tuple[str, Stoppable]:
    work = open_dir("kitteh-balancer-")
    listen = free_ports(1)[0]
    (work / "nginx.conf").write_text(LB_CONFIG.format(
        work=work, node1=nodes[0].address, node2=nodes[1].address, port=NODE_PORT,
        listen=listen))
    nginx = require("nginx")["nginx"]
    process = subprocess.Popen([str(nginx), "-p", str(work), "-c", str(work / "nginx.conf"),
                                "-g", "daemon off;"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        # The whole process group: killing the master alone would leave its worker behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    balancer = started(stop)
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", listen)) == 0:
                return f"http://127.0.0.1:{listen}", balancer
        log = work / "error.log"
        if process.poll() is not None or time.monotonic() > deadline:
            balancer.stop()
            raise RuntimeError("the balancer did not start: "
                               + (log.read_text() if log.exists() else "no log"))
        time.sleep(0.1)


async def upload(http: aiohttp.ClientSession, base: str, n: int) -> tuple[int, dict, str]:
    async with http.post(f"{base}/api/images", data=file_form(picture(n), f"cat{n}.jpg"),
                         timeout=aiohttp.ClientTimeout(total=120)) as answer:
        body = await answer.json(content_type=None)
        return answer.status, body, answer.headers.get("X-Kitteh-Node", "")


async def test_two_nodes_share_the_work_and_lose_nothing_when_one_is_killed(
        network, shared_services):
    database_url, store = shared_services
    hosts = [network.add_host("node1", 11), network.add_host("node2", 12)]
    nodes = [start_node(h, database_url, store) for h in hosts]
    balancer, lb = start_balancer(network, hosts)
    files = StoredFiles({**store.env(BUCKET), "KITTEH_STORAGE_DIR": str(nodes[0].storage)})
    try:
        async with aiohttp.ClientSession() as http:
            # 1. Uploads through the balancer land on both nodes...
            first = [await upload(http, balancer, n) for n in range(6)]
            assert all(status == 201 for status, _, _ in first), first
            assert {last_node(node) for _, _, node in first} == {h.address for h in hosts}
            # ...and every picture, page and variant can be read through either node.
            for _, body, _ in first:
                for node in nodes:
                    await read_everything(http, node.url, body)

            # 2. A stream of uploads; every process of node 1 is killed in the middle of it.
            results: list[tuple[int, dict, str]] = []
            killed = asyncio.Event()

            async def stream(offset: int) -> None:
                for n in range(offset, 40, 2):
                    if n >= 16 and not killed.is_set():
                        killed.set()
                        hosts[0].kill_everything()
                    results.append(await upload(http, balancer, 100 + n))

            await asyncio.gather(stream(0), stream(1))
            assert killed.is_set() and not hosts[0].pids()
            accepted = [body for status, body, _ in results if status in (200, 201)]
            refused = [(status, body) for status, body, _ in results
                       if status not in (200, 201)]
            # The balancer kept answering: at most the uploads in flight at the kill (two
            # streams) could fail, and a client would simply send those again.
            assert len(refused) <= 2, refused
            assert len(accepted) >= 38
            # Node 2 answers everything now.
            assert all(last_node(node) == hosts[1].address
                       for _, _, node in results[-10:]), results[-10:]

        # 3. Every accepted upload keeps its original, its rows and all its variants: the
        # survivor takes over what node 1 had claimed once those claims go stale.
        tokens = [b["token"] for _, b, _ in first] + [b["token"] for b in accepted]
        conn = await asyncpg.connect(database_url)
        try:
            async def all_finished() -> bool:
                return not await conn.fetchval(
                    "SELECT count(*) FROM variants v JOIN images i ON i.id = v.image_id "
                    "WHERE i.token = ANY($1) AND v.state NOT IN ('ready', 'dropped')", tokens)

            await wait_until(all_finished, 300, step=1, what="every variant of every upload")
            rows = await conn.fetch(
                "SELECT i.token, i.storage_key, i.content_type, count(v.*) AS variants "
                "FROM images i JOIN variants v ON v.image_id = i.id "
                "WHERE i.token = ANY($1) GROUP BY i.id", tokens)
            assert {r["token"] for r in rows} == set(tokens)
        finally:
            await conn.close()
        stored = await files.names()
        async with aiohttp.ClientSession() as http:
            for token in tokens:
                async with http.get(f"{balancer}/api/images/{token}") as answer:
                    assert answer.status == 200, token
                    body = await answer.json()
                names = [body["original"]["url"].removeprefix("/i/")] + [
                    v["url"].removeprefix("/i/") for v in body["variants"].values()]
                assert set(names) <= stored, token
                await read_everything(http, balancer, body)
    finally:
        lb.stop()
        for node in nodes:
            node.stop()


def last_node(upstreams: str) -> str:
    """The node that answered: the last of nginx's "addr:port, addr:port" (after a retry)."""
    return upstreams.split(", ")[-1].rsplit(":", 1)[0]


async def read_everything(http: aiohttp.ClientSession, base: str, body: dict) -> None:
    async with http.get(base + body["page_url"]) as answer:
        assert answer.status == 200, base + body["page_url"]
    expected = {"original": (body["original"]["width"], body["original"]["height"]),
                **{k: (v["width"], v["height"]) for k, v in body["variants"].items()}}
    urls = {"original": body["original"]["url"],
            **{k: v["url"] for k, v in body["variants"].items()}}
    for kind, url in urls.items():
        async with http.get(base + url) as answer:
            assert answer.status == 200, base + url
            assert "immutable" in answer.headers["Cache-Control"], base + url
            with Image.open(io.BytesIO(await answer.read())) as img:
                assert img.size == expected[kind], base + url
