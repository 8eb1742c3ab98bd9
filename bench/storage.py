"""Storage modes: the same stack with its pictures on the volume and in an S3 bucket.

    python -m bench.storage [--uploads 12] [--seconds 5] [--rounds 3]

Starts a real SeaweedFS (tests/seaweedfs.py, the server the tests use) and two stacks with the
local runner, one per mode (KITTEH_STORAGE=local, KITTEH_STORAGE=s3), and measures, in
alternating rounds so that both see the same machine:

- upload answer time: POST /api/images of real photos made unique (each one new bytes), one
  at a time, through the gateway; the answer comes after the original is stored and the first
  three variants are made (from a scratch copy fetched back from the store, in S3 mode);
- a cached variant file through the gateway, loaded with ``wrk -t2 -c16`` after one warming
  request: the volume with sendfile, or the gateway's file cache in S3 mode.

Targets (issue 17): S3 upload answer ≤ 1.3× local; cached variant ≥ 0.8× the requests per
second of local mode. Everything listens on 127.0.0.1; SeaweedFS and wrk share the two cores
with the stacks. Exit status 1 if a request failed (never because it was slow: a missed target
is printed as MISSED, as in the other benchmarks).
"""

from __future__ import annotations

import argparse
import sys
import time

from bench.common import (
    median,
    ratio,
    request,
    running_stack,
    say,
    stack_log_errors,
    table,
    upload,
    wait_variants_ready,
    wrk,
)

UPLOAD_TARGET = 1.3
FILE_TARGET = 0.8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storage")
    parser.add_argument("--uploads", type=int, default=12, help="uploads per mode per round")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    from tests.reliability.harness import unique_photo
    from tests.seaweedfs import start_seaweedfs

    server = start_seaweedfs()
    failures = 0
    try:
        with running_stack() as local, running_stack(**server.env("kitteh-bench")) as s3:
            stacks = {"local": local, "s3": s3}
            answers: dict[str, list[float]] = {"local": [], "s3": []}
            rps: dict[str, list[float]] = {"local": [], "s3": []}
            hot = {}
            for mode, stack in stacks.items():  # the same variant to load, made and cached
                photo = unique_photo(9000)
                body = upload(stack.url, photo.data, photo.filename, photo.content_type)
                wait_variants_ready(stack.url, body["token"], 120)
                hot[mode] = stack.url + body["variants"]["monstrous"]["url"]
                status, _ = request("GET", hot[mode])
                failures += status != 200
            index = 0
            for round_number in range(args.rounds):
                for mode in (("local", "s3") if round_number % 2 == 0 else ("s3", "local")):
                    stack = stacks[mode]
                    for _ in range(args.uploads):
                        index += 1
                        photo = unique_photo(index)
                        started = time.perf_counter()
                        upload(stack.url, photo.data, photo.filename, photo.content_type)
                        answers[mode].append(time.perf_counter() - started)
                    time.sleep(2)  # let the background (AVIF, WebP) settle a little
                    result = wrk(hot[mode], seconds=args.seconds)
                    failures += result["socket_errors"] + result["bad_status"]
                    rps[mode].append(result["rps"])
                say(f"round {round_number + 1}: "
                    + ", ".join(f"{m} {median(rps[m][-1:]):.0f} req/s" for m in stacks))
            for stack in stacks.values():
                for line in stack_log_errors(stack):
                    say(line)
                    failures += 1
    finally:
        server.stop()

    up_local, up_s3 = median(answers["local"]) * 1000, median(answers["s3"]) * 1000
    rps_local, rps_s3 = median(rps["local"]), median(rps["s3"])
    up_ok = up_s3 <= UPLOAD_TARGET * up_local
    file_ok = rps_s3 >= FILE_TARGET * rps_local
    table("Storage modes: S3 (SeaweedFS on loopback) against the local volume",
          ["measure", "local", "s3", "s3 / local", "target"], [
                    ["upload answer, median ms", f"{up_local:.0f}", f"{up_s3:.0f}",
                     ratio(up_s3, up_local), f"≤ {UPLOAD_TARGET}× {'ok' if up_ok else 'MISSED'}"],
                    ["cached variant, req/s", f"{rps_local:.0f}", f"{rps_s3:.0f}",
                     ratio(rps_s3, rps_local), f"≥ {FILE_TARGET}× {'ok' if file_ok else 'MISSED'}"],
                ])
    print(f"{len(answers['local'])} uploads per mode; wrk -t2 -c16 -d{args.seconds}s, median of "
          f"{args.rounds} rounds; failures: {failures}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
