"""The upload service through its app factory, against the real database and a real resize."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from tests.support import file_form, image_bytes, photo


async def wait_ready(db, token: str, seconds: float = 20) -> list:
    for _ in range(int(seconds / 0.1)):
        rows = await db.fetch(
            "SELECT v.kind, v.width, v.height, v.state, v.bytes FROM variants v "
            "JOIN images i ON i.id = v.image_id WHERE i.token = $1 ORDER BY v.width", token)
        if rows and all(r["state"] == "ready" for r in rows):
            return rows
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
                                "bytes": len(data), "content_type": "image/jpeg",
                                "filename": "leaf.jpg"}
    assert len(body["delete_token"]) >= 32
    rows = await wait_ready(db, body["token"])
    sizes = {r["kind"]: (r["width"], r["height"]) for r in rows}
    assert sizes == {"tiny": (90, 56), "large": (300, 188), "monstrous": (600, 375)}
    for kind, (width, height) in sizes.items():
        assert body["variants"][kind]["width"] == width
        path = storage_dir / body["variants"][kind]["url"].removeprefix("/i/")
        with Image.open(path) as img:
            assert (img.format, img.size) == ("JPEG", (width, height))
    assert (storage_dir / body["original"]["url"].removeprefix("/i/")).read_bytes() == data


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
    assert await db.fetchval("SELECT count(*) FROM variants") == 3

    deleted = await upload_client.delete(
        f"/api/images/{body['token']}", headers={"Authorization": f"Bearer {body['delete_token']}"})
    assert deleted.status == 204
    assert await db.fetchval("SELECT count(*) FROM images") == 0
    assert await db.fetchval("SELECT count(*) FROM variants") == 0
    assert list(storage_dir.rglob("*.jpg")) == []
