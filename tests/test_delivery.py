"""Variants as (size, format) pairs: display widths, AVIF and WebP made after the upload has
answered, dropped when larger than their fallback, the backfill of older images, ThumbHash."""

from __future__ import annotations

import asyncio
import base64
import io
from html.parser import HTMLParser

import asyncpg
import pytest
import thash
from PIL import Image

from services.gallery.app import create_app as create_gallery
from services.resize import handlers as resize_handlers
from services.resize.app import create_app as create_resize
from services.upload.app import create_app as create_upload
from shared.config import GalleryConfig, ResizeConfig, UploadConfig
from tests.support import file_form, image_bytes, photo
from tests.test_upload_api import wait_ready


@pytest.fixture
async def clients(aiohttp_client, aiohttp_server, env, db):
    """Upload, resize (on a real socket, as upload calls it) and gallery on one database."""
    resize = await aiohttp_server(create_resize(ResizeConfig.from_env(env)))
    upload = UploadConfig.from_env({**env, "KITTEH_RESIZE_URL": str(resize.make_url(""))})
    gallery = GalleryConfig.from_env({**env, "KITTEH_ACCEL_REDIRECT": "0"})
    return (await aiohttp_client(create_upload(upload)), await aiohttp_client(resize),
            await aiohttp_client(create_gallery(gallery)))


async def upload_photo(upload, name="j10_fallenleaf.jpg") -> dict:
    response = await upload.post("/api/images", data=file_form(photo(name).read_bytes()))
    assert response.status == 201
    return await response.json()


async def test_every_size_gets_avif_and_webp_after_the_answer(clients, db, storage_dir):
    upload, _, gallery = clients
    body = await upload_photo(upload)
    rows = await wait_ready(db, body["token"], base_only=False)
    pairs = {(r["kind"], r["format"]): r for r in rows}
    kinds = ("tiny", "large", "monstrous", "wide", "huge")
    assert set(pairs) == {(k, f) for k in kinds for f in ("base", "avif", "webp")}
    image = await (await gallery.get(f"/api/images/{body['token']}")).json()
    assert image["variants"]["huge"]["width"] == 2048 < image["original"]["width"]
    for kind in kinds:
        variant = image["variants"][kind]
        formats = variant["formats"]
        assert formats["jpeg"]["url"] == variant["url"]
        for name, pillow_name in (("avif", "AVIF"), ("webp", "WEBP")):
            row = pairs[(kind, name)]
            path = storage_dir / f"{variant['url'].removeprefix('/i/').rsplit('.', 1)[0]}.{name}"
            if row["state"] == "dropped":  # larger than the JPEG: no file, not listed
                assert name not in formats and not path.exists()
                assert row["bytes"] >= pairs[(kind, "base")]["bytes"]
                continue
            assert formats[name]["bytes"] == path.stat().st_size < formats["jpeg"]["bytes"]
            assert formats[name]["content_type"] == f"image/{name}"
            with Image.open(path) as img:
                assert (img.format, img.size) == (pillow_name, (variant["width"],
                                                                variant["height"]))
                # The photo's Lightroom EXIF and XMP are nowhere, nor an orientation.
                assert not {"exif", "xmp", "XML:com.adobe.xmp"} & set(img.info)
            assert b"Exif" not in path.read_bytes() and b"<x:xmpmeta" not in path.read_bytes()
    # A photo this size: AVIF beats JPEG at every width.
    assert all("avif" in image["variants"][k]["formats"] for k in kinds)
    placeholder = base64.b64decode(image["thumbhash"])
    assert 5 < len(placeholder) <= 30
    w, h, _ = thash.thumb_hash_to_rgba(placeholder)
    assert abs(w / h - 2560 / 1600) < 0.2  # the ThumbHash keeps the aspect ratio


async def test_narrow_image_has_no_display_widths(clients, db):
    upload, _, _ = clients
    response = await upload.post("/api/images", data=file_form(image_bytes(size=(700, 400))))
    body = await response.json()
    rows = await wait_ready(db, body["token"])
    assert {r["kind"]: r["width"] for r in rows} == {"tiny": 90, "large": 300,
                                                     "monstrous": 600, "wide": 700}


async def test_modern_file_larger_than_its_fallback_is_dropped_for_good(clients, db,
                                                                        storage_dir):
    upload, resize, gallery = clients
    # A flat 50 × 20 JPEG: the AVIF container alone costs more than the whole JPEG.
    response = await upload.post("/api/images", data=file_form(image_bytes(size=(50, 20))))
    body = await response.json()
    rows = await wait_ready(db, body["token"], base_only=False)
    dropped = {(r["kind"], r["format"]) for r in rows if r["state"] == "dropped"}
    assert ("tiny", "avif") in dropped
    url = body["variants"]["tiny"]["url"].replace(".jpg", ".avif")
    assert not (storage_dir / url.removeprefix("/i/")).exists()
    # Asked for anyway (the URL is never published): 404, and nothing is made again.
    assert (await resize.get(url)).status == 404
    renders = await db.fetchval(
        "SELECT renders FROM variants v JOIN images i ON i.id = v.image_id "
        "WHERE i.token = $1 AND kind = 'tiny' AND format = 'avif'", body["token"])
    await asyncio.sleep(1.5)  # a reconciler pass
    assert await db.fetchval(
        "SELECT renders FROM variants v JOIN images i ON i.id = v.image_id "
        "WHERE i.token = $1 AND kind = 'tiny' AND format = 'avif'", body["token"]) == renders
    image = await (await gallery.get(f"/api/images/{body['token']}")).json()
    assert "avif" not in image["variants"]["tiny"]["formats"]


