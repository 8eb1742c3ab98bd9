"""What Kitteh serves carries no metadata: no GPS, camera, author, XMP, IPTC or comments; only
the EXIF orientation, as the one tag, where the upload had one. Pixels are never re-encoded.

The rewrite itself (``shared.sanitize``) is tested file by file here; the end-to-end tests
upload through the gateway and look at what the gateway serves: original, download and every
variant (each size, in the base format, AVIF and WebP).
"""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
import zlib
from pathlib import Path

import aiohttp
import pytest
from PIL import Image, PngImagePlugin

from shared.formats import BY_PILLOW_NAME
from shared.sanitize import check_structure, orientation_exif, sanitize
from tests.hostile.structure import (
    gif_blocks,
    jpeg_scan_data,
    jpeg_segments,
    png_chunks,
    webp_chunks,
)
from tests.support import file_form, photo

# Strings planted in the metadata of the test files: none may be served.
SECRETS = (b"SecretCam", b"Jane Doe", b"SERIAL12345", b"secret-xmp", b"secret comment",
           b"IPTC secret", b"secret text", b"PK\x03\x04", b"<script")
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
       b'xmlns:dc="http://purl.org/dc/elements/1.1/">secret-xmp</rdf:Description></rdf:RDF>'
       b"</x:xmpmeta>")
ORIENTATION = 0x0112


def gps_exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x013B] = "Jane Doe"  # Artist
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.6), "E", (2.0, 17.0, 40.2)
    exif.get_ifd(0x8769)[0xA431] = "SERIAL12345"  # BodySerialNumber
    return exif


def picture(size=(400, 200)) -> Image.Image:
    """Left half red, right half blue: orientation mistakes show."""
    img = Image.new("RGB", size, (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return img


def segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload


def appended_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hidden")
    return out.getvalue()


def jpeg_with_everything(orientation: int = 6) -> bytes:
    """A phone-style MPO (a second picture after the first, indexed by an MPF segment) with
    EXIF and GPS, XMP, a comment and an ICC profile, from Pillow; then IPTC, an APP15 segment,
    a JFIF thumbnail and a ZIP after the end, added by hand (before the MPF segment, so its
    offsets stay right)."""
    out = io.BytesIO()
    picture().save(out, "MPO", save_all=True, append_images=[picture().rotate(180)],
                   quality=90, exif=gps_exif(orientation), xmp=XMP, comment=b"secret comment",
                   icc_profile=b"\0" * 128 + b"fake icc")
    data = out.getvalue()
    jfif_with_thumbnail = segment(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\x01\x01" + b"\x80" * 3)
    iptc = b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0f\x1c\x02\x78\0\x0bIPTC secret"
    extra = segment(0xED, iptc) + segment(0xEF, b"secret text")
    after_app0 = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:2] + jfif_with_thumbnail + extra + data[after_app0:] + appended_zip()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_everything(orientation: int = 6) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Comment", "secret comment", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    out = io.BytesIO()
    picture().save(out, "PNG", exif=gps_exif(orientation), pnginfo=info)
    data = out.getvalue()
    at = data.index(b"IDAT") - 4
    extra = png_chunk(b"tIME", b"\x07\xe8\x05\x01\x0a\0\0") + png_chunk(b"prVt", b"secret text")
    return data[:at] + extra + data[at:] + b"<script>alert(1)</script>"


def webp_with_everything(orientation: int = 6) -> bytes:
    out = io.BytesIO()
    picture().save(out, "WEBP", lossless=True, exif=gps_exif(orientation), xmp=XMP,
                   icc_profile=b"\0" * 128 + b"fake icc")
    return out.getvalue() + appended_zip()


def gif_with_everything() -> bytes:
    """Two frames and looping, from Pillow; a comment, an XMP application extension and a
    plain-text extension (with its own graphic control block), added before the first frame,
    and a script after the trailer."""
    frames = [picture((40, 20)).convert("P"), picture((40, 20)).rotate(180).convert("P")]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], loop=0,
                   comment=b"secret comment", duration=100)
    data = out.getvalue()
    xmp_extension = b"!\xff\x0bXMP DataXMP" + bytes((len(XMP[:255]),)) + XMP[:255] + b"\0"
    plain_text = (b"!\xf9\x04\x00\x0a\x00\x00\x00"
                  + b"!\x01\x0c" + b"\0" * 12 + b"\x0bsecret text\0")
    first_control = next(at for kind, block, at in gif_blocks(data)
                         if kind == "extension" and block[:1] == b"\xf9")
    return data[:first_control] + xmp_extension + plain_text + data[first_control:] + b"<script>"


def clean(tmp_path: Path, data: bytes, fmt: str, orientation: int = 1) -> bytes:
    source, target = tmp_path / "upload", tmp_path / "clean"
    source.write_bytes(data)
    size = sanitize(source, target, BY_PILLOW_NAME[fmt], orientation)
    cleaned = target.read_bytes()
    assert size == len(cleaned)
    assert not any(secret in cleaned for secret in SECRETS), cleaned
    return cleaned


