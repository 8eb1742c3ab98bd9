"""The hostile corpus: files an upload endpoint must refuse cleanly, or accept safely.

Generated at test time, so no binary blobs live in the repository. Each case says what the
client sends (bytes, file name, the part's claimed Content-Type) and what Kitteh must answer.

    python -m tests.hostile.corpus DIR     writes every case to DIR (and prints a table)
"""

from __future__ import annotations

import io
import random
import struct
import sys
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.hostile import heif
from tests.support import photo

ACCEPTED = 201


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    filename: str = "cat.jpg"
    content_type: str = "image/jpeg"
    status: int = 415
    code: str | None = "unsupported_image"  # None: accepted
    stored_filename: str | None = None  # accepted: the name Kitteh keeps
    content_type_served: str | None = None  # accepted: the sniffed type


# --- building blocks --------------------------------------------------------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def zero_png(width: int, height: int) -> bytes:
    """A 1-bit greyscale PNG of zeros, compressed row by row: a 50000×50000 one (2.5 gigapixels,
    312 MB of raw rows) is about 300 KiB, DEFLATE's ~1000:1 ceiling; never held whole."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, packed bits
    rows_per_step = max(1, (1 << 20) // len(row))
    deflate = zlib.compressobj(9)
    parts = []
    for first in range(0, height, rows_per_step):
        parts.append(deflate.compress(row * min(rows_per_step, height - first)))
    parts.append(deflate.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(parts))
            + png_chunk(b"IEND", b""))


def small_image(fmt: str, seed: int, size=(48, 32)) -> bytes:
    """A small picture whose bytes differ by ``seed`` (so uploads never deduplicate)."""
    rng = random.Random(seed)
    img = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    img.putpixel((seed % size[0], 0), (255 - seed % 256, seed % 256, 7))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def gif_frames(count: int, width: int = 1, height: int = 1, frame_size=(1, 1)) -> bytes:
    """``count`` 1×1 frames (each ~19 bytes: graphic control, descriptor, 3 bytes of LZW)."""
    header = (b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\0\0"
              + b"\0\0\0\xff\xff\xff" + b"!\xff\x0bNETSCAPE2.0\x03\x01\0\0\0")
    frame = (b"!\xf9\x04\x00\x01\x00\x00\x00" + b"," + struct.pack("<4H", 0, 0, *frame_size)
             + b"\0" + b"\x02\x02\x44\x01\x00")
    return header + frame * count + b";"


def progressive_jpeg_with_scans(extra_scans: int) -> bytes:
    """A progressive JPEG whose last scan is repeated: a stand-in for a scan bomb (each scan
    makes the decoder walk the whole image again), refused by counting, before decoding."""
    out = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(out, "JPEG", progressive=True)
    data = out.getvalue()
    last_scan = data[data.rindex(b"\xff\xda"):data.rindex(b"\xff\xd9")]
    return data[:data.rindex(b"\xff\xd9")] + last_scan * extra_scans + b"\xff\xd9"


def webp_canvas_bomb() -> bytes:
    """An extended WebP whose header claims a 16383×16383 canvas around a 1×1 image."""
    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "WEBP", lossless=True)
    image_chunk = out.getvalue()[12:]
    side = 16383 - 1
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + side.to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + image_chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


def apng_claiming_frames(count: int, side: int = 8) -> bytes:
    """A two-frame APNG (``side`` pixels square) whose acTL claims ``count`` frames."""
    out = io.BytesIO()
    frames = [Image.new("P", (side, side), i) for i in range(2)]
    frames[0].save(out, "PNG", save_all=True, append_images=frames[1:])
    data = out.getvalue()
    at = data.index(b"acTL") - 4
    actl = png_chunk(b"acTL", struct.pack(">II", count, 0))
    return data[:at] + actl + data[at + len(actl):]


def png_with_chunks_before_pixels(count: int) -> bytes:
    """Empty private chunks before IDAT: Pillow's header parser keeps an object for each."""
    data = small_image("PNG", 8)
    at = data.index(b"IDAT") - 4
    return data[:at] + png_chunk(b"prVt", b"") * count + data[at:]


def jpeg_with_comments(count: int) -> bytes:
    data = small_image("JPEG", 9)
    return data[:2] + b"\xff\xfe\x00\x02" * count + data[2:]


def gif_with_tiny_sub_blocks(count: int) -> bytes:
    """One 1×1 frame whose data is followed by ``count`` 1-byte sub-blocks (legal, pointless:
    encoders write 255-byte ones)."""
    frame = gif_frames(1)
    at = frame.rindex(b"\x44\x01\x00") + 2  # the frame's block terminator
    return frame[:at] + b"\x01\x00" * count + frame[at:]