async def test_missing_avif_is_made_on_demand(clients, db, storage_dir):
    upload, resize, _ = clients
    body = await upload_photo(upload, "j04_dragonfly.jpg")
    await wait_ready(db, body["token"], base_only=False)
    url = body["variants"]["wide"]["url"].replace(".jpg", ".avif")
    path = storage_dir / url.removeprefix("/i/")
    path.unlink()
    response = await resize.get(url)
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/avif"
    with Image.open(io.BytesIO(await response.read())) as img:
        assert img.format == "AVIF" and img.width == body["variants"]["wide"]["width"]
    assert path.exists()
    # A pair this image does not have is no file at all.
    assert (await resize.get(url.replace("wide.avif", "huge.gif"))).status == 404


async def test_a_race_lost_while_making_a_file_on_demand_is_503_never_500(clients, db,
                                                                          storage_dir,
                                                                          monkeypatch):
    """Two resize replicas, the reconciler and page views update the same variant rows: under
    load Postgres may pick one statement as a deadlock victim (or something unforeseen goes
    wrong mid-way). The on-demand answer is then 503, on which the gateway shows the
    original, and the eager call's is 503 too: never a 500."""
    upload, resize, _ = clients
    body = await upload_photo(upload, "p01_chelsea.png")
    await wait_ready(db, body["token"], base_only=False)
    url = body["variants"]["monstrous"]["url"]
    assert url.endswith("/monstrous.png")
    path = storage_dir / url.removeprefix("/i/")
    path.unlink()

    async def deadlocked(*args, **kwargs):
        raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    async def unforeseen(*args, **kwargs):
        raise ValueError("list.remove(x): x not in list")

    for failure in (deadlocked, unforeseen):
        monkeypatch.setattr(resize_handlers, "claim", failure)
        response = await resize.get(url)
        assert response.status == 503, (failure.__name__, await response.text())
        assert response.headers["Retry-After"]
        assert not path.exists()
    monkeypatch.setattr(resize_handlers, "claim", deadlocked)
    response = await resize.post(f"/variants/{body['token']}")
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "busy"

    monkeypatch.undo()
    response = await resize.get(url)
    assert response.status == 200
    assert response.headers["Content-Type"] == "image/png"
    assert path.exists()