def same_pixels(cleaned: bytes, upload: bytes) -> bool:
    """Every frame decodes to the same pixels (an MPO upload's second picture is gone)."""
    with Image.open(io.BytesIO(cleaned)) as one, Image.open(io.BytesIO(upload)) as two:
        frames = getattr(one, "n_frames", 1)
        if two.format != "MPO" and frames != getattr(two, "n_frames", 1):
            return False
        for index in range(frames):
            one.seek(index)
            two.seek(index)
            if one.convert("RGBA").tobytes() != two.convert("RGBA").tobytes():
                return False
        return True


# --- the rewrite, format by format --------------------------------------------------------


def test_jpeg_keeps_only_jfif_orientation_icc_and_the_image(tmp_path):
    upload = jpeg_with_everything()
    cleaned = clean(tmp_path, upload, "JPEG", orientation=6)
    segments = jpeg_segments(cleaned)
    app_segments = [(m, p[:12]) for m, p in segments if 0xE0 <= m <= 0xEF or m == 0xFE]
    assert app_segments == [
        (0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01"),
        (0xE1, b"Exif\0\0MM\0*\0\0"),
        (0xE2, b"ICC_PROFILE\0"),
    ]
    assert segments[0][1][-2:] == b"\0\0", "no JFIF thumbnail"
    assert segments[1][1] == orientation_exif(6)
    assert jpeg_scan_data(cleaned) == jpeg_scan_data(upload)[:len(jpeg_scan_data(cleaned))]
    assert cleaned.endswith(b"\xff\xd9") and upload.index(b"PK\x03\x04") >= len(cleaned) - 200
    with Image.open(io.BytesIO(cleaned)) as img:
        assert dict(img.getexif()) == {ORIENTATION: 6}
        assert img.format == "JPEG"  # no longer an MPO: the second picture is gone
        assert not {"xmp", "comment", "photoshop", "mp"} & set(img.info)
        assert img.info["icc_profile"].endswith(b"fake icc")
    assert same_pixels(cleaned, upload)


def test_jpeg_without_orientation_gets_no_exif_at_all(tmp_path):
    cleaned = clean(tmp_path, jpeg_with_everything(orientation=1), "JPEG", orientation=1)
    assert 0xE1 not in [m for m, _ in jpeg_segments(cleaned)]


def test_real_photo_loses_exif_xmp_and_photoshop_thumbnail(tmp_path):
    upload = photo("j10_fallenleaf.jpg").read_bytes()  # Lightroom: EXIF, XMP, IPTC, thumbnail
    cleaned = clean(tmp_path, upload, "JPEG")
    assert [m for m, _ in jpeg_segments(cleaned) if 0xE0 <= m <= 0xEF] == [0xE0]
    assert b"Canon" not in cleaned and b"Klapetek" not in cleaned
    assert jpeg_scan_data(cleaned) == jpeg_scan_data(upload)
    assert same_pixels(cleaned, upload)


def test_png_keeps_critical_and_colour_chunks_and_orientation(tmp_path):
    upload = png_with_everything()
    cleaned = clean(tmp_path, upload, "PNG", orientation=6)
    kinds = [kind for kind, _ in png_chunks(cleaned)]
    assert kinds[:2] == [b"IHDR", b"eXIf"] and kinds[-1] == b"IEND"
    assert set(kinds) <= {b"IHDR", b"eXIf", b"pHYs", b"IDAT", b"IEND"}, kinds
    assert dict(png_chunks(cleaned))[b"eXIf"] == orientation_exif(6)[6:]
    idat = [data for kind, data in png_chunks(upload, trailing_allowed=True) if kind == b"IDAT"]
    assert [data for kind, data in png_chunks(cleaned) if kind == b"IDAT"] == idat
    with Image.open(io.BytesIO(cleaned)) as img:
        assert dict(img.getexif()) == {ORIENTATION: 6}
        assert not {"Author", "Comment", "XML:com.adobe.xmp", "xmp"} & set(img.info)
    assert same_pixels(cleaned, upload)


def test_webp_drops_exif_and_xmp_and_fixes_flags_and_size(tmp_path):
    upload = webp_with_everything()
    cleaned = clean(tmp_path, upload, "WEBP", orientation=6)
    chunks = webp_chunks(cleaned)  # also checks the RIFF size
    assert [kind for kind, _ in chunks] == [b"VP8X", b"ICCP", b"VP8L", b"EXIF"]
    assert chunks[0][1][0] == 0x20 | 0x08, "flags: ICC and EXIF, no XMP"
    assert chunks[-1][1] == orientation_exif(6)[6:]
    with Image.open(io.BytesIO(cleaned)) as img:
        assert dict(img.getexif()) == {ORIENTATION: 6}
        assert "xmp" not in img.info
    assert same_pixels(cleaned, upload)


def test_animated_webp_keeps_its_frames(tmp_path):
    frames = [picture((40, 20)), picture((40, 20)).rotate(180)]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], exif=gps_exif(1),
                   xmp=XMP, lossless=True)
    cleaned = clean(tmp_path, out.getvalue(), "WEBP")
    kinds = [kind for kind, _ in webp_chunks(cleaned)]
    assert kinds == [b"VP8X", b"ANIM", b"ANMF", b"ANMF"]
    assert same_pixels(cleaned, out.getvalue())


