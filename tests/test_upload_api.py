"""The upload service through its app factory, against the real database and a real resize."""

from __future__ import annotations

import asyncio
import io

from aiohttp import web
from PIL import Image

from services.upload.app import create_app as create_upload
from services.upload.filenames import clean_filename, stored_filename
from shared.config import UploadConfig
from shared.formats import BY_PILLOW_NAME
from tests.hostile.structure import jpeg_scan_data
from tests.hostile.traffic import (
    file_part,
    file_part_head,
    multipart,
    once,
    raw_post,
    temp_files,
)
from tests.support import file_form, image_bytes, photo


async def wait_ready(db, token: str, seconds: float = 30, base_only: bool = True) -> list:
    """Every variant row of the image finished (ready, or dropped: a modern file larger than
    its base one); the base-format rows unless ``base_only`` is false."""
    for _ in range(int(seconds / 0.1)):
        rows = await db.fetch(
            "SELECT v.kind, v.format, v.width, v.height, v.state, v.bytes FROM variants v "
            "JOIN images i ON i.id = v.image_id WHERE i.token = $1 ORDER BY v.width", token)
        if rows and all(r["state"] in ("ready", "dropped") for r in rows):
            return [r for r in rows if r["format"] == "base" or not base_only]
        await asyncio.sleep(0.1)
    raise AssertionError(f"variants of {token} not ready: {rows}")


async def test_real_photo_gets_json_and_three_variants(upload_client, db, storage_dir):
    data = photo("j10_fallenleaf.jpg").read_bytes()
    response = await upload_client.post("/api/images", data=file_form(data, "leaf.jpg"))
    assert response.status == 201
    body = await response.json()
    assert body["name"].lower() == body["token"]
    assert body["page_url"] == f"/{body['name']}Kitty"
    assert body["download_url"] == f"/img/{body['token']}"
    assert body["original"] == {**body["original"], "width": 2560, "height": 1600,
                                "content_type": "image/jpeg", "filename": "leaf.jpg"}
    assert len(body["delete_token"]) >= 32
    rows = await wait_ready(db, body["token"])
    sizes = {r["kind"]: (r["width"], r["height"]) for r in rows}
    assert sizes == {"tiny": (90, 56), "large": (300, 188), "monstrous": (600, 375),
                     "wide": (1280, 800), "huge": (2048, 1280)}
    for kind, (width, height) in sizes.items():
        assert body["variants"][kind]["width"] == width
        path = storage_dir / body["variants"][kind]["url"].removeprefix("/i/")
        with Image.open(path) as img:
            assert (img.format, img.size) == ("JPEG", (width, height))
    stored = (storage_dir / body["original"]["url"].removeprefix("/i/")).read_bytes()
    # Lightroom's EXIF, XMP and IPTC (with a thumbnail) are gone, the compressed pixels are not
    assert body["original"]["bytes"] == len(stored) < len(data) - 40_000
    assert jpeg_scan_data(stored) == jpeg_scan_data(data)


async def test_same_bytes_twice_store_one_image(upload_client, db, storage_dir):
    data = image_bytes("PNG")
    first = await upload_client.post("/api/images", data=file_form(data, "a.png"))
    second = await upload_client.post("/api/images", data=file_form(data, "b.png"))
    assert (first.status, second.status) == (201, 200)
    one, two = await first.json(), await second.json()
    assert one["token"] == two["token"]
    assert "delete_token" not in two
    assert await db.fetchval("SELECT count(*) FROM images") == 1
    originals = list(storage_dir.glob("*/*/original.*"))
    assert len(originals) == 1


async def test_png_keeps_transparency(upload_client, db, storage_dir):
    data = photo("adwaita_image_alpha.png").read_bytes()
    response = await upload_client.post("/api/images", data=file_form(data, "icon.png"))
    body = await response.json()
    await wait_ready(db, body["token"])
    with Image.open(storage_dir / body["variants"]["large"]["url"].removeprefix("/i/")) as img:
        assert img.format == "PNG" and img.mode == "RGBA"
        assert img.size == (300, 300)
        assert img.getextrema()[3][0] == 0, "fully transparent pixels survive"


async def test_exif_rotated_jpeg_comes_out_upright(upload_client, db, storage_dir):
    # An 800x400 picture, left half red, stored with orientation 6 ("rotate 90 cw").
    img = Image.new("RGB", (800, 400), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 400, 400))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=95)
    response = await upload_client.post("/api/images", data=file_form(out.getvalue()))
    body = await response.json()
    assert (body["original"]["width"], body["original"]["height"]) == (400, 800)
    await wait_ready(db, body["token"])
    path = storage_dir / body["variants"]["large"]["url"].removeprefix("/i/")
    with Image.open(path) as variant:
        assert variant.size == (300, 600)  # portrait: upright
        top = variant.convert("RGB").getpixel((150, 20))
        bottom = variant.convert("RGB").getpixel((150, 580))
    assert top[0] > 200 and top[2] < 60, f"red half on top after rotation, got {top}"
    assert bottom[2] > 200 and bottom[0] < 60, f"blue half below, got {bottom}"


async def test_small_image_is_never_upscaled(upload_client, db):
    response = await upload_client.post("/api/images", data=file_form(image_bytes(size=(50, 20))))
    body = await response.json()
    rows = await wait_ready(db, body["token"])
    assert {(r["width"], r["height"]) for r in rows} == {(50, 20)}


