"""Resize benchmark: Kitteh's engine against ImageMagick and plain Pillow, on one pinned core.

    python -m bench.resize [DIR ...] [--repeat N] [--draft-factors 1,2]

Photos come from tests/data/photos (or $KITTEH_PHOTOS) plus any directory given. For each
image every method makes the three variants (600, 300 and 90 wide, JPEG q85 for JPEG input)
from the file on disk; the methods run interleaved, in a shuffled order, ``--repeat`` times,
and each image's median time counts. Methods:

- ImageMagick as the original app: ``/usr/bin/convert`` once per size, full decode each time;
- ImageMagick one chain: one ``convert`` with shrink-on-load (``-define jpeg:size``) and a
  600 → 300 → 90 chain (what ImageMagick can do at best from the command line);
- naive Pillow: full decode, a Lanczos resize from the full image for each size;
- bare Pillow cascade: ``Image.draft`` to just cover 600 px, then 600 → 300 → 90 (Lanczos),
  default encoder settings, no orientation, no colour profile (the floor for Pillow);
- Kitteh engine: ``services.resize.engine.PillowEngine().render``, exactly what the resize
  service runs.

Every output is checked: the right pixel size, and its PSNR against a reference made by a
full decode and one Lanczos resize per size (no JPEG loss) within 1 dB of the naive
baseline's. A wrong size or a degraded output makes the exit status 1.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageOps, ImageStat

from bench.common import (
    median,
    photos,
    pin_one_core,
    ratio,
    require,
    say,
    table,
)
from bench.delivery import delivery_tables
from services.resize.engine import PillowEngine
from shared.formats import FORMATS, Format, register_plugins, variant_format
from shared.imaging import ORIENTATION_TAG, SWAPS_AXES
from shared.variants import VariantSpec, variant_specs

QUALITY = 85
MAX_PSNR_LOSS = 1.0  # dB below the naive baseline, for every image and size
# Above this the difference is invisible; it also makes lossless outputs (PNG), whose naive
# PSNR is infinite, comparable.
PSNR_CAP = 40.0
# The slow methods get fewer runs: their noise matters little next to a 3× or 10× ratio, and
# the benchmark stays within a couple of minutes.
SLOW_RUNS = {"ImageMagick, original app": 3, "naive Pillow": 5}


@dataclass(frozen=True)
class Photo:
    path: Path
    fmt: Format
    width: int  # as displayed (EXIF orientation applied)
    height: int
    specs: list[VariantSpec]
    frames: int = 1

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    @property
    def out_ext(self) -> str:
        """What Kitteh writes its variants as (animated WebP for an animated GIF)."""
        return variant_format(self.fmt, self.frames > 1).extension

    @property
    def magick_input(self) -> list[str]:
        """An animation's frames are composed first (-coalesce), as Pillow hands them over."""
        return [str(self.path), "-coalesce"] if self.frames > 1 else [str(self.path)]


Outputs = dict[str, bytes]  # variant kind -> encoded file
Method = Callable[[Photo, Path], Outputs]


def load_photo(path: Path) -> Photo | None:
    try:
        with Image.open(path) as img:
            fmt = next((f for f in FORMATS if img.format in f.pillow_names), None)
            orientation = img.getexif().get(ORIENTATION_TAG, 1) if img.format != "HEIF" else 1
            width, height = img.size
            frames = getattr(img, "n_frames", 1)
    except OSError:
        return None
    if fmt is None:
        return None
    if orientation in SWAPS_AXES:
        width, height = height, width
    return Photo(path, fmt, width, height, variant_specs(width, height), frames)


# -- the methods ---------------------------------------------------------------------------

def imagemagick_original(convert: Path) -> Method:
    """One ``convert`` per size, as the Phoenix app's Mogrify calls did: each decodes the
    whole original."""
    def run(photo: Photo, work: Path) -> Outputs:
        ext = photo.out_ext
        for spec in photo.specs:
            subprocess.run([str(convert), *photo.magick_input, "-auto-orient",
                            "-resize", f"{spec.width}x{spec.height}!",
                            "-quality", str(QUALITY), str(work / f"{spec.kind}.{ext}")],
                           check=True, env=MAGICK_ENV, stderr=subprocess.DEVNULL)
        return {s.kind: (work / f"{s.kind}.{ext}").read_bytes() for s in photo.specs}
    return run


