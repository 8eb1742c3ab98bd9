"""Page benchmark: Lighthouse 12 (mobile) and the image bytes each screen downloads, on the
home page and the image page of a 12 MP photo.

    python -m bench.pages [DIR ...] [--runs 3]

Starts the stack (the local runner, as a user runs it), uploads the photos of tests/data/photos
(or $KITTEH_PHOTOS) and, newest, a 12 MP photo made from the largest one (cropped to
4000 × 3000, JPEG q90), and waits until the background has made their AVIF and WebP files.
Then, against Debian's Chromium:

- Lighthouse 12.2.3 (installed with ``npm i -E`` into bench/.node/ when missing: 13 wants
  Node 22), mobile (its default: a mid-range phone, simulated slow 4G and 4× CPU), performance
  only, ``--runs`` times per page; the run with the median score counts.
- Playwright, at 390×844 @3× (a phone) and 1440×900 @2× (a laptop): the bytes of every image
  the page downloads, and how wide the picture shown is (its natural width) against the width
  it is displayed at in device pixels (or the original's full width, if smaller).

Targets (the issue's, not asserted): Lighthouse ≥ 98 on both pages, LCP ≤ 1.5 s, CLS 0;
the image page ≤ 150 KiB of images on the phone, ≤ 300 KiB on the laptop, and a picture at
least 0.9× as wide as displayed. Exit status 1 only when something failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from PIL import Image

from bench.common import photos, require, running_stack, say, table

LIGHTHOUSE = "lighthouse@12.2.3"
NODE_DIR = Path(__file__).resolve().with_name(".node")
CHROME_FLAGS = ("--headless --no-sandbox --disable-gpu --no-first-run "
                "--disable-background-networking --disable-component-update --disable-sync")
SCREENS = (("390×844 @3×", 390, 844, 3), ("1440×900 @2×", 1440, 900, 2))
TWELVE_MP = (4000, 3000)
PLAIN = {"Accept-Encoding": "identity"}


def lighthouse() -> list[str]:
    """The command that runs Lighthouse 12, installing it into bench/.node/ when missing."""
    script = NODE_DIR / "node_modules" / "lighthouse" / "cli" / "index.js"
    if not script.exists():
        if shutil.which("npm") is None:
            raise SystemExit("bench: npm is missing (apt-get install npm)")
        NODE_DIR.mkdir(exist_ok=True)
        say(f"installing {LIGHTHOUSE} into {NODE_DIR}")
        subprocess.run(["npm", "i", "-E", "--no-audit", "--no-fund", LIGHTHOUSE], cwd=NODE_DIR,
                       check=True, stdout=subprocess.DEVNULL)
    return ["node", str(script)]


def twelve_megapixels(sources: list[Path], out_dir: Path) -> Path:
    """A real 12 MP photo: the largest one, cropped (centred) to 4000 × 3000."""
    def area(path: Path) -> int:
        with Image.open(path) as img:
            return img.width * img.height

    largest = max((p for p in sources if p.suffix.lower() in (".jpg", ".jpeg")), key=area)
    with Image.open(largest) as img:
        img = img.convert("RGB")
        if img.width < TWELVE_MP[0] or img.height < TWELVE_MP[1]:  # upscale a smaller one
            scale = max(TWELVE_MP[0] / img.width, TWELVE_MP[1] / img.height)
            img = img.resize((round(img.width * scale), round(img.height * scale)),
                             Image.Resampling.LANCZOS)
        left, top = (img.width - TWELVE_MP[0]) // 2, (img.height - TWELVE_MP[1]) // 2
        img = img.crop((left, top, left + TWELVE_MP[0], top + TWELVE_MP[1]))
        path = out_dir / "twelve-megapixels.jpg"
        img.save(path, "JPEG", quality=90)
    say(f"12 MP photo from {largest.name}: {path.stat().st_size / 1e6:.1f} MB")
    return path


async def upload_all(base: str, paths: list[Path]) -> list[dict]:
    """Upload in order (the last is the newest: first on the home page), then wait until
    every size of every image has its modern files (or 60 s: some are dropped as larger)."""
    images = []
    async with aiohttp.ClientSession() as http:
        for path in paths:
            form = aiohttp.FormData()
            form.add_field("file", path.read_bytes(), filename=path.name)
            async with http.post(f"{base}/api/images", data=form, headers=PLAIN) as response:
                if response.status not in (200, 201):
                    raise SystemExit(f"bench: upload of {path.name}: {response.status}")
                images.append(await response.json())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = True
            for image in images:
                async with http.get(f"{base}/api/images/{image['token']}",
                                    headers=PLAIN) as response:
                    now = await response.json()
                done = done and all(v["ready"] and len(v["formats"]) == 3
                                    for v in now["variants"].values())
            if done:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # what was dropped is dropped; let the CPU settle
    return images


def run_lighthouse(command: list[str], url: str, runs: int) -> dict:
    """The median-score run: score, LCP, CLS and total bytes."""
    results = []
    for _ in range(runs):
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run([*command, url, "--output=json", f"--output-path={out.name}",
                            "--quiet", "--only-categories=performance",
                            f"--chrome-flags={CHROME_FLAGS}"],
                           check=True, env={**os.environ, "CHROME_PATH": CHROMIUM})
            report = json.loads(Path(out.name).read_text())
        audits = report["audits"]
        results.append({
            "score": round(report["categories"]["performance"]["score"] * 100),
            "lcp": audits["largest-contentful-paint"]["numericValue"] / 1000,
            "cls": audits["cumulative-layout-shift"]["numericValue"],
            "bytes": audits["total-byte-weight"]["numericValue"],
        })
    results.sort(key=lambda r: r["score"])
    chosen = results[len(results) // 2]
    chosen["scores"] = [r["score"] for r in results]
    return chosen


def image_bytes(url: str, width: int, height: int, scale: int, original_width: int) -> dict:
    """Bytes of the images the page downloads on this screen, and the shown/needed width."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                            "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": width, "height": height},
                                          device_scale_factor=scale, is_mobile=width < 800,
                                          has_touch=width < 800)
            page = context.new_page()
            finished = []
            page.on("requestfinished", lambda r: finished.append(r)
                    if r.resource_type == "image" and not r.url.startswith("data:") else None)
            page.goto(url, wait_until="networkidle")
            total = sum(r.sizes()["responseBodySize"] for r in finished)
            # naturalWidth of a srcset image is density-corrected (CSS pixels): the file's own
            # width comes from a plain Image of the same URL (from the cache, no download).
            shown = page.evaluate("""async () => {
                const img = document.getElementById('picture')
                    || document.querySelector('.tile picture img');
                if (!img) return null;
                const probe = new Image();
                probe.src = img.currentSrc;
                await probe.decode();
                return {natural: probe.naturalWidth, css: img.getBoundingClientRect().width,
                        src: img.currentSrc};
            }""")
            context.close()
        finally:
            browser.close()
    needed = min(shown["css"] * scale, original_width) if shown else 0
    return {"kib": total / 1024, "files": len(finished),
            "ratio": shown["natural"] / needed if needed else float("nan"),
            "src": shown["src"].rsplit("/", 1)[-1] if shown else "-"}