async def test_images_uploaded_before_are_backfilled_by_the_reconciler(clients, db,
                                                                         storage_dir):
    upload, _, gallery = clients
    body = await upload_photo(upload, "j07_wine.jpg")
    await wait_ready(db, body["token"], base_only=False)
    # Make it an image of the old plan: three JPEG variants, no placeholder, no other files.
    image_id = await db.fetchval("SELECT id FROM images WHERE token = $1", body["token"])
    await db.execute("DELETE FROM variants WHERE image_id = $1 AND (format <> 'base' "
                     "OR kind NOT IN ('tiny', 'large', 'monstrous'))", image_id)
    await db.execute("UPDATE images SET variant_plan = 1, thumbhash = NULL WHERE id = $1",
                     image_id)
    directory = storage_dir / body["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0]
    for path in directory.iterdir():
        if path.stem in ("wide", "huge") or path.suffix in (".avif", ".webp"):
            path.unlink()
    old = await (await gallery.get(f"/api/images/{body['token']}")).json()
    assert set(old["variants"]) == {"tiny", "large", "monstrous"} and old["thumbhash"] is None
    assert all(set(v["formats"]) == {"jpeg"} for v in old["variants"].values())

    for _ in range(100):  # the reconciler's next pass (every second here) adds the rows
        if await db.fetchval("SELECT variant_plan FROM images WHERE id = $1", image_id) == 2:
            break
        await asyncio.sleep(0.1)
    rows = await wait_ready(db, body["token"], base_only=False)  # ... and makes them
    assert len(rows) == 15
    new = await (await gallery.get(f"/api/images/{body['token']}")).json()
    assert set(new["variants"]) == {"tiny", "large", "monstrous", "wide", "huge"}
    assert new["thumbhash"] and "avif" in new["variants"]["huge"]["formats"]
    assert (directory / "huge.avif").exists() and (directory / "wide.jpg").exists()


class Tags(HTMLParser):
    """Start tags of a page, in order, with their attributes; not those inside <template>
    (inert markup that scripts fill in)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.in_template = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.in_template += tag == "template"
        if not self.in_template:
            self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag):
        self.in_template -= tag == "template"

    def all(self, name: str) -> list[dict[str, str]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def srcset_urls(srcset: str) -> list[str]:
    return [entry.strip().split(" ")[0] for entry in srcset.split(",")]


async def test_image_page_offers_avif_webp_and_base_widths_never_the_original(clients, db):
    upload, _, gallery = clients
    body = await upload_photo(upload)
    await wait_ready(db, body["token"], base_only=False)
    tags = Tags(await (await gallery.get(body["page_url"])).text())
    sources = tags.all("source")
    assert [s["type"] for s in sources] == ["image/avif", "image/webp"]
    picture = next(i for i in tags.all("img") if i.get("id") == "picture")
    widths = [int(e.strip().split(" ")[1][:-1]) for e in picture["srcset"].split(",")]
    assert widths == [90, 300, 600, 1280, 2048]
    assert all(u.endswith(".jpg") for u in srcset_urls(picture["srcset"]))
    assert srcset_urls(sources[0]["srcset"])[-1].endswith("/huge.avif")
    for srcset in [picture["srcset"], *(s["srcset"] for s in sources)]:
        assert body["original"]["url"] not in srcset_urls(srcset)
    assert sources[0]["sizes"] == picture["sizes"]
    # Every img has its size, so nothing moves when it loads; the placeholder is a data URL.
    assert all(i.get("width") and i.get("height") for i in tags.all("img"))
    placeholder = next(i for i in tags.all("img") if i.get("class") == "placeholder")
    assert placeholder["src"].startswith("data:image/png;base64,")

    home = Tags(await (await gallery.get("/")).text())
    assert all(i.get("width") and i.get("height") for i in home.all("img"))
    tile_sources = home.all("source")
    assert tile_sources and all(s["sizes"] == "90px" for s in tile_sources)
    assert all("/huge." not in s["srcset"] for s in tile_sources)


async def test_share_urls_are_absolute_from_the_forwarded_host(clients, db):
    upload, _, gallery = clients
    body = await upload_photo(upload, "p01_chelsea.png")
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "kitteh.example:8443"}
    tags = Tags(await (await gallery.get(body["page_url"], headers=headers)).text())
    meta = {m.get("property") or m.get("name"): m.get("content") for m in tags.all("meta")}
    origin = "https://kitteh.example:8443"
    assert meta["og:url"] == origin + body["page_url"]
    assert meta["og:image"] == origin + body["variants"]["monstrous"]["url"]
    assert meta["twitter:image"] == meta["og:image"]
    inputs = {i["id"]: i["value"] for i in tags.all("input") if i.get("readonly") is not None}
    # The direct link is a variant, never the original (issue 20); the copy-as codes are the
    # JSON's `embed`, made for the same host.
    read = await (await gallery.get(f"/api/images/{body['token']}", headers=headers)).json()
    assert inputs == {"page-link": origin + body["page_url"],
                      "image-link": origin + body["variants"]["monstrous"]["url"],
                      "code-markdown": read["embed"]["markdown"],
                      "code-bbcode": read["embed"]["bbcode"],
                      "code-html": read["embed"]["html"]}
    assert read["embed"]["markdown"] == (f"[![{body['name']}]({inputs['image-link']})]"
                                         f"({inputs['page-link']})")
    # The page's own image URLs stay relative: same origin, whatever the host.
    assert next(i for i in tags.all("img") if i.get("id") == "picture")["src"].startswith("/i/")

    # No forwarded headers (straight to the service): the Host header and the scheme used.
    plain = Tags(await (await gallery.get(body["page_url"])).text())
    og = next(m["content"] for m in plain.all("meta") if m.get("property") == "og:url")
    assert og == f"http://{gallery.host}:{gallery.port}{body['page_url']}"

    # A host that is no host name: no absolute URL made of it, no preview tags.
    bad = await gallery.get(body["page_url"], headers={"X-Forwarded-Host": "evil/x?<b>"})
    assert bad.status == 200
    assert "og:image" not in await bad.text() and "evil" not in await bad.text()


async def test_share_urls_use_kitteh_public_url_when_set(aiohttp_client, env, db, clients):
    upload, _, _ = clients
    body = await upload_photo(upload, "p01_chelsea.png")
    config = GalleryConfig.from_env({**env, "KITTEH_ACCEL_REDIRECT": "0",
                                     "KITTEH_PUBLIC_URL": "https://cats.example"})
    gallery = await aiohttp_client(create_gallery(config))
    html = await (await gallery.get(f"/{body['name']}Kitty",
                                    headers={"X-Forwarded-Host": "other.example"})).text()
    meta = {m.get("property"): m.get("content") for m in Tags(html).all("meta")}
    assert meta["og:image"].startswith("https://cats.example/i/")
    assert "other.example" not in html