async def test_delete_with_wrong_token_deletes_nothing(upload_client, db, storage_dir):
    response = await upload_client.post("/api/images", data=file_form(image_bytes()))
    body = await response.json()
    await wait_ready(db, body["token"])
    files_before = sorted(storage_dir.rglob("*.jpg"))
    answers = []
    for headers in ({"Authorization": "Bearer not-the-token"}, {}, {"Authorization": "Basic x"}):
        refused = await upload_client.delete(f"/api/images/{body['token']}", headers=headers)
        assert refused.status == 403
        answers.append(await refused.json())
        assert answers[-1]["error"]["code"] == "forbidden"
    unknown = await upload_client.delete("/api/images/nosuchkitty",
                                         headers={"Authorization": "Bearer not-the-token"})
    # a wrong token and a missing image look the same: a guess reveals nothing
    assert (unknown.status, await unknown.json()) == (403, answers[0])
    assert sorted(storage_dir.rglob("*.jpg")) == files_before
    assert await db.fetchval("SELECT count(*) FROM variants") == 9  # 3 sizes × 3 formats

    deleted = await upload_client.delete(
        f"/api/images/{body['token']}", headers={"Authorization": f"Bearer {body['delete_token']}"})
    assert deleted.status == 204
    assert await db.fetchval("SELECT count(*) FROM images") == 0
    assert await db.fetchval("SELECT count(*) FROM variants") == 0
    assert list(storage_dir.rglob("*.jpg")) == []


async def test_same_upload_twice_is_one_image_though_stored_bytes_differ(upload_client, db):
    data = photo("j10_fallenleaf.jpg").read_bytes()
    first = await upload_client.post("/api/images", data=file_form(data, "a.jpg"))
    second = await upload_client.post("/api/images", data=file_form(data, "b.jpg"))
    assert (first.status, second.status) == (201, 200)
    assert (await first.json())["token"] == (await second.json())["token"]
    assert await db.fetchval("SELECT count(*) FROM images") == 1


async def test_bodies_aiohttp_cannot_parse_are_400_not_500(upload_client, storage_dir):
    server = upload_client.server
    url = f"http://{server.host}:{server.port}"
    png = image_bytes("PNG")
    multipart_type = "multipart/form-data; boundary=KittehHostileBoundary"
    cases = {
        "NUL in a part header": ({"Content-Type": multipart_type},
                                 multipart(file_part(png, filename=b"a\0b.png"))),
        "part header of 100 KiB": ({"Content-Type": multipart_type},
                                   multipart(file_part(png, filename=b"a" * 100_000))),
        "5000 part headers": ({"Content-Type": multipart_type}, multipart(
            (b"\r\n".join(b"X-H%d: 1" % i for i in range(5000))
             + b'\r\nContent-Disposition: form-data; name="file"; filename="a.png"', png))),
        "gzip body that is not gzip": ({"Content-Type": multipart_type,
                                        "Content-Encoding": "gzip"},
                                       multipart(file_part(png))),
    }
    for name, (headers, body) in cases.items():
        response = await raw_post(url, "/api/images", {**headers,
                                  "Content-Length": str(len(body))}, once(body), "127.0.0.1")
        assert response.status == 400, (name, response.body)
        assert b'"bad_request"' in response.body, name
    assert temp_files(storage_dir / "tmp") == []


async def test_client_gone_mid_upload_leaves_no_temp_file(env, db, storage_dir, caplog):
    # Served as run_app serves it (no handler cancellation): the lost client shows up as a
    # ConnectionResetError while the body is read, which is the client's doing, not a 503.
    config = UploadConfig.from_env({**env, "KITTEH_RESIZE_URL": "http://127.0.0.1:9"})
    runner = web.AppRunner(create_upload(config), handler_cancellation=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/images HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
                     b"Content-Type: multipart/form-data; boundary=KittehHostileBoundary\r\n\r\n"
                     + file_part_head() + b"\xff" * 300_000)
        await writer.drain()
        for _ in range(100):  # until the upload service has started a temp file
            if temp_files(storage_dir / "tmp"):
                break
            await asyncio.sleep(0.02)
        assert temp_files(storage_dir / "tmp"), "the upload had begun"
        writer.close()
        for _ in range(100):
            if not temp_files(storage_dir / "tmp"):
                break
            await asyncio.sleep(0.05)
        assert temp_files(storage_dir / "tmp") == []
        assert "unavailable" not in caplog.text  # a lost client is not a lost database
    finally:
        await runner.cleanup()


def test_file_names_are_cleaned_and_get_the_real_extension():
    png, jpeg = BY_PILLOW_NAME["PNG"], BY_PILLOW_NAME["JPEG"]
    cases = [
        ("../../etc/passwd.png", png, "passwd.png"),
        ("C:\\Users\\me\\cat.JPG", jpeg, "cat.JPG"),
        ("cat%00.php.png", png, "cat.php.png"),
        ("cat\u202egnp.exe", png, "catgnp.exe.png"),
        ("a\u2028b.jpeg", jpeg, "ab.jpeg"),
        ("photo.jpg", png, "photo.png"),
        ("setup.exe", png, "setup.exe.png"),
        ("noextension", jpeg, "noextension.jpg"),
        ("...", png, "image.png"),
        (None, jpeg, "image.jpg"),
        ("x" * 300 + ".exe", png, "x" * 192 + ".exe.png"),  # 200 characters at most
    ]
    for raw, fmt, expected in cases:
        assert stored_filename(clean_filename(raw), fmt) == expected, raw
