"""HDR photos stay HDR (issue 19): an Ultra HDR JPEG keeps its gain map in the original and
in its JPEG variants, and nothing else of its metadata; an SDR photo gets no gain map; a
motion photo's video is never served.

Through the upload app with a real resize app and the real database. "Reads as Ultra HDR" is
libvips' ``uhdrload`` (libultrahdr) finding the gain map and its numbers, the reader Kitteh
does not use to check its own uploads.
"""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import pytest
import pyvips
from PIL import Image

from shared.sanitize import gainmap
from tests.heif_files import heic_bytes
from tests.support import file_form, photo
from tests.test_privacy import SECRETS, gps_exif, segment
from tests.test_upload_api import wait_ready

VIDEO = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom" + b"secret-video-frame" * 64
GAIN_MAP_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description rdf:about="" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/'
    b'1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" hdrgm:Version="1.0" '
    b'hdrgm:GainMapMin="0" hdrgm:GainMapMax="2" hdrgm:Gamma="1" hdrgm:OffsetSDR="0.015625" '
    b'hdrgm:OffsetHDR="0.015625" hdrgm:HDRCapacityMin="0" hdrgm:HDRCapacityMax="2" '
    b'dc:creator="Jane Doe"><dc:description>secret-xmp</dc:description></rdf:Description>'
    b"</rdf:RDF></x:xmpmeta>")
PRIMARY_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description rdf:about="" xmlns:hdrgm="http://ns.adobe.com/hdr-gain-map/'
    b'1.0/" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/" hdrgm:Version="1.0" '
    b'GCamera:MotionPhoto="1" GCamera:MotionPhotoPresentationTimestampUs="0">'
    b"<dc:description>secret-xmp</dc:description></rdf:Description></rdf:RDF></x:xmpmeta>")
SERVED_SECRETS = (*SECRETS, b"secret-video", b"ftypmp42")
MAX_BOOST = 4.0  # what tests/data/photos/u01_seeding_ultrahdr.jpg was made with


def split_ultrahdr(data: bytes) -> tuple[bytes, bytes]:
    """The primary and the gain map JPEG of an Ultra HDR file, by its MPF index."""
    header = gainmap._header_segments(io.BytesIO(data))
    payload, at = next((p, a) for m, p, a in header if p.startswith(b"MPF\0"))
    _, (size, offset) = gainmap._mp_entries(payload[4:])
    start = at + 8 + offset
    return data[:start], data[start:start + size]


def phone_ultrahdr(motion_video: bytes = b"", source: bytes | None = None) -> bytes:
    """u01 as a phone writes it: EXIF with GPS, XMP with private fields, IPTC and a comment in
    both pictures; the gain map described by hdrgm XMP too; and, for a motion photo, an MP4
    after the gain map. The MPF index is rebuilt for the larger pictures."""
    primary, gain = split_ultrahdr(source or photo("u01_seeding_ultrahdr.jpg").read_bytes())
    iptc = b"Photoshop 3.0\08BIM\x04\x04\0\0\0\0\0\x0f\x1c\x02\x78\0\x0bIPTC secret"
    private = (segment(0xE1, gps_exif(1).tobytes()) + segment(0xED, iptc)
               + segment(0xFE, b"secret comment"))
    gain = gain[:2] + private + segment(0xE1, gainmap.XMP_PREFIX + GAIN_MAP_XMP) + gain[2:]
    # The primary's own MPF segment is replaced by one for the new sizes (same length).
    header = gainmap._header_segments(io.BytesIO(primary))
    mpf_at = next(a for m, p, a in header if p.startswith(b"MPF\0"))
    added = private + segment(0xE1, gainmap.XMP_PREFIX + PRIMARY_XMP)
    primary = primary[:2] + added + primary[2:]
    mpf_at += len(added)
    mpf = gainmap._mpf(len(primary), len(gain), len(primary) - (mpf_at + 8))
    primary = primary[:mpf_at] + mpf + primary[mpf_at + len(mpf):]
    return primary + gain + motion_video


def ultrahdr_boost(data: bytes) -> float | None:
    img = pyvips.Image.new_from_buffer(data, "")
    if img.get("vips-loader") != "uhdrload_buffer":
        return None
    return img.get("gainmap-max-content-boost")[0]


def no_private_metadata(data: bytes, what: str) -> None:
    assert not [s for s in SERVED_SECRETS if s in data], what
    assert b"Exif\0\0" not in data and b"Photoshop 3.0" not in data, what
    for xmp in re.findall(rb"<x:xmpmeta.*?</x:xmpmeta>", data, re.S):
        assert b"dc:" not in xmp and b"GCamera" not in xmp, (what, xmp)


