"""Which async S3 client the S3 store uses: aiobotocore vs obstore vs bare aiohttp + SigV4.

    python -m bench.store_client [--rounds 3] [--concurrency 8]

aiobotocore is not a dependency: ``.venv/bin/pip install aiobotocore`` first.

Starts a SeaweedFS (tests/seaweedfs.py: the pinned ``weed server -s3`` on loopback ports) and,
in rounds with the clients alternating, runs put, get and head of 4 KB, 100 KB and 5 MB
objects (and a 5 MB put from a file, what ``put_file`` does), ``--concurrency`` requests at a
time. Per row: operations per second and the client's CPU per operation (this process, every
thread: obstore works in Rust threads), each the median of the rounds, with ratios against
aiobotocore (the baseline). The server shares the two cores, the same for every client; CPU
per operation is the steadier number on a busy machine.

Clients are set up as the S3 store would set them up: path-style addressing, SigV4, no
optional checksums (SeaweedFS checks none; S3 needs none for a plain PUT).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import obstore
from obstore.store import S3Store as ObStore

try:  # the baseline, not a dependency of Kitteh
    from aiobotocore.session import get_session
    from botocore.config import Config
except ImportError:
    raise SystemExit("bench.store_client compares with aiobotocore: "
                     ".venv/bin/pip install aiobotocore") from None

from bench.common import median, ratio, say, table
from shared.storage.sigv4 import sigv4_headers
from tests.seaweedfs import SeaweedFS, start_seaweedfs

SIZES = {"4 KB": 4 * 1024, "100 KB": 100 * 1024, "5 MB": 5 * 1024 * 1024}
# Operations per round and size: enough for a steady rate, few enough for a busy machine.
COUNTS = {"4 KB": 400, "100 KB": 200, "5 MB": 24}
BASELINE = "aiobotocore"
Op = Callable[[str], Awaitable[object]]


class Client:
    name: str

    async def put(self, key: str, data: bytes) -> None: ...
    async def put_file(self, key: str, path: Path) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def head(self, key: str) -> int: ...
    async def close(self) -> None: ...


class Botocore(Client):
    name = "aiobotocore"

    async def open(self, server: SeaweedFS, concurrency: int) -> Botocore:
        self._context = get_session().create_client(
            "s3", endpoint_url=server.endpoint, region_name=server.region,
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=concurrency,
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
        self.client = await self._context.__aenter__()
        self.bucket = server.bucket
        return self

    async def put(self, key: str, data: bytes) -> None:
        await self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                     ContentType="image/webp")

    async def put_file(self, key: str, path: Path) -> None:
        with path.open("rb") as file:  # botocore hashes, then sends, the file object
            await self.client.put_object(Bucket=self.bucket, Key=key, Body=file,
                                         ContentType="image/webp")

    async def get(self, key: str) -> bytes:
        answer = await self.client.get_object(Bucket=self.bucket, Key=key)
        async with answer["Body"] as body:
            return await body.read()

    async def head(self, key: str) -> int:
        return (await self.client.head_object(Bucket=self.bucket, Key=key))["ContentLength"]

    async def close(self) -> None:
        await self._context.__aexit__(None, None, None)


class Obstore(Client):
    name = "obstore"

    async def open(self, server: SeaweedFS, concurrency: int) -> Obstore:
        self.store = ObStore(
            server.bucket, endpoint=server.endpoint, region=server.region,
            access_key_id=server.access_key_id, secret_access_key=server.secret_access_key,
            virtual_hosted_style_request=False, client_options={"allow_http": True})
        return self

    async def put(self, key: str, data: bytes) -> None:
        await obstore.put_async(self.store, key, data,
                                attributes={"Content-Type": "image/webp"})

    async def put_file(self, key: str, path: Path) -> None:
        await obstore.put_async(self.store, key, path, attributes={"Content-Type": "image/webp"})

    async def get(self, key: str) -> bytes:
        return bytes(await (await obstore.get_async(self.store, key)).bytes_async())

    async def head(self, key: str) -> int:
        return (await obstore.head_async(self.store, key))["size"]

    async def close(self) -> None:
        pass


class BareAiohttp(Client):
    """The floor: aiohttp and the 30-line SigV4 signer of shared/storage/sigv4.py, nothing else."""

    name = "aiohttp + SigV4"

    async def open(self, server: SeaweedFS, concurrency: int) -> BareAiohttp:
        self.server = server
        self.host = f"{server.host}:{server.ports['s3.port']}"
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency))
        return self

    def _headers(self, method: str, path: str, payload: str) -> dict[str, str]:
        s = self.server
        return sigv4_headers(method, self.host, path, "", payload, s.access_key_id,
                             s.secret_access_key, s.region)

    async def put(self, key: str, data: bytes) -> None:
        path = f"/{self.server.bucket}/{key}"
        headers = self._headers("PUT", path, hashlib.sha256(data).hexdigest())
        async with self.session.put(f"http://{self.host}{path}", data=data,
                                    headers={**headers, "content-type": "image/webp"}) as r:
            r.raise_for_status()

    async def put_file(self, key: str, path: Path) -> None:
        digest = hashlib.sha256()
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
        target = f"/{self.server.bucket}/{key}"
        headers = self._headers("PUT", target, digest.hexdigest())
        with path.open("rb") as file:
            length = str(os.fstat(file.fileno()).st_size)
            async with self.session.put(f"http://{self.host}{target}", data=file,
                                        headers={**headers, "content-type": "image/webp",
                                                 "content-length": length}) as r:
                r.raise_for_status()

    async def get(self, key: str) -> bytes:
        path = f"/{self.server.bucket}/{key}"
        headers = self._headers("GET", path, hashlib.sha256(b"").hexdigest())
        async with self.session.get(f"http://{self.host}{path}", headers=headers) as r:
            r.raise_for_status()
            return await r.read()

    async def head(self, key: str) -> int:
        path = f"/{self.server.bucket}/{key}"
        headers = self._headers("HEAD", path, hashlib.sha256(b"").hexdigest())
        async with self.session.head(f"http://{self.host}{path}", headers=headers) as r:
            r.raise_for_status()
            return int(r.headers["Content-Length"])

    async def close(self) -> None:
        await self.session.close()


async def timed(op: Op, count: int, concurrency: int) -> tuple[float, float]:
    """(operations per second, client CPU milliseconds per operation)."""
    keys = iter(range(count))

    async def worker() -> None:
        for index in keys:
            await op(f"k{index % 64}")  # 64 objects per size, read many times

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, cpu / count * 1000


async def run(server: SeaweedFS, rounds: int, concurrency: int) -> int:
    clients: list[Client] = [await Botocore().open(server, concurrency),
                             await Obstore().open(server, concurrency),
                             await BareAiohttp().open(server, concurrency)]
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="kitteh-bench-s3-") as temp:
        files = {label: Path(temp) / label.replace(" ", "") for label in SIZES}
        for label, size in SIZES.items():
            files[label].write_bytes(os.urandom(size))
        try:
            for round_ in range(rounds):
                say(f"round {round_ + 1}/{rounds}")
                for label, size in SIZES.items():
                    data = files[label].read_bytes()
                    count = COUNTS[label]
                    for client in clients if round_ % 2 == 0 else clients[::-1]:
                        prefix = f"{client.name.split()[0]}/{size}/"
                        ops: dict[str, Op] = {
                            "put": lambda k, c=client, p=prefix, d=data: c.put(p + k, d),
                            "get": lambda k, c=client, p=prefix: c.get(p + k),
                            "head": lambda k, c=client, p=prefix: c.head(p + k),
                        }
                        if label == "5 MB":
                            ops["put file"] = (lambda k, c=client, p=prefix, f=files[label]:
                                               c.put_file(p + k, f))
                        for op_name, op in ops.items():
                            results.setdefault((f"{op_name} {label}", client.name), []).append(
                                await timed(op, count, concurrency))
        finally:
            for client in clients:
                await client.close()
    rows = []
    names = [client.name for client in clients]
    ordered = sorted(results.items(), key=lambda item: names.index(item[0][1]))
    ordered.sort(key=lambda item: [r for r, _ in results].index(item[0][0]))
    for (row, name), values in ordered:
        rate = median([v[0] for v in values])
        cpu = median([v[1] for v in values])
        base = results[(row, BASELINE)]
        rows.append((row, name, rate, ratio(rate, median([v[0] for v in base])), cpu,
                     ratio(cpu, median([v[1] for v in base]))))
    table(f"S3 clients against SeaweedFS, {concurrency} at a time, median of {rounds} rounds "
          f"(ratios vs {BASELINE})",
          ("operation", "client", "ops/s", "ops/s ratio", "client CPU ms/op", "CPU ratio"),
          rows)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    started = time.monotonic()
    server = start_seaweedfs(bucket="kitteh-bench")
    say(f"SeaweedFS ready in {time.monotonic() - started:.1f} s at {server.endpoint}")
    try:
        return asyncio.run(run(server, args.rounds, args.concurrency))
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