def webp_with_unknown_chunks(count: int) -> bytes:
    data = small_image("WEBP", 10)
    body = data[12:] + b"ZZZZ\0\0\0\0" * count
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def broken_crc_png() -> bytes:
    data = bytearray(small_image("PNG", 7))
    at = data.index(b"IDAT") - 4
    length = struct.unpack(">I", data[at:at + 4])[0]
    data[at + 8 + length] ^= 0xFF  # first byte of the IDAT chunk's CRC
    return bytes(data)


def tiff_image() -> bytes:
    """A scanner's TIFF: a real image, in a format Kitteh does not accept."""
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 200, 30)).save(out, "TIFF")
    return out.getvalue()


def minimal_pdf() -> bytes:
    return (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R/OpenAction 3 0 R>>endobj\n"
            b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
            b"3 0 obj<</S/JavaScript/JS(app.alert(1))>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("cat.jpg", small_image("JPEG", 3))
        archive.writestr("run.sh", "#!/bin/sh\necho owned\n")
    return out.getvalue()


SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" '
       b'height="64"><script>alert(document.domain)</script><circle r="30" cx="32" cy="32"/>'
       b"</svg>\n")
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>\n"
APPENDED_SCRIPT = b"<script>alert(document.domain)</script>"


# --- the corpus -------------------------------------------------------------------------------