def served_files(storage_dir: Path, body: dict) -> list[Path]:
    image_dir = storage_dir / body["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0]
    return sorted(image_dir.iterdir())


def test_the_phone_file_is_ultrahdr_with_its_metadata():
    """The upload the tests make is what they say: Ultra HDR with GPS, XMP and a video."""
    upload = phone_ultrahdr(VIDEO)
    assert ultrahdr_boost(upload) == pytest.approx(MAX_BOOST, rel=0.01)
    assert b"secret-xmp" in upload and b"SecretCam" in upload and VIDEO in upload


@pytest.mark.parametrize("motion", [False, True], ids=["ultrahdr", "ultrahdr-motion-photo"])
async def test_ultrahdr_jpeg_keeps_its_gain_map_and_nothing_else(upload_client, db,
                                                                storage_dir, motion):
    upload = phone_ultrahdr(VIDEO if motion else b"")
    response = await upload_client.post(
        "/api/images", data=file_form(upload, "PXL_20261207.jpg", "image/jpeg"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["original"]["width"], body["original"]["height"]) == (2200, 1238)
    await wait_ready(db, body["token"], 120, base_only=False)

    original = (storage_dir / body["original"]["url"].removeprefix("/i/")).read_bytes()
    assert ultrahdr_boost(original) == pytest.approx(MAX_BOOST, rel=0.01)
    no_private_metadata(original, "original")
    with Image.open(io.BytesIO(original)) as img, Image.open(io.BytesIO(upload)) as sent:
        assert img.tobytes() == sent.tobytes(), "the picture itself is not re-encoded"

    for kind in ("monstrous", "wide", "huge"):
        variant = body["variants"][kind]
        data = (storage_dir / variant["url"].removeprefix("/i/")).read_bytes()
        boost = ultrahdr_boost(data)
        assert boost is not None, f"{kind} is not Ultra HDR"
        assert abs(boost - MAX_BOOST) <= 0.25 * MAX_BOOST, (kind, boost)
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (variant["width"], variant["height"])
    for path in served_files(storage_dir, body):  # every size, every format
        no_private_metadata(path.read_bytes(), path.name)


async def test_sdr_jpeg_variants_carry_no_gain_map(upload_client, db, storage_dir):
    upload = photo("j11_cups_gps.jpg").read_bytes()
    response = await upload_client.post("/api/images", data=file_form(upload, "cups.jpg"))
    assert response.status == 201, await response.text()
    body = await response.json()
    await wait_ready(db, body["token"], 60, base_only=False)
    for path in served_files(storage_dir, body):
        data = path.read_bytes()
        assert b"MPF\0" not in data and b"hdrgm" not in data and b"21496" not in data, path
        if path.suffix == ".jpg":
            assert ultrahdr_boost(data) is None, path.name


async def test_sdr_motion_photo_jpeg_serves_no_video(upload_client, db, storage_dir):
    """A Google motion photo without a gain map: the MP4 after the picture stays behind."""
    upload = photo("j11_cups_gps.jpg").read_bytes() + VIDEO
    response = await upload_client.post("/api/images", data=file_form(upload, "MVIMG.jpg"))
    assert response.status == 201, await response.text()
    body = await response.json()
    await wait_ready(db, body["token"], 60, base_only=False)
    for path in served_files(storage_dir, body):
        assert b"secret-video" not in path.read_bytes(), path.name
        assert b"ftypmp42" not in path.read_bytes(), path.name


async def test_heic_motion_photo_serves_no_video(upload_client, db, storage_dir):
    """A Samsung motion photo HEIC: its MP4 in a top-level ``mpvd`` box after the picture."""
    with Image.open(photo("j03_seeding.jpg")) as img:
        still = heic_bytes(img.convert("RGB").resize((640, 360)))
    upload = still + struct.pack(">I4s", 8 + len(VIDEO), b"mpvd") + VIDEO
    response = await upload_client.post(
        "/api/images", data=file_form(upload, "20261207_motion.heic", "image/heic"))
    assert response.status == 201, await response.text()
    body = await response.json()
    await wait_ready(db, body["token"], 60, base_only=False)
    files = served_files(storage_dir, body)
    assert any(p.name.startswith("original") for p in files)
    for path in files:
        assert b"secret-video" not in path.read_bytes(), path.name


async def test_hdr_page_offers_the_jpeg_to_hdr_screens_only(upload_client, gallery_client, db):
    hdr = await (await upload_client.post("/api/images", data=file_form(
        phone_ultrahdr(), "hdr.jpg"))).json()
    sdr = await (await upload_client.post("/api/images", data=file_form(
        photo("j11_cups_gps.jpg").read_bytes(), "cups.jpg"))).json()
    assert await db.fetchval("SELECT gain_map FROM images WHERE token = $1", hdr["token"])
    assert not await db.fetchval("SELECT gain_map FROM images WHERE token = $1", sdr["token"])
    page = await (await gallery_client.get(hdr["page_url"])).text()
    source = re.search(r'<source type="image/jpeg" media="\(dynamic-range: high\)" '
                       r'srcset="([^"]*)"', page)
    assert source and source.group(1).count(".jpg") == 5, "every size, tiny to huge"
    assert page.index("<source") == source.start(), "the first choice of the <picture>"
    home = await (await gallery_client.get("/")).text()
    assert "dynamic-range" not in home, "grid tiles stay the small SDR files"
    page = await (await gallery_client.get(sdr["page_url"])).text()
    assert "dynamic-range" not in page


async def test_iphone_hdr_heic_keeps_its_gain_map_and_gets_ultrahdr_variants(
        upload_client, db, storage_dir):
    import pi_heif

    upload = photo("h01_pug_iphone13pro_hdr.heic").read_bytes()
    assert b"Exif\0\0" in upload and b"CreateDate" in upload and b"Apple iOS" in upload
    response = await upload_client.post(
        "/api/images", data=file_form(upload, "IMG_4242.HEIC", "image/heic"))
    assert response.status == 201, await response.text()
    body = await response.json()
    await wait_ready(db, body["token"], 180, base_only=False)
    assert await db.fetchval("SELECT gain_map FROM images WHERE token = $1", body["token"])

    original = (storage_dir / body["original"]["url"].removeprefix("/i/")).read_bytes()
    heif = pi_heif.open_heif(io.BytesIO(original))
    assert list(heif.info["aux"]) == ["urn:com:apple:photo:2020:aux:hdrgainmap"]
    headroom = re.search(rb'HDRGainMapHeadroom="([0-9.]+)"', original)
    assert headroom, "the gain map's headroom is kept (from the maker notes it came in)"
    headroom = float(headroom.group(1))
    assert 2 < headroom < 8
    for kind in ("monstrous", "wide", "huge"):
        data = (storage_dir / body["variants"][kind]["url"].removeprefix("/i/")).read_bytes()
        boost = ultrahdr_boost(data)
        assert boost is not None and abs(boost - headroom) <= 0.25 * headroom, (kind, boost)
    for path in served_files(storage_dir, body):
        data = path.read_bytes()
        for private in (b"Exif\0\0", b"CreateDate", b"Apple iOS", b"depthData", b"GPS"):
            assert private not in data, (path.name, private)


@pytest.fixture
async def http():
    import aiohttp

    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "content_type"), [
    ("PXL_motion.jpg", "image/jpeg"), ("IMG_4242.HEIC", "image/heic")])