def main(argv: list[str] | None = None) -> int:
    global CHROMIUM
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="more directories of photos")
    parser.add_argument("--runs", type=int, default=3, help="Lighthouse runs per page (3)")
    args = parser.parse_args(argv)

    CHROMIUM = str(require("chromium")["chromium"])
    command = lighthouse()
    sources = photos(args.dirs)
    with tempfile.TemporaryDirectory(prefix="kitteh-pages-") as tmp, \
            running_stack(KITTEH_RATE_LIMIT="100000") as stack:
        big = twelve_megapixels(sources, Path(tmp))
        images = asyncio.run(upload_all(stack.url, [*sources, big]))
        photo = images[-1]
        pages = [("home page", stack.url + "/", tile_width(photo)),
                 ("image page (12 MP)", stack.url + photo["page_url"], photo["original"]["width"])]
        rows = []
        for label, url, original_width in pages:
            say(f"Lighthouse on the {label}")
            report = run_lighthouse(command, url, args.runs)
            row = [label, f"{report['score']} ({'/'.join(map(str, report['scores']))})",
                   report["lcp"], report["cls"], report["bytes"] / 1024]
            for _, width, height, scale in SCREENS:
                measured = image_bytes(url, width, height, scale, original_width)
                row += [measured["kib"], f"{measured['ratio']:.2f}× ({measured['src']})"]
            rows.append(row)
    rows.append(["target (image page)", "≥ 98", 1.5, 0.0, "-", 150.0, "≥ 0.90×", 300.0,
                 "≥ 0.90×"])
    headers = ["page", "Lighthouse mobile (runs)", "LCP s", "CLS", "total KiB"]
    for screen, *_ in SCREENS:
        headers += [f"images KiB {screen}", f"shown/needed {screen}"]
    table("Pages: Lighthouse 12 (mobile) and image bytes per screen", headers, rows)
    return 0


def tile_width(image: dict) -> int:
    """Tiles show the large variant at most: the home page's 'original' width."""
    return image["variants"]["large"]["width"]


CHROMIUM = "/usr/bin/chromium"

if __name__ == "__main__":
    sys.exit(main())