def imagemagick_chain(convert: Path) -> Method:
    """ImageMagick at its best from the command line: shrink-on-load, one decode, a chain."""
    def run(photo: Photo, work: Path) -> Outputs:
        ext = photo.out_ext
        first = photo.specs[0]
        hint = ["-define", f"jpeg:size={first.width}x{first.height}"] \
            if photo.fmt.pillow_name == "JPEG" else []
        steps: list[str] = []
        for i, spec in enumerate(photo.specs):
            steps += ["-resize", f"{spec.width}x{spec.height}!"]
            target = str(work / f"{spec.kind}.{ext}")
            steps += ["-write", target] if i < len(photo.specs) - 1 else [target]
        subprocess.run([str(convert), *hint, *photo.magick_input, "-auto-orient",
                        "-quality", str(QUALITY), *steps], check=True, env=MAGICK_ENV,
                       stderr=subprocess.DEVNULL)
        return {s.kind: (work / f"{s.kind}.{ext}").read_bytes() for s in photo.specs}
    return run


def naive_pillow(photo: Photo, _work: Path) -> Outputs:
    """Full decode, then a Lanczos resize of the full image for every size."""
    with Image.open(photo.path) as img:
        full = ImageOps.exif_transpose(img)
        if photo.fmt.variant_pillow_name == "JPEG":
            full = full.convert("RGB")
        return {s.kind: _save(full.resize((s.width, s.height), Image.Resampling.LANCZOS),
                              photo.fmt) for s in photo.specs}


def bare_cascade(photo: Photo, _work: Path) -> Outputs:
    """Shrink-on-load just to the largest variant, then each size from the one before."""
    with Image.open(photo.path) as img:
        first = photo.specs[0]
        img.draft("RGB", (first.width, first.height))
        current = img.convert("RGB") if photo.fmt.variant_pillow_name == "JPEG" else img.copy()
    out = {}
    for spec in photo.specs:
        current = current.resize((spec.width, spec.height), Image.Resampling.LANCZOS)
        out[spec.kind] = _save(current, photo.fmt)
    return out


def engine_method(engine: PillowEngine) -> Method:
    def run(photo: Photo, _work: Path) -> Outputs:
        return {v.kind: v.data for v in engine.render(photo.path, photo.fmt, photo.specs)}
    return run


def _save(img: Image.Image, fmt: Format) -> bytes:
    out = io.BytesIO()
    name = fmt.variant_pillow_name
    img.save(out, name, **({"quality": QUALITY} if name in ("JPEG", "WEBP") else {}))
    return out.getvalue()