def refused() -> Iterator[Case]:
    """Files that must be refused, with the status and error code of the contract."""
    yield Case("empty", b"", status=400, code="bad_request")
    yield Case("text-as-jpg", b"just some text, not a picture\n" * 20, "notes.jpg")
    yield Case("html-as-jpg", HTML, "page.jpg")
    yield Case("svg-with-script", SVG, "cat.svg", "image/svg+xml")
    yield Case("pdf", minimal_pdf(), "cat.pdf", "application/pdf")
    yield Case("zip", zip_archive(), "cats.zip", "application/zip")
    jpeg = photo("j10_fallenleaf.jpg").read_bytes()
    yield Case("jpeg-truncated-half", jpeg[:len(jpeg) // 2], "leaf.jpg")
    progressive = photo("j07_wine.jpg").read_bytes()
    yield Case("progressive-jpeg-truncated-half", progressive[:len(progressive) // 2], "wine.jpg")
    yield Case("png-broken-crc", broken_crc_png(), "crc.png", "image/png")
    yield Case("png-50000x50000-1bit", zero_png(50_000, 50_000), "bomb.png", "image/png",
               422, "over_limits")
    yield Case("png-6400x6400-just-over-pixels", zero_png(6400, 6400), "wide.png", "image/png",
               422, "over_limits")
    yield Case("png-10001-wide", zero_png(10_001, 1), "strip.png", "image/png",
               422, "over_limits")
    yield Case("gif-5000-frames", gif_frames(5000), "many.gif", "image/gif", 422, "over_limits")
    yield Case("gif-frame-beyond-screen", gif_frames(1, frame_size=(20_000, 20_000)),
               "frame.gif", "image/gif", 422, "over_limits")
    yield Case("apng-claiming-100000-frames", apng_claiming_frames(100_000), "anim.png",
               "image/png", 422, "over_limits")
    yield Case("webp-canvas-16383x16383", webp_canvas_bomb(), "canvas.webp", "image/webp",
               422, "over_limits")
    yield Case("jpeg-300-scans", progressive_jpeg_with_scans(300), "scans.jpg",
               status=422, code="over_limits")
    yield Case("jpeg-5000-comment-segments", jpeg_with_comments(5000), "notes.jpg",
               status=422, code="over_limits")
    yield Case("png-5000-chunks-before-pixels", png_with_chunks_before_pixels(5000), "c.png",
               "image/png", 422, "over_limits")
    yield Case("gif-1100000-tiny-sub-blocks", gif_with_tiny_sub_blocks(1_100_000), "t.gif",
               "image/gif", 422, "over_limits")
    yield Case("webp-120000-unknown-chunks", webp_with_unknown_chunks(120_000), "u.webp",
               "image/webp", 422, "over_limits")
    # Animation bombs: frames and sizes each within their limits, together not.
    yield Case("gif-900-frames-of-6000x6000", gif_frames(900, 6000, 6000), "bomb.gif",
               "image/gif", 422, "over_limits")
    yield Case("apng-600-frames-of-6000x6000", apng_claiming_frames(600, 6000), "bomb.png",
               "image/png", 422, "over_limits")
    # HEIC and AVIF: refused by the box walk, before libheif or libavif see a byte.
    yield Case("heic-ispe-50000x50000", heif.heif(size=(50_000, 50_000)), "IMG_0001.HEIC",
               "image/heic", 422, "over_limits")
    yield Case("avif-ispe-60000x60000", heif.heif(b"avif", size=(60_000, 60_000),
                                                  item_type=b"av01"), "big.avif", "image/avif",
               422, "over_limits")
    yield Case("heic-5000-items", heif.heif(items=5000), "items.heic", "image/heic",
               422, "over_limits")
    yield Case("heic-grid-40x40-tiles", heif.heif(items=5, grid=(40, 40, 512, 512)),
               "grid.heic", "image/heic", 422, "over_limits")
    yield Case("heic-grid-80000x80000", heif.heif(items=5, grid=(2, 2, 80_000, 80_000)),
               "wide.heic", "image/heic", 422, "over_limits")
    yield Case("heic-truncated-meta", heif.truncated(), "cut.heic", "image/heic")
    yield Case("heic-unbounded-box", heif.unbounded_box_inside_meta(), "loop.heic",
               "image/heic")
    yield Case("heic-box-shorter-than-header", heif.box_of_impossible_size(), "loop2.heic",
               "image/heic")
    yield Case("heic-nested-boxes", heif.deep_boxes(), "deep.heic", "image/heic")
    yield Case("heic-without-picture", heif.heif(), "empty.heic", "image/heic")
    yield Case("tiff-scan", tiff_image(), "scan.tiff", "image/tiff")


def accepted() -> Iterator[Case]:
    """Valid images with hostile names, types or trailers: stored, safely."""
    def ok(name, data, filename, stored, content_type="image/png", served="image/png"):
        return Case(name, data, filename, content_type, ACCEPTED, None, stored, served)

    yield ok("name-dot-dot-slash", small_image("PNG", 11), "../../../etc/passwd.png",
             "passwd.png")
    # Sent raw (as old Windows browsers did), backslashes read as quoted-pair escapes in the
    # quoted name: no separator survives either way.
    yield ok("name-backslashes", small_image("PNG", 12), "..\\..\\windows\\win.ini.png",
             "windowswin.ini.png")
    yield ok("name-nul", small_image("PNG", 13), "cat\0.php.png", "cat.php.png")
    yield ok("name-300-chars", small_image("PNG", 14), "a" * 296 + ".png", "a" * 196 + ".png")
    yield ok("name-emoji", small_image("PNG", 15), "😺 kitty 🐈.png", "😺 kitty 🐈.png")
    yield ok("name-right-to-left", small_image("PNG", 16), "cat\u202egnp.exe", "catgnp.exe.png")
    yield ok("name-bidi-marks", small_image("PNG", 17), "\u200fcat\u200e\u2067.png", "cat.png")
    yield ok("name-html", small_image("PNG", 18), "<img src=x onerror=alert(1)>.png",
             "<img src=x onerror=alert(1)>.png")
    yield ok("name-quotes-newlines", small_image("PNG", 19), 'a"b\r\nX-Evil: 1.png',
             'a"bX-Evil: 1.png')
    yield ok("png-claiming-jpeg", small_image("PNG", 20), "photo.jpg", "photo.png",
             content_type="image/jpeg")
    yield ok("png-claiming-exe", small_image("PNG", 21), "setup.exe", "setup.exe.png",
             content_type="application/x-msdownload")
    yield ok("jpeg-claiming-html", small_image("JPEG", 22), "cat.jpeg", "cat.jpeg",
             content_type="text/html", served="image/jpeg")
    yield ok("jpeg-plus-zip", small_image("JPEG", 23) + zip_archive(), "poly.jpg", "poly.jpg",
             content_type="image/jpeg", served="image/jpeg")
    yield ok("jpeg-plus-script", small_image("JPEG", 24) + APPENDED_SCRIPT, "poly2.jpg",
             "poly2.jpg", content_type="image/jpeg", served="image/jpeg")
    yield ok("png-plus-html", small_image("PNG", 25) + HTML, "poly.png", "poly.png")
    yield ok("gif-plus-script", small_image("GIF", 26) + APPENDED_SCRIPT, "poly.gif",
             "poly.gif", content_type="image/gif", served="image/gif")
    yield ok("webp-plus-zip", small_image("WEBP", 27) + zip_archive(), "poly.webp", "poly.webp",
             content_type="image/webp", served="image/webp")


def all_cases() -> list[Case]:
    from tests.hostile.video import video_cases  # it builds on this module's Case

    return [*refused(), *accepted(), *video_cases()]


def write(directory: Path) -> list[tuple[Case, Path]]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for index, case in enumerate(all_cases()):
        path = directory / f"{index:02d}-{case.name}"
        path.write_bytes(case.data)
        written.append((case, path))
    return written


if __name__ == "__main__":
    for case, path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")):
        print(f"{case.status}  {case.code or 'accepted':18} {len(case.data):>9,}  {path}")
