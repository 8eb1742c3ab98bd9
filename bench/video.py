"""Video benchmark: PyAV (what Kitteh runs) against Debian's ``ffmpeg`` command line, and an
animation's MP4 against its animated WebP.

1. CPU seconds per second of 1080p30 input for each rendition, made by
   ``shared.video.transcode`` in a child process (as the resize service runs it, interpreter
   start included) and by ``ffmpeg`` with the same settings (scale to 1280×720, 30 fps,
   yuv420p, the same encoder options and thread count), in the same run. Target: PyAV ≤ 1.2×.
2. Bytes of the MP4 of each test animation against the animated WebP the resize engine makes
   of it at the same size, with the mean luma SSIM of each against the animation's frames.
   Target: MP4 ≤ 0.3× the WebP over the animations, at an SSIM no worse than 0.01 below it.

    python -m bench.video [--seconds 8] [--repeat 2]
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageDraw

from bench.common import PHOTOS, ratio, require, say, table
from bench.delivery import ssim

RENDITION_SETTINGS = {
    # name: ffmpeg video options, audio options, muxer options: RENDITIONS' settings
    "mp4": (["-c:v", "libx264", "-crf", "23", "-preset", "veryfast", "-profile:v", "high"],
            ["-c:a", "aac", "-b:a", "128000"], ["-movflags", "+faststart", "-f", "mp4"]),
    "av1": (["-c:v", "libsvtav1", "-crf", "35", "-preset", "10"],
            ["-c:a", "libopus", "-b:a", "96000"], ["-f", "webm"]),
}


def make_input(ffmpeg: Path, target: Path, seconds: int) -> None:
    """1080p30 with motion and a tone: ffmpeg's testsrc2, nearly lossless H.264 + AAC."""
    subprocess.run([str(ffmpeg), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", str(seconds), "-c:v", "libx264", "-crf", "16", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(target)], check=True)


def child_cpu(command: list[str]) -> float:
    """CPU seconds (user + system) of a child process and its threads."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def transcode_table(ffmpeg: Path, work: Path, seconds: int, repeat: int) -> list[float]:
    source = work / "in1080p30.mp4"
    make_input(ffmpeg, source, seconds)
    rows, ratios = [], []
    for name, (video, audio, muxer) in RENDITION_SETTINGS.items():
        ours, theirs = work / f"pyav.{name}", work / f"ffmpeg.{name}"
        pyav = [sys.executable, "-c",
                "import sys; from pathlib import Path; from shared.video.transcode import "
                "RENDITIONS, transcode_video; transcode_video(Path(sys.argv[1]), "
                "Path(sys.argv[2]), RENDITIONS[sys.argv[3]])", str(source), str(ours), name]
        cli = [str(ffmpeg), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
               "-map", "0:v:0", "-map", "0:a:0?", "-map_metadata", "-1",
               "-vf", "scale=1280:720,fps=30,format=yuv420p", *video, "-threads", "2",
               *audio, "-ar", "48000", "-ac", "2", *muxer, str(theirs)]
        a = min(child_cpu(pyav) for _ in range(repeat))
        b = min(child_cpu(cli) for _ in range(repeat))
        ratios.append(a / b)
        rows.append([name, a / seconds, b / seconds, ratio(a, b),
                     ours.stat().st_size / 1024, theirs.stat().st_size / 1024])
    table(f"CPU s per s of 1080p30 input ({seconds} s clip, best of {repeat})",
          ["rendition", "PyAV", "ffmpeg CLI", "PyAV/ffmpeg", "PyAV KiB", "ffmpeg KiB"], rows)
    return ratios


def animations() -> Iterator[tuple[str, list[Image.Image], list[int]]]:
    """Test animations made here (GIF palettes, as a GIF would have them): a photo panned,
    shapes moving on a flat background, a screenshot scrolling."""
    photo = Image.open(PHOTOS / "j04_dragonfly.jpg").convert("RGB")
    pan = [photo.crop((x, 40, x + 480, 310)) for x in range(0, 400, 10)]
    shapes = []
    for i in range(60):
        frame = Image.new("RGB", (400, 300), (250, 240, 220))
        draw = ImageDraw.Draw(frame)
        draw.ellipse((i * 5, 100, i * 5 + 60, 160), fill=(200, 40, 40))
        draw.rectangle((300 - i * 4, 30, 340 - i * 4, 70), fill=(30, 90, 200))
        draw.text((20, 250), f"frame {i}", fill=(0, 0, 0))
        shapes.append(frame)
    screen = Image.open(PHOTOS / "p04_screenshot.png").convert("RGB")
    height = min(400, screen.height - 60)
    scroll = [screen.crop((0, y, min(600, screen.width), y + height)) for y in range(0, 60, 2)]
    for name, frames, ms in (("photo pan", pan, 80), ("shapes", shapes, 40),
                             ("screen scroll", scroll, 60)):
        yield name, [_as_gif_frame(f) for f in frames], [ms] * len(frames)


def _as_gif_frame(frame: Image.Image) -> Image.Image:
    """What a GIF holds: 256 colours, dithered."""
    return frame.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).convert("RGB")


def animation_table(work: Path) -> list[float]:
    from services.resize.animation import render_animation
    from shared.encoding import WEBP_BASE
    from shared.variants import VariantSpec
    from shared.video.catalog import output_size
    from shared.video.transcode import transcode_animation

    rows, ratios = [], []
    for name, frames, durations in animations():
        gif = io.BytesIO()
        frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)
        size = output_size(*frames[0].size)
        target = work / "animation.mp4"
        made = transcode_animation(zip((f.resize(size) for f in frames), durations,
                                       strict=True), size, target)
        gif.seek(0)
        with Image.open(gif) as img:
            webp = render_animation(img, [VariantSpec("large", *size)],
                                    lambda f, s: f.resize((s.width, s.height)),
                                    WEBP_BASE.options["quality"])["large"]
        reference = [f.resize(size) for f in frames]
        mp4_ssim = _mean_ssim(reference, _mp4_frames(target))
        webp_ssim = _mean_ssim(reference, _webp_frames(webp))
        ratios.append(made.bytes / len(webp))
        rows.append([name, len(frames), f"{size[0]}×{size[1]}", len(gif.getvalue()) / 1024,
                     len(webp) / 1024, made.bytes / 1024, ratio(made.bytes, len(webp)),
                     webp_ssim, mp4_ssim])
    table("An animation as MP4 and as animated WebP (same size)",
          ["animation", "frames", "size", "GIF KiB", "WebP KiB", "MP4 KiB", "MP4/WebP",
           "WebP SSIM", "MP4 SSIM"], rows)
    return ratios


def _mp4_frames(path: Path) -> list[Image.Image]:
    import av

    with av.open(str(path)) as container:
        return [f.to_image() for f in container.decode(video=0)]


def _webp_frames(data: bytes) -> list[Image.Image]:
    with Image.open(io.BytesIO(data)) as img:
        frames = []
        for index in range(img.n_frames):
            img.seek(index)
            frames.append(img.convert("RGB"))
        return frames


def _mean_ssim(reference: list[Image.Image], decoded: list[Image.Image]) -> float:
    pairs = list(zip(reference, decoded, strict=False))[::5]  # every fifth frame: enough
    values = []
    for ref, got in pairs:
        out = io.BytesIO()
        got.save(out, "PNG")
        values.append(ssim(ref, out.getvalue()))
    return sum(values) / len(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    ffmpeg = require("ffmpeg")["ffmpeg"]
    with tempfile.TemporaryDirectory(prefix="kitteh-bench-video-") as tmp:
        cpu = transcode_table(ffmpeg, Path(tmp), args.seconds, args.repeat)
        sizes = animation_table(Path(tmp))
    say(f"web MP4 CPU ratio {cpu[0]:.2f}× (target ≤ 1.2×); animation MP4/WebP "
        f"{sum(sizes) / len(sizes):.2f}× on average, at most {max(sizes):.2f}× (target ≤ 0.3×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