async def test_served_hdr_files_carry_their_gain_map_and_no_metadata(http, stack, name,
                                                                     content_type):
    """Through the gateway, as a browser gets them: the original, the download and every
    variant file of each size and format, once all are made."""
    import asyncio

    from tests.test_privacy import fetch

    upload = (phone_ultrahdr(VIDEO) if content_type == "image/jpeg"
              else photo("h01_pug_iphone13pro_hdr.heic").read_bytes())
    async with http.post(f"{stack.url}/api/images",
                         data=file_form(upload, name, content_type)) as response:
        # 200: the same photo was uploaded to this session's stack by another test already.
        assert response.status in (200, 201), await response.text()
        image = await response.json()
    original, served_type = await fetch(http, stack, image["original"]["url"])
    download, _ = await fetch(http, stack, image["download_url"])
    assert served_type == content_type and download == original
    if content_type == "image/jpeg":
        assert ultrahdr_boost(original) == pytest.approx(MAX_BOOST, rel=0.01)
    else:
        assert b'HDRGainMapHeadroom="' in original
    for _ in range(600):
        async with http.get(f"{stack.url}/api/images/{image['token']}") as response:
            now = await response.json()
        if all(len(v["formats"]) == 3 for v in now["variants"].values()):
            break
        await asyncio.sleep(0.2)
    files = {f"{kind}.{fmt}": entry["url"] for kind, v in now["variants"].items()
             for fmt, entry in v["formats"].items()}
    assert len(files) == 15, sorted(files)
    for what, data in (("original", original),
                       *[(n, (await fetch(http, stack, u))[0]) for n, u in files.items()]):
        no_private_metadata(data, what)
        for private in (b"CreateDate", b"Apple iOS", b"depthData", b"GPSLatitude"):
            assert private not in data, (what, private)
        if what.endswith(".jpeg") and what.split(".")[0] in ("monstrous", "wide", "huge"):
            assert ultrahdr_boost(data) is not None, what


@pytest.mark.parametrize("damage", ["cut-short", "scan-zeroed"])
async def test_broken_gain_map_is_dropped_and_the_photo_kept_as_sdr(upload_client, db,
                                                                  storage_dir, damage):
    """A gain map cut short (the MPF index says more bytes than the file has) or whose scan
    is zeros up to its end marker: the photo is an SDR JPEG as well, and is stored as one."""
    primary, gain = split_ultrahdr(phone_ultrahdr())
    half = len(gain) // 2
    upload = primary + (gain[:half] if damage == "cut-short" else
                        gain[:half] + bytes(len(gain) - half))
    response = await upload_client.post("/api/images", data=file_form(upload, "cut.jpg"))
    assert response.status == 201, await response.text()
    body = await response.json()
    await wait_ready(db, body["token"], 60)
    original = (storage_dir / body["original"]["url"].removeprefix("/i/")).read_bytes()
    assert b"MPF\0" not in original and ultrahdr_boost(original) is None
    no_private_metadata(original, "original")
    assert not await db.fetchval("SELECT gain_map FROM images WHERE token = $1", body["token"])