def test_gif_keeps_frames_and_looping_only(tmp_path):
    upload = gif_with_everything()
    cleaned = clean(tmp_path, upload, "GIF")
    blocks = gif_blocks(cleaned)
    extensions = [data[:1] + data[2:13] if data[:1] == b"\xff" else data[:1]
                  for kind, data, _ in blocks if kind == "extension"]
    assert extensions == [b"\xffNETSCAPE2.0", b"\xf9", b"\xf9"]
    assert [kind for kind, _, _ in blocks] == [
        "extension", "extension", "image", "extension", "image", "trailer"]
    assert cleaned.endswith(b";")
    with Image.open(io.BytesIO(cleaned)) as img:
        assert "comment" not in img.info and img.info["loop"] == 0
    assert same_pixels(cleaned, upload)


def test_rewrite_is_deterministic_and_idempotent(tmp_path):
    for fmt, data in (("JPEG", jpeg_with_everything()), ("PNG", png_with_everything()),
                      ("WEBP", webp_with_everything()), ("GIF", gif_with_everything())):
        orientation = 1 if fmt == "GIF" else 6
        once = clean(tmp_path, data, fmt, orientation)
        assert clean(tmp_path, data, fmt, orientation) == once
        assert clean(tmp_path, once, fmt, orientation) == once
        check_structure(tmp_path / "clean", BY_PILLOW_NAME[fmt])


# --- through the gateway --------------------------------------------------------------------


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch(http, stack, url: str) -> tuple[bytes, str]:
    async with http.get(f"{stack.url}{url}") as response:
        assert response.status == 200, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        return await response.read(), response.headers["Content-Type"]


def metadata_of(data: bytes) -> dict:
    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        return {"exif": dict(exif), "gps": dict(exif.get_ifd(0x8825)),
                "info": sorted(k for k in img.info if k not in (
                    "jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "icc_profile",
                    "progressive", "progression", "loop", "background", "timestamp",
                    "duration", "exif"))}


@pytest.mark.e2e
@pytest.mark.parametrize(("fmt", "make", "content_type"), [
    ("JPEG", jpeg_with_everything, "image/jpeg"),
    ("PNG", png_with_everything, "image/png"),
    ("WEBP", webp_with_everything, "image/webp"),
])
async def test_served_original_and_variants_carry_no_metadata(http, stack, fmt, make,
                                                              content_type):
    upload = make()
    form = file_form(upload, f"holiday.{BY_PILLOW_NAME[fmt].extension}", content_type)
    async with http.post(f"{stack.url}/api/images", data=form) as response:
        assert response.status == 201, await response.text()
        image = await response.json()
    assert (image["original"]["width"], image["original"]["height"]) == (200, 400)  # upright

    original, served_type = await fetch(http, stack, image["original"]["url"])
    download, _ = await fetch(http, stack, image["download_url"])
    assert served_type == content_type and download == original
    assert image["original"]["bytes"] == len(original) < len(upload)
    assert not [s for s in SECRETS if s in original]
    assert metadata_of(original) == {"exif": {ORIENTATION: 6}, "gps": {}, "info": []}
    assert same_pixels(original, upload)

    # The AVIF and WebP files too, once the background has made them (for this flat WebP
    # picture an AVIF comes out larger than the WebP variant: dropped, never served).
    for _ in range(300):
        async with http.get(f"{stack.url}/api/images/{image['token']}") as response:
            now = await response.json()
        if fmt == "WEBP" or all(len(v["formats"]) == 3 for v in now["variants"].values()):
            break
        await asyncio.sleep(0.1)
    files = {f"{kind}.{name}": entry["url"] for kind, v in now["variants"].items()
             for name, entry in v["formats"].items()}
    assert fmt == "WEBP" or {n.rsplit(".", 1)[1] for n in files} >= {"avif", "webp"}
    for kind, url in files.items():
        data, _ = await fetch(http, stack, url)
        assert not [s for s in SECRETS if s in data], kind
        assert metadata_of(data) == {"exif": {}, "gps": {}, "info": []}, kind
        with Image.open(io.BytesIO(data)) as img:
            assert img.height > img.width, f"{kind} is upright, with no orientation tag left"
            top = img.convert("RGB").getpixel((img.width // 2, 2))
            assert top[0] > 200 and top[2] < 60, f"{kind}: red half on top, got {top}"

    # The same upload again is the same image: duplicates are found by the uploaded bytes.
    async with http.post(f"{stack.url}/api/images", data=file_form(upload)) as response:
        assert response.status == 200
        assert (await response.json())["token"] == image["token"]
    async with http.delete(f"{stack.url}/api/images/{image['token']}",
                           headers={"Authorization": f"Bearer {image['delete_token']}"}) as gone:
        assert gone.status == 204