# ImageMagick would start OpenMP threads; on one pinned core they only get in each other's way.
MAGICK_ENV = {**os.environ, "MAGICK_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "1"}


# -- checking outputs ----------------------------------------------------------------------

def references(photo: Photo) -> dict[str, Image.Image]:
    """Full decode, one Lanczos resize per size, never encoded: what "not degraded" means."""
    with Image.open(photo.path) as img:
        full = ImageOps.exif_transpose(img).convert("RGBA" if _has_alpha(img) else "RGB")
    return {s.kind: full.resize((s.width, s.height), Image.Resampling.LANCZOS)
            for s in photo.specs}


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


def _visible(img: Image.Image) -> Image.Image:
    """What a viewer sees: transparent images over a grey page (the colour under a fully
    transparent pixel is invisible and must not count)."""
    if img.mode != "RGBA":
        return img.convert("RGB")
    page = Image.new("RGBA", img.size, (128, 128, 128, 255))
    return Image.alpha_composite(page, img).convert("RGB")


def psnr(reference: Image.Image, data: bytes) -> float:
    with Image.open(io.BytesIO(data)) as img:
        got = _visible(img.convert(reference.mode))
    diff = ImageChops.difference(_visible(reference), got)
    stat = ImageStat.Stat(diff)
    mse = sum(stat.sum2) / (reference.width * reference.height * len(stat.sum2))
    return PSNR_CAP if mse == 0 else min(PSNR_CAP, 10 * math.log10(255 ** 2 / mse))


def sizes_ok(photo: Photo, outputs: Outputs) -> bool:
    for spec in photo.specs:
        with Image.open(io.BytesIO(outputs[spec.kind])) as img:
            if img.size != (spec.width, spec.height):
                say(f"{photo.path.name} {spec.kind}: {img.size}, expected "
                    f"{spec.width}x{spec.height}")
                return False
    return True


# -- the run -----------------------------------------------------------------------------

Times = dict[str, dict[Path, list[float]]]  # method -> photo -> seconds, one per round


def measure(group: list[Photo], methods: dict[str, Method], runs: dict[str, int],
            work: Path, pair: tuple[str, str] | None) -> tuple[Times, Times,
                                                               dict[str, dict[Path, Outputs]]]:
    """CPU seconds (this process and its children: ImageMagick) and wall seconds, per method,
    image and round, and each method's outputs. The two methods of ``pair`` always run one
    right after the other."""
    cpu: dict[str, dict[Path, list[float]]] = {m: {p.path: [] for p in group} for m in methods}
    wall: dict[str, dict[Path, list[float]]] = {m: {p.path: [] for p in group} for m in methods}
    outputs: dict[str, dict[Path, Outputs]] = {m: {} for m in methods}
    for photo in group:  # warm-up (page cache, imports), and the outputs that are checked
        for name, method in methods.items():
            outputs[name][photo.path] = method(photo, work)
    shuffled = list(group)
    for round_ in range(max(runs.values())):
        random.shuffle(shuffled)
        # One photo at a time, its methods back to back in a random order: a burst of load
        # from elsewhere on the machine hits the methods being compared alike.
        order = [(p, m) for p in shuffled for m in _order(list(methods), pair)
                 if round_ < runs[m]]
        for photo, name in order:
            cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
            methods[name](photo, work)
            wall[name][photo.path].append(time.perf_counter() - wall_before)
            cpu[name][photo.path].append(_cpu_seconds() - cpu_before)

    return cpu, wall, outputs


def _order(names: list[str], pair: tuple[str, str] | None) -> list[str]:
    """A random order, with the pair (in a random order too) next to each other."""
    if pair is None:
        return random.sample(names, len(names))
    others = random.sample([n for n in names if n not in pair], len(names) - 2)
    at = random.randint(0, len(others))
    return others[:at] + random.sample(list(pair), 2) + others[at:]


def paired_ratio(times: Times, name: str, baseline: str) -> float:
    """Median over the rounds of (the method's time for all the images in that round) over
    (the baseline's in the same round): steadier than a ratio of medians when the load on
    the machine drifts, since in each round the two ran side by side."""
    rounds = min(len(runs) for per in (times[name], times[baseline]) for runs in per.values())
    return median([sum(times[name][p][r] for p in times[name])
                   / sum(times[baseline][p][r] for p in times[baseline])
                   for r in range(rounds)])


def medians(times: Times) -> dict[str, dict[Path, float]]:
    return {m: {p: median(ts) for p, ts in per.items()} for m, per in times.items()}


def _cpu_seconds() -> float:
    """CPU time is what a pinned single-core job costs; unlike wall time it does not count
    the moments another process on the same core ran instead (the machine is shared)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def report(title: str, group: list[Photo], methods: dict[str, Method], repeat: int,
           work: Path, baseline: str, floor: str | None,
           checked: str) -> tuple[bool, dict[str, float], float]:
    """Time and check every method on ``group``; print the speed and quality tables. Only
    ``checked`` (the engine) decides the exit status; the others' results are information."""
    runs = {m: min(repeat, SLOW_RUNS.get(m, repeat)) for m in methods}
    say(f"{title}: {len(group)} images × {len(methods)} methods, runs: {runs}")
    cpu_runs, wall_runs, outputs = measure(group, methods, runs, work,
                                           (checked, floor) if floor else None)
    cpu, wall = medians(cpu_runs), medians(wall_runs)
    refs = {p.path: references(p) for p in group}
    kinds = [s.kind for s in group[0].specs]
    scores: dict[str, dict[tuple[Path, str], float]] = {}
    right_size: dict[str, bool] = {}
    for name in methods:
        right_size[name] = all(sizes_ok(p, outputs[name][p.path]) for p in group)
        scores[name] = {} if not right_size[name] else {
            (p.path, s.kind): psnr(refs[p.path][s.kind], outputs[name][p.path][s.kind])
            for p in group for s in p.specs}

    megapixels = sum(p.megapixels for p in group)
    totals = {m: sum(cpu[m].values()) for m in methods}
    speed_rows = []
    for name in methods:
        total = totals[name]
        out_bytes = sum(len(b) for o in outputs[name].values() for b in o.values())
        speed_rows.append([
            name, total / len(group), sum(wall[name].values()) / len(group),
            len(group) / total, megapixels / total,
            ratio(totals[baseline], total),
            f"{paired_ratio(cpu_runs, name, floor):.2f}×" if floor else "-",
            out_bytes / 1024 / len(group),
        ])
    table(f"{title}: speed ({len(group)} images, {megapixels:.1f} MP; one pinned core; "
          f"median of {repeat} runs per image, fewer for the slow ones)",
          ["method", "CPU s/image", "wall s/image", "images/s", "input MP/s",
           "speed-up vs IM original", f"time vs {'bare cascade' if floor else '-'}",
           "KiB out/image"], speed_rows)

    ok = True
    quality_rows = []
    naive = scores["naive Pillow"]
    for name in methods:
        got = scores[name]
        if not got:
            quality_rows.append([name, *("-" for _ in kinds), "-", "WRONG SIZE"])
            ok = ok and name != checked
            continue
        worst = min(got[key] - naive[key] for key in got)
        degraded = worst < -MAX_PSNR_LOSS
        ok = ok and not (degraded and name == checked)
        means = [sum(v for (_, k), v in got.items() if k == kind) / len(group) for kind in kinds]
        quality_rows.append([name, *(f"{m:.2f}" for m in means), f"{worst:+.2f}",
                             "DEGRADED" if degraded else "ok"])
    table(f"{title}: quality (PSNR in dB against a full decode + Lanczos, capped at "
          f"{PSNR_CAP:.0f}; mean over images; worst single image and size against naive)",
          ["method", *kinds, "worst Δ vs naive", "check"], quality_rows)
    return ok, totals, paired_ratio(cpu_runs, checked, floor) if floor else float("nan")


def encoder_table(group: list[Photo], repeat: int) -> None:
    """What progressive and optimized Huffman tables cost and save on variant-sized images."""
    images: list[tuple[bool, Image.Image]] = []  # (is the largest variant, pixels)
    for photo in group:
        with Image.open(photo.path) as img:
            img.draft("RGB", (photo.specs[0].width, photo.specs[0].height))
            current = img.convert("RGB")
        for index, spec in enumerate(photo.specs):
            current = current.resize((spec.width, spec.height), Image.Resampling.LANCZOS)
            images.append((index == 0, current))
    optimize, progressive = {"optimize": True}, {"progressive": True, "optimize": True}
    settings: dict[str, Callable[[bool], dict]] = {
        "baseline Huffman tables": lambda _largest: {},
        "optimize (the engine)": lambda _largest: optimize,
        "progressive": lambda _largest: progressive,
        "progressive for the largest only": lambda largest: progressive if largest else optimize,
        "4:4:4 chroma, optimize": lambda _largest: {**optimize, "subsampling": 0},
    }
    rows = []
    base_ms = base_bytes = 0.0
    for name, options in settings.items():
        spent, size = [], 0
        for _ in range(max(repeat, 9)):
            started = time.process_time()
            size = 0
            for largest, img in images:
                out = io.BytesIO()
                img.save(out, "JPEG", quality=QUALITY, **options(largest))
                size += out.tell()
            spent.append(time.process_time() - started)
        ms = median(spent) * 1000 / len(group)
        if not base_ms:
            base_ms, base_bytes = ms, size
        rows.append([name, ms, ratio(ms, base_ms), size / 1024 / len(group),
                     f"{(size / base_bytes - 1) * 100:+.1f}%"])
    table(f"JPEG encoder settings for the three variants (q{QUALITY}, per image, CPU time)",
          ["settings", "CPU ms/image", "time vs baseline", "KiB/image", "size vs baseline"],
          rows)


def new_formats(jpegs: list[Photo], methods: dict[str, Method], repeat: int, work: Path,
                engine: str) -> bool:
    """HEIC (Debian's heif-enc), AVIF (Pillow) and a 24-frame GIF made from the JPEG photos,
    against ImageMagick in the same run (it reads HEIC and AVIF through libheif). The GIF's
    outputs are animated WebP for both; its PSNR compares first frames, lossy WebP against a
    lossless PNG, so its quality table is information and not a check."""
    heif_enc = require("heif-enc")["heif-enc"]
    made = work / "new-formats"
    made.mkdir()
    for photo in jpegs[:2]:
        with Image.open(photo.path) as img:
            upright = ImageOps.exif_transpose(img).convert("RGB")
        heic = made / f"{photo.path.stem}.heic"
        subprocess.run([str(heif_enc), "-q", "50", str(photo.path), "-o", str(heic)],
                       check=True, capture_output=True)
        upright.save(made / f"{photo.path.stem}.avif", quality=60, speed=8)
    with Image.open(jpegs[0].path) as img:
        still = ImageOps.exif_transpose(img).convert("RGB").resize((480, 270))
    frames = [still.rotate(i * 15) for i in range(24)]
    frames[0].save(made / "cat.gif", save_all=True, append_images=frames[1:], duration=60,
                   loop=0)
    found = [p for p in map(load_photo, sorted(made.iterdir())) if p is not None]
    chosen = {k: v for k, v in methods.items() if k != "bare Pillow cascade"}
    ok = True
    for title, group in (("HEIC", [p for p in found if p.fmt.name == "HEIC"]),
                         ("AVIF", [p for p in found if p.fmt.name == "AVIF"]),
                         ("animated GIF (24 frames, 480×270)",
                          [p for p in found if p.fmt.name == "GIF"])):
        good, _, _ = report(title, group, chosen, repeat, work, "ImageMagick, original app",
                            None, engine)
        ok = ok and (good or title.startswith("animated"))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", help="more directories of photos")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs per image (9)")
    parser.add_argument("--draft-factors", default="",
                        help="also time the engine with these draft factors, e.g. 1,2")
    args = parser.parse_args(argv)

    convert = require("convert")["convert"]
    cpu = pin_one_core()
    Image.MAX_IMAGE_PIXELS = None  # our own photos; the service keeps its limit
    register_plugins()
    found = [p for p in map(load_photo, photos(args.dirs)) if p is not None]
    jpegs = [p for p in found if p.fmt.pillow_name == "JPEG"]
    others = [p for p in found if p.fmt.pillow_name != "JPEG"]
    say(f"pinned to CPU {cpu}; {len(jpegs)} JPEG and {len(others)} other images")
    if not jpegs:
        raise SystemExit("bench: no JPEG photos found")

    engine = "Kitteh engine"
    methods: dict[str, Method] = {
        "ImageMagick, original app": imagemagick_original(convert),
        "ImageMagick, one chain": imagemagick_chain(convert),
        "naive Pillow": naive_pillow,
        "bare Pillow cascade": bare_cascade,
        engine: engine_method(PillowEngine()),
    }
    for factor in filter(None, args.draft_factors.split(",")):
        methods[f"engine, draft ×{factor}"] = engine_method(PillowEngine(
            draft_factor=float(factor)))

    ok = True
    with tempfile.TemporaryDirectory(prefix="kitteh-bench-resize-") as tmp:
        work = Path(tmp)
        good, totals, overhead = report("JPEG", jpegs, methods, args.repeat, work,
                              "ImageMagick, original app", "bare Pillow cascade", engine)
        ok = ok and good
        if others:
            other_methods = {k: v for k, v in methods.items() if k != "bare Pillow cascade"}
            good, _, _ = report("PNG, GIF, WebP", others, other_methods, args.repeat, work,
                             "ImageMagick, original app", None, engine)
            ok = ok and good
        encoder_table(jpegs, args.repeat)
        ok = new_formats(jpegs, methods, args.repeat, work, engine) and ok
        # Every (size, format) of an upload against these three variants; bytes at equal SSIM.
        delivery_tables(jpegs, max(1, args.repeat // 3))

    speedup = totals["ImageMagick, original app"] / totals[engine]
    overhead -= 1
    print(f"\ntarget: JPEG variants >= 10x faster than ImageMagick as the original app: "
          f"{speedup:.1f}x ({'holds' if speedup >= 10 else 'MISSES'})")
    print(f"target: within 10% of the bare Pillow cascade: {overhead * 100:+.1f}% "
          f"({'holds' if overhead <= 0.10 else 'MISSES'})")
    print(f"outputs: {'all the right size and not degraded' if ok else 'FAILED (see above)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
