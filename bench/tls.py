"""What HTTPS costs at the gateway: wrk over TLS against the same requests over plain HTTP.

    python -m bench.tls [--seconds 5] [--connections 16] [--rounds 3]

Starts two stacks with the local runner (tests/stack.py: temp data dirs, free ports): one
plain, one with KITTEH_TLS_CERT / KITTEH_TLS_KEY set to a certificate made here with openssl
(ECDSA P-256, as Let's Encrypt issues by default). Both get the same photo. Then, in rounds,
each HTTPS target right next to its HTTP twin (wrk -t2; HTTP/1.1, wrk speaks no HTTP/2):

- the 600-wide variant file and the (micro-cached) image page over kept-alive connections:
  the cost of encrypting the bytes;
- ``/healthz`` with ``Connection: close``: a new connection, so a full TLS handshake
  (TLS 1.3, ECDHE + ECDSA; no resumption, wrk keeps no sessions), for every request.

CPU is the gateway nginx's own (master and workers), per request. Any non-2xx answer,
socket error or error in the service logs makes the exit status 1.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import ssl
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from bench.common import (
    PHOTOS,
    REPO,
    CpuMeter,
    median,
    multipart,
    running_stack,
    say,
    stack_log_errors,
    table,
    upload,
    wrk,
)

PHOTO = "j04_dragonfly.jpg"
KEEPALIVE = ("variant file", "image page")
HANDSHAKE = "/healthz, new connection per request"


def https_upload(base: str, context: ssl.SSLContext, data: bytes, name: str) -> dict:
    parts = urllib.parse.urlsplit(base)
    body, content_type = multipart(data, name)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=120,
                                       context=context)
    try:
        conn.request("POST", "/api/images", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        answer = response.read()
    finally:
        conn.close()
    if response.status not in (200, 201):
        raise RuntimeError(f"HTTPS upload answered {response.status}: {answer[:300]!r}")
    return json.loads(answer)


def fetched(url: str, context: ssl.SSLContext | None = None) -> int:
    """Bytes of a 200 answer (a variant is made on demand by the first request)."""
    parts = urllib.parse.urlsplit(url)
    conn = (http.client.HTTPSConnection(parts.hostname, parts.port, context=context)
            if parts.scheme == "https" else http.client.HTTPConnection(parts.hostname, parts.port))
    try:
        conn.request("GET", parts.path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {url} answered {response.status}")
    return len(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run (5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (16)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each target (3)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tests.certs import self_signed

    data = (PHOTOS / PHOTO).read_bytes()
    ok = True
    with tempfile.TemporaryDirectory(prefix="kitteh-bench-tls-") as tmp:
        certificate = self_signed(Path(tmp), ["127.0.0.1"])
        context = certificate.client_context()
        with running_stack() as plain, running_stack(
                KITTEH_TLS_CERT=str(certificate.cert),
                KITTEH_TLS_KEY=str(certificate.key)) as tls:
            image = upload(plain.url, data, PHOTO)
            tls_image = https_upload(tls.url, context, data, PHOTO)
            assert image["variants"]["monstrous"]["url"] == \
                tls_image["variants"]["monstrous"]["url"]  # the same bytes, the same key
            targets = {}  # (name, scheme) -> url, headers, gateway pid
            for scheme, stack, own in (("HTTP", plain, image), ("HTTPS", tls, tls_image)):
                gateway = stack.child_pids()["nginx-gateway"]
                # Names are random per stack; the file key is the content's, the same in both.
                paths = {"variant file": own["variants"]["monstrous"]["url"],
                         "image page": own["page_url"], HANDSHAKE: "/healthz"}
                for name, path in paths.items():
                    headers = ("Connection: close",) if name == HANDSHAKE else ()
                    targets[name, scheme] = (stack.url + path, headers, gateway)
            sizes = {name: fetched(targets[name, "HTTPS"][0], context) for name in paths}
            for name in paths:
                # Same sizes (the pages differ only in their random name's length).
                assert abs(fetched(targets[name, "HTTP"][0]) - sizes[name]) < 200, name
            results: dict[tuple[str, str], list[dict]] = {key: [] for key in targets}
            for round_ in range(args.rounds):
                say(f"round {round_ + 1} of {args.rounds}")
                for name in paths:  # each HTTPS run right next to its HTTP twin
                    for scheme in random.sample(["HTTP", "HTTPS"], 2):
                        url, headers, gateway = targets[name, scheme]
                        with CpuMeter([gateway]) as cpu:
                            result = wrk(url, args.seconds, args.connections, headers=headers)
                        result["cpu_us"] = cpu.seconds / max(1, result["requests"]) * 1e6
                        results[name, scheme].append(result)
                        time.sleep(0.5)
            for stack in (plain, tls):
                errors = stack_log_errors(stack)
                if errors:
                    ok = False
                    say("errors in the service logs:\n" + "\n".join(errors[:20]))

    def paired(name: str, key: str, invert: bool = False) -> float:
        pairs = zip(results[name, "HTTPS"], results[name, "HTTP"], strict=True)
        return median([(b[key] / a[key]) if invert else (a[key] / b[key]) for a, b in pairs])

    rows = []
    for (name, scheme), runs in results.items():
        bad = sum(r["bad_status"] for r in runs)
        errors = sum(r["socket_errors"] for r in runs)
        ok = ok and bad == 0 and errors == 0
        rows.append([f"{name}, {scheme}", sizes[name], median([r["rps"] for r in runs]),
                     median([r["p50_ms"] for r in runs]), median([r["p99_ms"] for r in runs]),
                     f"{paired(name, 'rps'):.2f}×" if scheme == "HTTPS" else "1.00×",
                     median([r["cpu_us"] for r in runs]),
                     f"{paired(name, 'cpu_us', invert=True):.2f}×" if scheme == "HTTPS"
                     else "1.00×", bad, errors])
    table(f"HTTPS vs plain HTTP at the gateway (wrk -t2 -c{args.connections} -d{args.seconds}s, "
          f"median of {args.rounds} rounds; ratios: median of the rounds' paired ratios)",
          ["target", "bytes", "req/s", "p50 ms", "p99 ms", "req/s vs HTTP",
           "gateway CPU µs/req", "req per gateway CPU s vs HTTP", "non-2xx", "socket errors"],
          rows)
    print(f"errors: {'none' if ok else 'SOME (see above)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
