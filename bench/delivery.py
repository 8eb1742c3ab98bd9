"""What the delivery variants cost and save: CPU per upload of every (size, format), as a ratio
to the three JPEG variants of before, and the bytes of each output format at equal SSIM.

    python -m bench.delivery [DIR ...] [--repeat N]

(also run as part of ``python -m bench.resize``). On one pinned core, for each JPEG photo:

- CPU: the resize engine's renders as the service does them: the three eager sizes before
  the upload answers (with the ThumbHash), then the display widths and AVIF/WebP of every size
  in the background; each against the three base variants alone (what an upload cost before).
- Bytes at equal SSIM: each size encoded as JPEG (the base format), WebP and AVIF with
  shared/encoding.py's settings; SSIM (Wang et al. 2004, 11×11 Gaussian window, σ 1.5, on
  luma) against the same size resized without loss. The target: AVIF and WebP within 0.01
  SSIM of the JPEG at every width, and smaller.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

from PIL import Image

from bench.common import median, photos, pin_one_core, ratio, say, table
from services.resize.engine import PillowEngine
from shared.encoding import AVIF, JPEG, WEBP, encode
from shared.formats import BY_PILLOW_NAME
from shared.variants import EAGER_KINDS, delivery_specs, variant_specs

MAX_SSIM_GAP = 0.01


def ssim(reference: Image.Image, data: bytes) -> float:
    """Mean SSIM of the luma of ``data`` (an encoded image) against ``reference``."""
    import numpy as np  # the benchmark's own dependency (the test extra), not the services'

    def luma(img: Image.Image) -> np.ndarray:
        return np.asarray(img.convert("L"), dtype=np.float64)

    with Image.open(io.BytesIO(data)) as decoded:
        x, y = luma(reference), luma(decoded)
    radius, sigma = 5, 1.5
    kernel = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma ** 2))
    kernel /= kernel.sum()

    def blur(a: np.ndarray) -> np.ndarray:  # separable Gaussian, "valid" region only
        a = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="valid"), 1, a)
        return np.apply_along_axis(lambda c: np.convolve(c, kernel, mode="valid"), 0, a)

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cov = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    index = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())


def cpu_table(jpegs: list[Path], repeat: int) -> None:
    engine = PillowEngine()
    fmt = BY_PILLOW_NAME["JPEG"]
    rows: dict[str, list[float]] = {"three JPEG variants (before)": [],
                                    "eager: three JPEG + ThumbHash (upload waits)": [],
                                    "background: wide, huge, AVIF and WebP of all": [],
                                    "every size and format (eager + background)": []}
    for path in jpegs:
        with Image.open(path) as img:
            width, height = img.size
        before = variant_specs(width, height)
        everything = delivery_specs(width, height, "jpg")
        background = [s for s in everything
                      if not (s.kind in EAGER_KINDS and s.format == "base")]

        def cpu(fn) -> float:
            spent = []
            for _ in range(repeat):
                started = time.process_time()
                fn()
                spent.append(time.process_time() - started)
            return median(spent)

        old = cpu(lambda: engine.render_all(path, fmt, before))  # noqa: B023
        eager = cpu(lambda: engine.render_all(path, fmt, before, thumbhash=True))  # noqa: B023
        late = cpu(lambda: engine.render_all(path, fmt, background))  # noqa: B023
        for name, value in zip(rows, (old, eager, late, eager + late), strict=True):
            rows[name].append(value)
    base = sum(rows["three JPEG variants (before)"])
    table(f"CPU per upload, all sizes and formats ({len(jpegs)} JPEG photos, one core, "
          "median of runs)",
          ["render", "CPU ms/upload", "vs three JPEG variants"],
          [[name, sum(v) * 1000 / len(jpegs), ratio(sum(v), base)] for name, v in rows.items()])


def bytes_table(jpegs: list[Path]) -> bool:
    """Bytes per format and size, with the SSIM gap to the JPEG; False if a target misses."""
    totals: dict[tuple[str, str], list[float]] = {}  # (kind, format) -> [bytes, ssim, n]
    kinds: list[str] = []
    for path in jpegs:
        with Image.open(path) as img:
            width, height = img.size
        # Every format encodes the very same pixels: the size resized from the original.
        for spec in variant_specs(width, height, ("tiny", "monstrous", "wide", "huge")):
            with Image.open(path) as img:
                img.draft("RGB", (spec.width, spec.height))
                reference = img.convert("RGB").resize((spec.width, spec.height),
                                                      Image.Resampling.LANCZOS)
            if spec.kind not in kinds:
                kinds.append(spec.kind)
            for output in (JPEG, WEBP, AVIF):
                data = encode(reference, output)
                entry = totals.setdefault((spec.kind, output.name), [0.0, 0.0, 0.0])
                entry[0] += len(data)
                entry[1] += ssim(reference, data)
                entry[2] += 1
    ok = True
    rows = []
    for kind in kinds:
        jpeg_bytes, jpeg_ssim, n = totals[(kind, "jpeg")]
        for output in (JPEG, WEBP, AVIF):
            size, quality, count = totals[(kind, output.name)]
            gap = quality / count - jpeg_ssim / n
            ok = ok and (output is JPEG or (gap >= -MAX_SSIM_GAP and size < jpeg_bytes))
            settings = ", ".join(f"{k} {v}" for k, v in output.options.items())
            rows.append([kind, f"{output.name} ({settings})", size / count / 1024,
                         f"{(size / jpeg_bytes - 1) * 100:+.0f}%", quality / count,
                         f"{gap:+.4f}"])
    kinds.sort(key=lambda k: ("tiny", "monstrous", "wide", "huge").index(k))
    table(f"Bytes per format at equal SSIM ({len(jpegs)} JPEG photos, mean per image)",
          ["size", "format (settings)", "KiB", "vs JPEG", "SSIM", "SSIM vs JPEG"], rows)
    print(f"target: AVIF and WebP within {MAX_SSIM_GAP} SSIM of the JPEG and smaller at every "
          f"width: {'holds' if ok else 'MISSES'}")
    return ok


def delivery_tables(jpegs: list[Path], repeat: int) -> bool:
    cpu_table(jpegs, repeat)
    return bytes_table(jpegs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="more directories of photos")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per image (3)")
    args = parser.parse_args(argv)
    cpu = pin_one_core()
    jpegs = [p for p in photos(args.dirs) if p.suffix.lower() in (".jpg", ".jpeg")]
    say(f"pinned to CPU {cpu}; {len(jpegs)} JPEG photos")
    delivery_tables(jpegs, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
