"""HDR benchmark (issue 19): CPU for every variant of a 12 MP Ultra HDR photo, against the same
photo without its gain map, and the SDR path against the engine as it was before HDR.

    python -m bench.hdr [--repeat N]

The photo is made here from ``j04_dragonfly.jpg`` (4224×3168 → 4000×3000) by
``tests.make_ultrahdr`` (libvips ``uhdrsave``: a quarter-size gain map, as a Pixel writes one),
then cleaned by the upload rewrite as an upload would be. Its SDR twin is the same first
picture alone. Each run makes every (size, format) pair an upload gets (five sizes; JPEG, AVIF
and WebP) with ``PillowEngine.render_all`` and its ThumbHash, on one pinned core; the methods
run interleaved ``--repeat`` times and the medians count. Targets: the HDR photo at most 1.5×
its SDR twin; the SDR photo no slower than with the HDR path switched off (``hdr=False``: the
engine before issue 19, but for one header read). Also the iPhone HDR HEIC of the test photos
(4032×3024, Apple gain map), with and without its Ultra HDR variants.

Every HDR output is checked: its JPEG files read as Ultra HDR (libvips ``uhdrload``) with the
photo's max content boost, the SDR twin's as plain JPEG; a failed check makes the exit status 1.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyvips
from PIL import Image, ImageChops, ImageStat

from bench.common import median, pin_one_core, ratio, say, table
from services.resize.engine import PillowEngine, Rendering
from shared.formats import BY_NAME, register_plugins
from shared.sanitize import jpeg, sanitize
from shared.sanitize.reader import Reader
from shared.variants import BASE, delivery_specs, largest_first
from tests.make_ultrahdr import ultrahdr
from tests.support import photo

WIDTH = 4000  # 4000×3000: 12 MP, a phone's photo
MAX_BOOST = 4.0
TARGET_HDR = 1.5


def make_photos(work: Path) -> tuple[Path, Path]:
    """(the cleaned 12 MP Ultra HDR upload, the same first picture without a gain map)."""
    raw, hdr, sdr = work / "raw.jpg", work / "hdr.jpg", work / "sdr.jpg"
    raw.write_bytes(ultrahdr(str(photo("j04_dragonfly.jpg")), WIDTH, MAX_BOOST))
    sanitize(raw, hdr, BY_NAME["JPEG"], 1)
    with hdr.open("rb") as src, sdr.open("wb") as out:
        jpeg.rewrite_primary(Reader(src), out, 1)
    return hdr, sdr


def clean_heic(work: Path) -> Path:
    """The iPhone 13 Pro HDR HEIC of tests/data/photos (12 MP, Apple gain map), cleaned."""
    heic = work / "iphone.heic"
    sanitize(photo("h01_pug_iphone13pro_hdr.heic"), heic, BY_NAME["HEIC"], 1)
    return heic


def run(engine: PillowEngine, path: Path, fmt: str = "JPEG") -> tuple[float, Rendering]:
    with Image.open(path) as img:
        width, height = img.size
    specs = largest_first(delivery_specs(width, height, "jpg"))
    started = time.process_time()  # every thread of this process: libvips' too
    rendering = engine.render_all(path, BY_NAME[fmt], specs, thumbhash=True)
    return time.process_time() - started, rendering


def psnr(full: Image.Image, data: bytes) -> float:
    """PSNR of a JPEG's first picture against ``full`` resized to its size by Lanczos."""
    with Image.open(io.BytesIO(data)) as img:
        got = img.convert("RGB")
    reference = full.resize(got.size, Image.Resampling.LANCZOS)
    stat = ImageStat.Stat(ImageChops.difference(reference, got))
    mse = sum(stat.sum2) / (got.width * got.height * 3)
    return 99.0 if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def check(rendering: Rendering, hdr: bool) -> list[str]:
    problems = []
    for variant in rendering.variants:
        if variant.format != BASE:
            continue
        img = pyvips.Image.new_from_buffer(variant.data, "")
        is_hdr = img.get("vips-loader") == "uhdrload_buffer"
        if is_hdr != hdr:
            problems.append(f"{variant.kind}: Ultra HDR {is_hdr}, expected {hdr}")
        elif hdr and not 1.5 < img.get("gainmap-max-content-boost")[0] <= 2 * MAX_BOOST:
            problems.append(f"{variant.kind}: content boost off")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    cpu = pin_one_core()
    pyvips.concurrency_set(1)  # one core: the figures are CPU time, not wall-clock
    register_plugins()
    say(f"bench.hdr: CPU {cpu}, {args.repeat} runs each, interleaved")
    with tempfile.TemporaryDirectory(prefix="kitteh-bench-hdr-") as tmp:
        hdr_photo, sdr_photo = make_photos(Path(tmp))
        heic = clean_heic(Path(tmp))
        methods: dict[str, tuple[Callable[[], tuple[float, Rendering]], bool]] = {
            "HDR photo (Ultra HDR JPEG variants)": (lambda: run(PillowEngine(), hdr_photo),
                                                    True),
            "same photo, no gain map": (lambda: run(PillowEngine(), sdr_photo), False),
            "same photo, engine before HDR (hdr=False)": (
                lambda: run(PillowEngine(hdr=False), sdr_photo), False),
            "iPhone HDR HEIC (Ultra HDR JPEG variants)": (
                lambda: run(PillowEngine(), heic, "HEIC"), True),
            "same HEIC, SDR variants (hdr=False)": (
                lambda: run(PillowEngine(hdr=False), heic, "HEIC"), False),
        }
        times: dict[str, list[float]] = {name: [] for name in methods}
        problems: list[str] = []
        rng = random.Random(19)
        for _ in range(args.repeat):
            for name in rng.sample(list(methods), len(methods)):
                method, hdr = methods[name]
                seconds, rendering = method()
                times[name].append(seconds)
                problems += [f"{name}: {p}" for p in check(rendering, hdr)]
        hdr_files = {v.kind: v.data for v in run(PillowEngine(), hdr_photo)[1].variants
                     if v.format == BASE}
        sdr_files = {v.kind: v.data for v in run(PillowEngine(), sdr_photo)[1].variants
                     if v.format == BASE}
        with Image.open(sdr_photo) as img:  # full decode, one Lanczos resize: no JPEG loss
            full = img.convert("RGB")
        quality = {kind: (psnr(full, hdr_files[kind]), psnr(full, sdr_files[kind]))
                   for kind in hdr_files}
    medians = {name: median(values) for name, values in times.items()}
    sdr = medians["same photo, no gain map"]
    before = medians["same photo, engine before HDR (hdr=False)"]
    table("All variants of a 12 MP photo (15 files + ThumbHash), CPU seconds, one core",
          ["method", "median s", "min s", "vs JPEG no gain map", "vs JPEG before HDR"],
          [[name, m, min(times[name]), ratio(m, sdr), ratio(m, before)]
           for name, m in medians.items()])
    table("JPEG variants: Ultra HDR (libvips) against the same picture without gain map "
          "(Pillow); PSNR of the base picture against a full-decode Lanczos reference",
          ["size", "HDR bytes", "SDR bytes", "ratio", "HDR PSNR dB", "SDR PSNR dB"],
          [[kind, len(hdr_files[kind]), len(sdr_files[kind]),
            ratio(len(hdr_files[kind]), len(sdr_files[kind])), *quality[kind]]
           for kind in hdr_files])
    hdr_ratio = medians["HDR photo (Ultra HDR JPEG variants)"] / sdr
    heic_ratio = (medians["iPhone HDR HEIC (Ultra HDR JPEG variants)"]
                  / medians["same HEIC, SDR variants (hdr=False)"])
    say(f"HDR / SDR: JPEG {hdr_ratio:.2f}×, HEIC {heic_ratio:.2f}× (target ≤ {TARGET_HDR}×); "
        f"SDR / before: {sdr / before:.2f}×")
    for problem in problems:
        say(f"FAIL {problem}")
    return 1 if problems or max(hdr_ratio, heic_ratio) > TARGET_HDR else 0


if __name__ == "__main__":
    sys.exit(main())
