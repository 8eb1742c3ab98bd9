"""Photos as phones take them (issue 19): HEIC that a phone crops, turns and mirrors in its
container, animated AVIF, and motion photos whose video never leaves with the picture.

Through the upload app with a real resize app and the real database, like
``tests/test_formats_in.py``; HDR gain maps are in ``tests/test_hdr.py``.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pi_heif
from PIL import Image

from shared.formats import BY_NAME
from shared.sanitize import sanitize
from tests.heif_files import heic_bytes, with_properties
from tests.support import file_form
from tests.test_upload_api import wait_ready

pi_heif.register_heif_opener()

# Upright, the picture is 300×200 in four quadrants of distinct colours, so any turn or
# mirror left over shows in which colour sits where.
QUADRANTS = {"top left": (255, 0, 0), "top right": (0, 0, 255),
             "bottom left": (0, 160, 0), "bottom right": (255, 255, 255)}


def quadrants(size: tuple[int, int]) -> Image.Image:
    width, height = size
    img = Image.new("RGB", size)
    for (name, colour), box in zip(QUADRANTS.items(), (
            (0, 0, width // 2, height // 2), (width // 2, 0, width, height // 2),
            (0, height // 2, width // 2, height), (width // 2, height // 2, width, height)),
            strict=True):
        img.paste(colour, box)
        del name
    return img


def assert_upright(img: Image.Image, what: str) -> None:
    img = img.convert("RGB")
    width, height = img.size
    for (name, colour), (x, y) in zip(QUADRANTS.items(), (
            (width // 4, height // 4), (3 * width // 4, height // 4),
            (width // 4, 3 * height // 4), (3 * width // 4, 3 * height // 4)), strict=True):
        seen = img.getpixel((x, y))
        assert max(abs(a - b) for a, b in zip(seen, colour, strict=True)) < 60, (
            what, name, seen, colour)


def clap(width: int, height: int, x_offset: tuple[int, int], y_offset: tuple[int, int]) -> bytes:
    payload = struct.pack(">IIIIiIiI", width, 1, height, 1, *x_offset, *y_offset)
    return struct.pack(">I4s", 8 + len(payload), b"clap") + payload


def mirrored_rotated_heic(tmp_path: Path) -> bytes:
    """As an iPhone stores a selfie it turned: coded two pixels larger than shown and
    cropped back by ``clap``, turned by ``irot`` (three quarter turns anti-clockwise) and
    mirrored left to right by ``imir`` (mode 1 in libheif's reading, which is what
    Kitteh decodes with; mode 0 flips top to bottom). The coded pixels are the upright
    picture with each step undone, in reverse order."""
    upright = quadrants((300, 200))
    unmirrored = upright.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    unturned = unmirrored.transpose(Image.Transpose.ROTATE_90)  # 200×300
    coded = Image.new("RGB", (202, 302), (255, 0, 255))  # the cropped edge: magenta
    coded.paste(unturned, (0, 0))
    source, clean = tmp_path / "coded.heic", tmp_path / "clean.heic"
    source.write_bytes(heic_bytes(coded, quality=90))
    sanitize(source, clean, BY_NAME["HEIC"], 1)
    return with_properties(clean.read_bytes(), [
        clap(200, 300, (-1, 1), (-1, 1)),  # the centre moved back half of the 2 extra px
        struct.pack(">I4sB", 9, b"irot", 3),
        struct.pack(">I4sB", 9, b"imir", 1)])


async def test_mirrored_rotated_cropped_heic_is_accepted_upright(upload_client, db,
                                                                 storage_dir, tmp_path):
    upload = mirrored_rotated_heic(tmp_path)
    with Image.open(io.BytesIO(upload)) as decoded:  # libheif agrees it is upright
        assert decoded.size == (300, 200)
        assert_upright(decoded, "libheif")
    response = await upload_client.post(
        "/api/images", data=file_form(upload, "IMG_0007.HEIC", "image/heic"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["original"]["width"], body["original"]["height"]) == (300, 200)
    await wait_ready(db, body["token"])
    image_dir = storage_dir / body["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0]
    made = [p for p in image_dir.iterdir() if not p.name.startswith("original")]
    assert len(made) >= len(body["variants"])
    for path in made:  # every file of every size and format
        with Image.open(path) as img:
            assert img.width > img.height, path.name
            assert_upright(img, path.name)


def animated_avif(count: int = 20, size: tuple[int, int] = (480, 270)) -> bytes:
    """An AVIF sequence (``avis``) as Pillow's libavif writes one, with the EXIF (GPS) and
    XMP the privacy tests plant."""
    from tests.test_privacy import XMP, gps_exif

    base = quadrants(size)
    frames = [base.rotate(i * 18, fillcolor=(i * 12, 40, 200)) for i in range(count)]
    out = io.BytesIO()
    frames[0].save(out, "AVIF", save_all=True, append_images=frames[1:], duration=60, loop=0,
                   quality=60, exif=gps_exif(1), xmp=XMP)
    return out.getvalue()


async def test_animated_avif_gets_animated_variants(upload_client, gallery_client, db,
                                                    storage_dir):
    upload = animated_avif()
    assert b"SecretCam" in upload and b"secret-xmp" in upload and b"avis" in upload[:64]
    response = await upload_client.post(
        "/api/images", data=file_form(upload, "loop.avifs", "image/avif"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["original"]["frames"] == 20 and body["original"]["content_type"] == "image/avif"
    await wait_ready(db, body["token"], 120)
    original = (storage_dir / body["original"]["url"].removeprefix("/i/")).read_bytes()
    assert b"SecretCam" not in original and b"secret-xmp" not in original
    with Image.open(io.BytesIO(original)) as img:
        assert img.n_frames == 20, "every frame kept"
        img.seek(19)
        img.load()
    for kind in ("large", "monstrous"):
        variant = body["variants"][kind]
        assert variant["url"].endswith(f"/{kind}.webp")
        path = storage_dir / variant["url"].removeprefix("/i/")
        with Image.open(path) as img:
            assert (img.format, img.n_frames) == ("WEBP", 20), kind
            assert img.size == (variant["width"], variant["height"])
    with Image.open(storage_dir / body["variants"]["tiny"]["url"].removeprefix("/i/")) as img:
        assert img.n_frames == 1, "grid tiles stay still"
    page = await (await gallery_client.get(body["page_url"])).text()
    assert "AVIF · 20 frames" in page, "the page says it is an animation"


async def test_heic_image_sequence_is_refused_saying_so(upload_client, db, storage_dir):
    from tests.hostile import heif as hostile_heif

    response = await upload_client.post("/api/images", data=file_form(
        hostile_heif.image_sequence(), "burst.heic", "image/heic"))
    assert response.status == 415
    assert "animated AVIF" in (await response.json())["error"]["message"]
    assert await db.fetchval("SELECT count(*) FROM images") == 0
    assert not [p for p in storage_dir.rglob("*") if p.is_file()]
