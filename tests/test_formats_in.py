"""Every photo people have: HEIC and AVIF in, animations that stay animated, colours kept,
and one format registry that the rest of Kitteh is derived from.

Through the upload app (with a real resize app and the real database) unless the test is
about the registry itself; ``tests/e2e/test_formats_gateway.py`` repeats the privacy checks
through nginx.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pi_heif
import pytest
from PIL import Image, ImageCms, ImageStat

from deploy.nginx import MIME_TYPES
from shared.formats import (
    ACCEPTED_NAMES,
    BY_NAME,
    FORMATS,
    accept_attribute,
    browser_originals,
    mime_types,
)
from shared.sanitize.isobmff import walk
from tests.heif_files import avif_bytes, grid_heic, heic_bytes, with_rotation
from tests.hostile import heif as hostile_heif
from tests.support import REPO, file_form, photo
from tests.test_privacy import SECRETS, picture
from tests.test_upload_api import wait_ready

pi_heif.register_heif_opener()
GPS_TEXT = (b"SecretCam", b"SERIAL12345", b"Jane Doe", b"secret-xmp")


def leaf(size=(800, 500)) -> Image.Image:
    with Image.open(photo("j10_fallenleaf.jpg")) as img:
        return img.convert("RGB").resize(size)


def stored_path(storage_dir: Path, url: str) -> Path:
    return storage_dir / url.removeprefix("/i/")


def stored(storage_dir: Path, url: str) -> bytes:
    return stored_path(storage_dir, url).read_bytes()


def no_metadata(data: bytes) -> None:
    assert not [s for s in (*SECRETS, *GPS_TEXT) if s in data]
    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        assert not exif.get_ifd(0x8825), "no GPS"
        assert set(exif) <= {0x0112}, "at most the orientation"
        assert not img.info.get("xmp")


# --- the registry --------------------------------------------------------------------------


def test_registry_names_every_format_once():
    assert ACCEPTED_NAMES == "JPEG, PNG, GIF, WebP, AVIF, HEIC, MP4, MOV, WebM"
    extensions = [e for f in FORMATS for e in f.extensions]
    assert len(extensions) == len(set(extensions))
    # No <img> shows a HEIC or a video: never the gateway's stand-in for a variant.
    assert [f.name for f in FORMATS if not f.browser_safe] == ["HEIC", "MP4", "MOV", "WEBM"]
    for fmt in FORMATS:  # every variant is a format browsers show
        assert BY_NAME[fmt.still_variant].browser_safe
        assert fmt.animated_variant is None or BY_NAME[fmt.animated_variant].browser_safe


def test_upload_page_nginx_and_gateway_are_derived_from_the_registry():
    accept = accept_attribute()
    for fmt in FORMATS:
        assert fmt.content_type in accept and f".{fmt.extension}" in accept
        assert f"{fmt.content_type} {' '.join(fmt.extensions)};" in MIME_TYPES
    gateway = (REPO / "deploy/nginx/gateway.conf.template").read_text()
    types = re.search(r"types \{(.*?)\}", gateway, re.S).group(1)
    declared = dict((t, tuple(e)) for t, *e in (part.split() for part in types.split(";")
                                                 if part.strip()))
    assert declared == mime_types()
    fallback = re.search(r"location @original_instead \{(.*?)=404", gateway, re.S).group(1)
    assert tuple(re.findall(r"original\.([a-z]+)", fallback)) == browser_originals()
    assert "heic" not in browser_originals()


async def test_home_page_accept_list_and_words_come_from_the_registry(gallery_client):
    page = await (await gallery_client.get("/")).text()
    assert f'accept="{accept_attribute()}"' in page
    assert "JPEG, PNG, GIF, WebP, AVIF, HEIC, MP4, MOV or WebM · up to" in page
    assert 'data-formats="JPEG, PNG, GIF, WebP, AVIF, HEIC, MP4, MOV or WebM"' in page


async def test_tiff_is_refused_naming_the_accepted_formats(upload_client, db, storage_dir):
    out = io.BytesIO()
    leaf((64, 40)).save(out, "TIFF")
    response = await upload_client.post("/api/images",
                                        data=file_form(out.getvalue(), "scan.tiff", "image/tiff"))
    assert response.status == 415
    error = (await response.json())["error"]
    assert error["code"] == "unsupported_image"
    assert "accepts JPEG, PNG, GIF, WebP, AVIF, HEIC" in error["message"]
    assert await db.fetchval("SELECT count(*) FROM images") == 0


# --- HEIC and AVIF ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def iphone_heic() -> bytes:
    """4032×3024, the size of an iPhone's 12-megapixel photo."""
    return heic_bytes(leaf((4032, 3024)), quality=40)


