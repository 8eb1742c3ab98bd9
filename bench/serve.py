"""Serving benchmark: wrk against the whole stack through the gateway, with bare baselines.

    python -m bench.serve [--seconds 5] [--connections 16] [--rounds 3]

Starts the stack with the local runner (tests/stack.py: temp data dir, free ports), uploads
the sample photos, then loads, in rounds and alternating, with ``wrk -t2``:

- a variant file (the 600-wide JPEG) through the gateway, and the same file from a bare nginx
  (static root, nothing else configured);
- an image page through the gateway (gallery: a real Postgres query, the real template), the
  same page from the gallery directly (no gateway), and two bare aiohttp + aiohttp-jinja2
  pages of about the same size: one that first runs the same image query on the same
  database (plain asyncpg pool), one with no database at all;
- the home page through the gateway (the newest uploads: a query and a grid).

Each row is the median of the rounds. Everything is on 127.0.0.1; wrk shares the two cores
with the servers, for the baselines alike. Any non-2xx answer, socket error or error in the
service logs makes the exit status 1.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (
    PHOTOS,
    CpuMeter,
    background,
    bare_nginx,
    free_port,
    median,
    request,
    running_stack,
    say,
    service_env,
    stack_log_errors,
    table,
    upload,
    wait_variants_ready,
    wrk,
)

SEED_PHOTOS = ("j03_seeding.jpg", "j04_dragonfly.jpg", "j07_wine.jpg", "j10_fallenleaf.jpg",
               "p01_chelsea.png", "p03_coffee.png", "adwaita_image_alpha.png")
CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png"}
FILE_GATEWAY = "variant file, gateway"
FILE_BARE = "variant file, bare nginx"
PAGE_GATEWAY = "image page, gateway"
PAGE_DIRECT = "image page, gallery direct"
BARE_QUERY = "bare page + same query"
BARE_PAGE = "bare page, no database"
HOME_GATEWAY = "home page, gateway"
TARGET_FILE = 0.90  # variant file through the gateway / bare nginx
TARGET_PAGE = 0.70  # image page through the gateway / bare aiohttp + jinja2 page


def seed(base: str) -> list[dict]:
    images = []
    for name in SEED_PHOTOS:
        path = PHOTOS / name
        if path.exists():
            images.append(upload(base, path.read_bytes(), name,
                                 CONTENT_TYPES[path.suffix.lower()]))
    if not images:
        raise SystemExit(f"bench: none of {', '.join(SEED_PHOTOS)} in {PHOTOS} "
                         "(set KITTEH_PHOTOS)")
    for image in images:
        wait_variants_ready(base, image["token"])
    return images


def checked_get(url: str) -> bytes:
    status, body = request("GET", url)
    if status != 200:
        raise RuntimeError(f"GET {url} answered {status}")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run (5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk -c (16)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each target (3)")
    args = parser.parse_args(argv)

    ok = True
    with running_stack() as stack, tempfile.TemporaryDirectory(prefix="kitteh-bench-") as tmp:
        base = stack.url
        images = seed(base)
        say(f"seeded {len(images)} images")
        photo = images[1] if len(images) > 1 else images[0]  # a landscape 13 MP JPEG
        variant_url = photo["variants"]["monstrous"]["url"]
        page_bytes = len(checked_get(base + photo["page_url"]))

        gallery_env = service_env(stack, "gallery")
        gallery_url = f"http://127.0.0.1:{gallery_env['KITTEH_GALLERY_PORT']}"
        plain_port, query_port = free_port(), free_port()
        page_server = [sys.executable, "-m", "bench.baselines", "page"]
        pids = stack.child_pids()
        postgres = int((stack.data_dir / "postgres" / "data" / "postmaster.pid")
                       .read_text().split()[0])
        with bare_nginx(stack.storage) as (nginx_url, nginx_pid), \
                background([*page_server, str(plain_port), str(page_bytes)], plain_port,
                           Path(tmp) / "page.log") as plain, \
                background([*page_server, str(query_port), str(page_bytes),
                            gallery_env["DATABASE_URL"], photo["token"]], query_port,
                           Path(tmp) / "page-query.log") as query:
            gateway, gallery = pids["nginx-gateway"], pids["gallery"]
            servers = {  # whose CPU each request costs (descendants included)
                FILE_GATEWAY: [gateway], FILE_BARE: [nginx_pid],
                PAGE_GATEWAY: [gateway, gallery, postgres], PAGE_DIRECT: [gallery, postgres],
                BARE_QUERY: [query.pid, postgres], BARE_PAGE: [plain.pid],
                HOME_GATEWAY: [gateway, gallery, postgres],
            }
            urls = {
                FILE_GATEWAY: base + variant_url,
                FILE_BARE: nginx_url + variant_url.removeprefix("/i"),
                PAGE_GATEWAY: base + photo["page_url"],
                PAGE_DIRECT: gallery_url + photo["page_url"],
                BARE_QUERY: f"http://127.0.0.1:{query_port}/",
                BARE_PAGE: f"http://127.0.0.1:{plain_port}/",
                HOME_GATEWAY: base + "/",
            }
            sizes = {name: len(checked_get(url)) for name, url in urls.items()}
            results: dict[str, list[dict]] = {name: [] for name in urls}
            for round_ in range(args.rounds):
                say(f"round {round_ + 1} of {args.rounds}")
                # Each target right next to its baseline, in a random order: the load the
                # rest of the machine adds drifts slowly, and then hits both alike.
                order = [*random.sample([FILE_GATEWAY, FILE_BARE], 2),
                         *random.sample([PAGE_GATEWAY, BARE_QUERY], 2),
                         *random.sample([PAGE_DIRECT, BARE_PAGE, HOME_GATEWAY], 3)]
                for name in order:
                    with CpuMeter(servers[name]) as cpu:
                        result = wrk(urls[name], args.seconds, args.connections)
                    result["cpu_us"] = cpu.seconds / max(1, result["requests"]) * 1e6
                    results[name].append(result)
                    time.sleep(0.5)

        rows = []
        rps = {name: median([r["rps"] for r in runs]) for name, runs in results.items()}

        def paired(name: str, baseline: str) -> float:
            """Median over the rounds of this round's ratio (not a ratio of medians)."""
            return median([a["rps"] / b["rps"]
                           for a, b in zip(results[name], results[baseline], strict=True)])

        def cpu_paired(name: str, baseline: str) -> float:
            """Requests per CPU second against the baseline's, the same way."""
            return median([b["cpu_us"] / a["cpu_us"]
                           for a, b in zip(results[name], results[baseline], strict=True)])

        for name, runs in results.items():
            bad = sum(r["bad_status"] for r in runs)
            errors = sum(r["socket_errors"] for r in runs)
            ok = ok and bad == 0 and errors == 0
            baseline = FILE_BARE if name in (FILE_GATEWAY, FILE_BARE) else BARE_QUERY
            rows.append([name, sizes[name], rps[name],
                         median([r["p50_ms"] for r in runs]), median([r["p99_ms"] for r in runs]),
                         f"{paired(name, baseline):.2f}×",
                         "-" if name in (FILE_GATEWAY, FILE_BARE)
                         else f"{paired(name, BARE_PAGE):.2f}×",
                         median([r["cpu_us"] for r in runs]),
                         f"{cpu_paired(name, baseline):.2f}×", bad, errors])
        table(f"Serving through the gateway vs bare servers (wrk -t2 -c{args.connections} "
              f"-d{args.seconds}s, median of {args.rounds} rounds; ratios: median of the "
              "rounds' paired ratios)",
              ["target", "bytes", "req/s", "p50 ms", "p99 ms",
               "req/s vs bare nginx / bare page + query", "req/s vs bare page, no DB",
               "server CPU µs/req", "req per CPU s vs baseline", "non-2xx", "socket errors"],
              rows)
        log_errors = stack_log_errors(stack)
        if log_errors:
            ok = False
            say("errors in the service logs:\n" + "\n".join(log_errors[:20]))

        file_ratio = paired(FILE_GATEWAY, FILE_BARE)
        file_cpu = cpu_paired(FILE_GATEWAY, FILE_BARE)
        page_cpu = cpu_paired(PAGE_GATEWAY, BARE_QUERY)
        page_ratio = paired(PAGE_GATEWAY, BARE_QUERY)
        page_plain = paired(PAGE_GATEWAY, BARE_PAGE)
        direct_ratio = paired(PAGE_DIRECT, BARE_QUERY)
    print(f"\ntarget: variant files through the gateway >= {TARGET_FILE:.0%} of bare nginx: "
          f"{file_ratio:.0%} ({'holds' if file_ratio >= TARGET_FILE else 'MISSES'}); "
          f"per CPU second {file_cpu:.0%}")
    print(f"target: image page >= {TARGET_PAGE:.0%} of a bare aiohttp + jinja2 page of the same "
          f"size with the same query: {page_ratio:.0%} "
          f"({'holds' if page_ratio >= TARGET_PAGE else 'MISSES'}), per CPU second "
          f"{page_cpu:.0%}; "
          f"{page_plain:.0%} of one without a database; gallery alone (no gateway, "
          f"never cached): {direct_ratio:.0%}")
    print(f"errors: {'none' if ok else 'SOME (see above)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