async def test_iphone_sized_heic_is_accepted_with_jpeg_variants_and_no_metadata(
        upload_client, db, storage_dir, iphone_heic):
    assert b"SecretCam" in iphone_heic and b"secret-xmp" in iphone_heic  # planted
    response = await upload_client.post(
        "/api/images", data=file_form(iphone_heic, "IMG_0001.HEIC", "image/heic"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert body["original"] == {**body["original"], "width": 4032, "height": 3024,
                                "content_type": "image/heic", "filename": "IMG_0001.HEIC"}
    assert body["original"]["url"].endswith("/original.heic")
    rows = await wait_ready(db, body["token"], 60)
    assert {r["kind"]: (r["width"], r["height"]) for r in rows} == {
        "tiny": (90, 68), "large": (300, 225), "monstrous": (600, 450), "wide": (1280, 960),
        "huge": (2048, 1536)}

    original = stored(storage_dir, body["original"]["url"])
    # Lossless: the same size (the EXIF and XMP items' bytes are zeros now), same pixels.
    assert len(original) == len(iphone_heic) == body["original"]["bytes"]
    assert not [s for s in (*SECRETS, *GPS_TEXT, b"Exif\0\0") if s in original]
    with Image.open(io.BytesIO(original)) as img, \
            Image.open(io.BytesIO(iphone_heic)) as uploaded:
        assert img.tobytes() == uploaded.tobytes()
        assert not img.info.get("exif") and not img.info.get("xmp")
    for kind, variant in body["variants"].items():
        assert variant["url"].endswith(f"/{kind}.jpg")
        data = stored(storage_dir, variant["url"])
        no_metadata(data)
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG" and img.size == (variant["width"], variant["height"])
    # The AVIF and WebP files made after the answer carry none either.
    image_dir = stored_path(storage_dir, body["original"]["url"]).parent
    modern = [p for p in image_dir.iterdir() if p.suffix in (".avif", ".webp")]
    assert modern
    for path in modern:
        no_metadata(path.read_bytes())


async def test_avif_is_accepted_upright_with_jpeg_variants_and_no_metadata(
        upload_client, db, storage_dir):
    upload = avif_bytes(leaf((400, 250)), orientation=6)  # stored sideways, irot says turn
    assert b"SecretCam" in upload
    response = await upload_client.post("/api/images",
                                        data=file_form(upload, "photo.avif", "image/avif"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["original"]["width"], body["original"]["height"]) == (250, 400)
    assert body["original"]["content_type"] == "image/avif"
    await wait_ready(db, body["token"])
    original = stored(storage_dir, body["original"]["url"])
    assert not [s for s in (*SECRETS, *GPS_TEXT) if s in original]
    with Image.open(io.BytesIO(original)) as img:
        assert img.getexif().get(0x0112) == 6, "irot/imir kept: browsers turn it upright"
        assert not img.info.get("xmp")
    for kind, variant in body["variants"].items():
        data = stored(storage_dir, variant["url"])
        no_metadata(data)
        with Image.open(io.BytesIO(data)) as img:
            assert img.format == "JPEG" and img.height > img.width, kind


async def test_heic_irot_is_honoured_in_size_and_variants(upload_client, db, storage_dir,
                                                          tmp_path):
    """Stored 400×200 (left half red, right half blue) with irot = a quarter turn
    anti-clockwise: shown 200×400 with red at the bottom, and so are its variants."""
    from shared.sanitize import sanitize

    source, clean = tmp_path / "in.heic", tmp_path / "clean.heic"
    source.write_bytes(heic_bytes(picture((400, 200)), quality=80))
    sanitize(source, clean, BY_NAME["HEIC"], 1)
    upload = with_rotation(clean.read_bytes(), 1)
    response = await upload_client.post("/api/images",
                                        data=file_form(upload, "turned.heic", "image/heic"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["original"]["width"], body["original"]["height"]) == (200, 400)
    await wait_ready(db, body["token"])
    for kind, variant in body["variants"].items():
        with Image.open(io.BytesIO(stored(storage_dir, variant["url"]))) as img:
            assert img.height > img.width, kind
            bottom = img.convert("RGB").getpixel((img.width // 2, img.height - 3))
            assert bottom[0] > 200 and bottom[2] < 60, (kind, bottom)


async def test_tiled_heic_as_phones_write_it(upload_client, db, storage_dir):
    """A grid of HEVC tiles, its description in idat, an EXIF item linked to it: read whole,
    stripped of the EXIF, variants of the whole picture."""
    upload = grid_heic(picture((1024, 512)))
    assert b"SecretCam" in upload
    response = await upload_client.post("/api/images",
                                        data=file_form(upload, "IMG_0004.HEIC", "image/heic"))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["original"]["width"], body["original"]["height"]) == (1024, 512)
    await wait_ready(db, body["token"])
    original = stored(storage_dir, body["original"]["url"])
    assert b"SecretCam" not in original and b"Exif" not in original
    with io.BytesIO(original) as fp:
        layout = walk(fp, None)
    assert sorted(i.type for i in layout.items.values()) == [b"grid", b"hvc1", b"hvc1"]
    monstrous = stored(storage_dir, body["variants"]["monstrous"]["url"])
    with Image.open(io.BytesIO(monstrous)) as img:
        assert img.size == (600, 300)
        left, right = img.getpixel((50, 150)), img.getpixel((550, 150))
        assert left[0] > 200 > left[2] and right[2] > 200 > right[0], (left, right)


async def test_heic_page_never_offers_the_heic_to_the_browser(upload_client, gallery_client, db):
    upload = heic_bytes(leaf((1600, 1000)))
    body = await (await upload_client.post(
        "/api/images", data=file_form(upload, "IMG_0002.HEIC", "image/heic"))).json()
    await wait_ready(db, body["token"])
    page = await (await gallery_client.get(body["page_url"])).text()
    srcsets = re.findall(r'srcset="([^"]*)"', page)
    fallback = re.search(r'<img [^>]*srcset="([^"]*)"', page).group(1)
    assert srcsets and not [s for s in srcsets if ".heic" in s]
    assert fallback.count(".jpg") == 5  # tiny to huge (1600 px): JPEG for every browser
    assert "HEIC" in page  # the facts name the format


def test_heif_rewrite_drops_the_metadata_items(tmp_path):
    from shared.formats import BY_NAME
    from shared.sanitize import sanitize

    source, target = tmp_path / "in.heic", tmp_path / "out.heic"
    source.write_bytes(heic_bytes(leaf((320, 200))))
    sanitize(source, target, BY_NAME["HEIC"], 1)
    with source.open("rb") as before, target.open("rb") as after:
        kinds_before = {i.type for i in walk(before, None).items.values()}
        kinds_after = {i.type for i in walk(after, None).items.values()}
    assert {b"Exif", b"mime"} <= kinds_before
    assert kinds_after == kinds_before - {b"Exif", b"mime"}


@pytest.mark.parametrize(("name", "data", "status"), [
    ("huge-ispe", hostile_heif.heif(size=(50_000, 50_000)), 422),
    ("avif-huge-ispe", hostile_heif.heif(b"avif", size=(60_000, 60_000), item_type=b"av01"),
     422),
    ("5000-items", hostile_heif.heif(items=5000), 422),
    ("grid-of-1600-tiles", hostile_heif.heif(items=5, grid=(40, 40, 512, 512)), 422),
    ("grid-beyond-limits", hostile_heif.heif(items=5, grid=(2, 2, 80_000, 80_000)), 422),
    ("truncated", hostile_heif.truncated(), 415),
    ("unbounded-box", hostile_heif.unbounded_box_inside_meta(), 415),
    ("box-shorter-than-its-header", hostile_heif.box_of_impossible_size(), 415),
    ("nested-boxes", hostile_heif.deep_boxes(), 415),
    ("no-picture", hostile_heif.heif(), 415),
    ("jpeg-coded-item", hostile_heif.heif(item_type=b"jpeg"), 415),
    ("image-sequence", hostile_heif.image_sequence(), 415),
    ("grid-of-grids", hostile_heif.heif(items=2, grid=(1, 1, 64, 48), item_type=b"grid"),
     415),
])
async def test_hostile_heif_is_refused_leaving_nothing(upload_client, db, storage_dir, name,
                                                       data, status):
    response = await upload_client.post("/api/images",
                                        data=file_form(data, f"{name}.heic", "image/heic"))
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == {415: "unsupported_image", 422: "over_limits"}[status]
    assert await db.fetchval("SELECT count(*) FROM images") == 0
    assert not [p for p in storage_dir.rglob("*") if p.is_file()]


# --- animation -------------------------------------------------------------------------------


def frames(count=20, size=(480, 270)) -> list[Image.Image]:
    base = leaf(size)
    return [base.rotate(i * 18, fillcolor=(i * 12, 40, 200)) for i in range(count)]


def animated(fmt: str, durations: list[int], loop: int) -> bytes:
    out = io.BytesIO()
    first, *rest = frames(len(durations))
    first.save(out, fmt, save_all=True, append_images=rest, duration=durations, loop=loop)
    return out.getvalue()


def timing(data: bytes) -> tuple[str, int, list[int], int]:
    with Image.open(io.BytesIO(data)) as img:
        durations = []
        for index in range(getattr(img, "n_frames", 1)):
            img.seek(index)
            img.load()
            durations.append(img.info.get("duration"))
        return img.format, len(durations), durations, img.info.get("loop")


@pytest.mark.parametrize(("fmt", "filename"), [("GIF", "cat.gif"), ("WEBP", "cat.webp"),
                                               ("PNG", "cat.apng")])
async def test_animations_stay_animated_with_their_timing(upload_client, db, storage_dir, fmt,
                                                          filename):
    durations = [40, 80, 120, 60] * 5  # 20 frames; multiples of 10 ms (GIF counts in cs)
    upload = animated(fmt, durations, loop=3)
    response = await upload_client.post("/api/images", data=file_form(upload, filename,
                                                                      f"image/{fmt.lower()}"))
    assert response.status == 201, await response.text()
    body = await response.json()
    await wait_ready(db, body["token"])
    for kind in ("large", "monstrous"):
        variant = body["variants"][kind]
        assert variant["url"].endswith(f"/{kind}.webp")
        data = stored(storage_dir, variant["url"])
        assert timing(data) == ("WEBP", 20, durations, 3), kind
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (variant["width"], variant["height"])
    tiny = stored(storage_dir, body["variants"]["tiny"]["url"])
    assert timing(tiny)[:2] == ("WEBP", 1), "grid tiles stay still"


async def test_animation_page_names_the_webp_it_previews(upload_client, gallery_client, db):
    body = await (await upload_client.post("/api/images", data=file_form(
        animated("GIF", [50] * 4, 0), "cat.gif", "image/gif"))).json()
    await wait_ready(db, body["token"])
    # As while the resize service is away: the preview's files are not made yet.
    await db.execute("UPDATE variants SET state = 'pending' FROM images i "
                     "WHERE i.id = image_id AND i.token = $1", body["token"])
    page = await (await gallery_client.get(body["page_url"])).text()
    image = re.search(r'<meta property="og:image" content="([^"]*)"', page).group(1)
    kind = re.search(r'<meta property="og:image:type" content="([^"]*)"', page).group(1)
    assert image.endswith(".webp") and kind == "image/webp", (image, kind)


async def test_animation_past_the_work_budget_gets_still_posters(
        aiohttp_client, aiohttp_server, env, db, storage_dir):
    from services.gallery.app import create_app as create_gallery
    from services.resize.app import create_app as create_resize
    from services.upload.app import create_app as create_upload
    from shared.config import GalleryConfig, ResizeConfig, UploadConfig

    small_budget = {**env, "KITTEH_MAX_ANIMATION_WORK": "1000000"}  # 20 × 480×270 is 2.6 M
    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(small_budget)))
    upload = await aiohttp_client(create_upload(UploadConfig.from_env(
        {**small_budget, "KITTEH_RESIZE_URL": str(resize.make_url(""))})))
    gallery = await aiohttp_client(create_gallery(GalleryConfig.from_env(
        {**small_budget, "KITTEH_ACCEL_REDIRECT": "0"})))
    body = await (await upload.post("/api/images", data=file_form(
        animated("GIF", [50] * 20, 0), "long.gif", "image/gif"))).json()
    await wait_ready(db, body["token"])
    for variant in body["variants"].values():
        assert timing(stored(storage_dir, variant["url"]))[:2] == ("WEBP", 1)
    page = await (await gallery.get(body["page_url"])).text()
    assert "still pictures of the first frame" in page


# --- colour ----------------------------------------------------------------------------------


def delta_e(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5


def lab(img: Image.Image, profile: ImageCms.ImageCmsProfile) -> Image.Image:
    return ImageCms.profileToProfile(img.convert("RGB"), profile, ImageCms.createProfile("LAB"),
                                     outputMode="LAB")


async def test_wide_gamut_photo_looks_the_same_in_every_variant(upload_client, db,
                                                                storage_dir):
    """A photo whose numbers are Adobe RGB (with its ICC profile) must show the same colours
    in every variant once each file is read with its own profile (none: sRGB): ΔE (CIE76)
    under 2 on flat patches. Read as sRGB, unconverted Adobe RGB numbers are off by ΔE 5-20."""
    srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    wide = _adobe_rgb()
    patches = [(200, 40, 40), (40, 160, 60), (30, 60, 200), (230, 200, 60), (128, 128, 128)]
    srgb = Image.new("RGB", (1000, 200))
    for i, colour in enumerate(patches):
        srgb.paste(colour, (i * 200, 0, i * 200 + 200, 200))
    in_srgb_profile = ImageCms.profileToProfile(srgb, srgb_profile, wide, outputMode="RGB")
    out = io.BytesIO()
    in_srgb_profile.save(out, "JPEG", quality=95, icc_profile=wide.tobytes())
    body = await (await upload_client.post("/api/images", data=file_form(out.getvalue(),
                                                                         "srgb_profile.jpg"))).json()
    await wait_ready(db, body["token"])
    expected = lab(srgb, srgb_profile)
    for kind, variant in body["variants"].items():
        with Image.open(io.BytesIO(stored(storage_dir, variant["url"]))) as img:
            icc = img.info.get("icc_profile")
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)) if icc else srgb_profile
            seen = lab(img, profile)
            for i in range(len(patches)):
                # The middle of each patch, averaged: JPEG noise and Pillow's 8-bit Lab
                # rounding (±0.5 a channel) stay out of the comparison.
                want_lab = _mean_lab(expected, (i * 200 + 50, 50, i * 200 + 150, 150))
                w = img.width / 1000
                got_lab = _mean_lab(seen, (round((i * 200 + 50) * w), img.height // 4,
                                           round((i * 200 + 150) * w), img.height * 3 // 4))
                assert delta_e(want_lab, got_lab) < 2, (kind, patches[i], want_lab, got_lab)


def _mean_lab(img: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    """Mean L*a*b* of a region (Pillow's LAB: L in 0-255, a and b offset by 128)."""
    mean = ImageStat.Stat(img.crop(box)).mean
    return (mean[0] * 100 / 255, mean[1] - 128, mean[2] - 128)


ADOBE_RGB = Path("/usr/share/color/icc/colord/AdobeRGB1998.icc")


def _adobe_rgb() -> ImageCms.ImageCmsProfile:
    """Adobe RGB (1998), a wide-gamut profile from Debian's colord-data (installed with
    apt-get when missing)."""
    if not ADOBE_RGB.exists():
        from deploy.system import apt_install

        apt_install(["colord-data"])
    return ImageCms.ImageCmsProfile(str(ADOBE_RGB))


def test_transparent_avif_variants_are_jpeg_over_white(tmp_path):
    from services.resize.engine import PillowEngine
    from shared.variants import variant_specs

    img = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 200, 300))
    source = tmp_path / "sticker.avif"
    img.save(source, quality=90)
    for variant in PillowEngine().render(source, BY_NAME["AVIF"], variant_specs(400, 300)):
        with Image.open(io.BytesIO(variant.data)) as out:
            assert out.format == "JPEG"
            left, right = out.getpixel((2, 2)), out.getpixel((out.width - 3, 2))
            assert left[0] > 240 and left[1] < 20, variant.kind
            assert min(right) > 240, f"{variant.kind}: transparent is white, not {right}"


async def test_animation_tiles_stay_still_on_dense_screens(upload_client, gallery_client, db):
    """The tile's srcset offers the large variant to dense screens: an animation's is
    animated, so its tile offers only the tiny still poster."""
    body = await (await upload_client.post("/api/images", data=file_form(
        animated("GIF", [50] * 4, 0), "tile.gif", "image/gif"))).json()
    assert body["original"]["frames"] == 4
    await wait_ready(db, body["token"])
    home = await (await gallery_client.get("/")).text()
    tile = re.search(rf'<li class="tile" data-token="{body["token"]}".*?</li>', home, re.S)
    assert tile is not None
    assert "tiny.webp" in tile.group(0) and "large.webp" not in tile.group(0), tile.group(0)


def test_an_animation_s_tiny_still_is_made_alone(tmp_path):
    """Remaking only the tiny poster (its file was lost, the sweeper reset its row) renders no
    animated size at all (once a ZeroDivisionError: no frames' time to share out)."""
    from services.resize.engine import PillowEngine
    from shared.variants import variant_specs

    source = tmp_path / "cat.gif"
    source.write_bytes(animated("GIF", [50] * 4, 0))
    tiny = [s for s in variant_specs(480, 270) if s.kind == "tiny"]
    rendering = PillowEngine().render_all(source, BY_NAME["GIF"], tiny, thumbhash=True)
    assert [v.kind for v in rendering.variants] == ["tiny"]
    assert timing(rendering.variants[0].data)[:2] == ("WEBP", 1)
    assert rendering.thumbhash is not None and rendering.animated
