"""The gallery service through its app factory, against the real database."""

from __future__ import annotations

import re

from tests.support import file_form, image_bytes


async def seed(upload_client, count: int) -> list[dict]:
    bodies = []
    for i in range(count):
        data = image_bytes("JPEG", size=(640 + i, 400), color=(i * 9 % 256, 90, 160))
        response = await upload_client.post("/api/images", data=file_form(data, f"cat{i}.jpg"))
        assert response.status == 201
        bodies.append(await response.json())
    return bodies


async def test_list_is_newest_first_with_keyset_cursor(upload_client, gallery_client):
    uploaded = await seed(upload_client, 5)
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&before={cursor}" if cursor else "")
        response = await gallery_client.get(f"/api/images{query}")
        assert response.status == 200
        page = await response.json()
        seen += [i["token"] for i in page["images"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [b["token"] for b in reversed(uploaded)]


async def test_bad_list_parameters_are_400(gallery_client):
    for query in ("limit=0", "limit=101", "limit=abc", "before=-1", "before=x",
                  "limit=%C2%B2", "before=" + "1" * 5000):
        response = await gallery_client.get(f"/api/images?{query}")
        assert response.status == 400, query
        assert (await response.json())["error"]["code"] == "bad_request"


async def test_image_json_and_page(upload_client, gallery_client):
    [body] = await seed(upload_client, 1)
    response = await gallery_client.get(f"/api/images/{body['token'].upper()}")
    assert response.status == 200
    fetched = await response.json()
    assert "delete_token" not in fetched
    assert {k: fetched[k] for k in ("token", "name", "page_url", "original")} == \
        {k: body[k] for k in ("token", "name", "page_url", "original")}
    for path in (body["page_url"], f"/{body['name']}", f"/{body['token']}kitty"):
        page = await gallery_client.get(path)
        assert page.status == 200, path
    html = await page.text()
    assert body["variants"]["tiny"]["url"] in html
    assert re.search(r'srcset="[^"]*90w[^"]*300w', html)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_names_are_escaped_in_pages(upload_client, gallery_client):
    data = image_bytes("PNG", size=(10, 10))
    response = await upload_client.post(
        "/api/images", data=file_form(data, '<img src=x onerror="alert(1)">.png', "image/png"))
    body = await response.json()
    assert body["original"]["filename"] == '<img src=x onerror="alert(1)">.png'
    html = await (await gallery_client.get(body["page_url"])).text()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.png" in html


async def test_unknown_names_get_a_404_page_and_json_404(gallery_client):
    response = await gallery_client.get("/NoSuchCatKitty")
    assert response.status == 404
    assert "text/html" in response.headers["Content-Type"]
    assert 'href="/"' in await response.text()
    response = await gallery_client.get("/api/images/nosuchcat")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"


async def test_download_is_an_attachment_with_the_sniffed_type(upload_client, gallery_client):
    data = image_bytes("PNG", size=(12, 12))
    response = await upload_client.post("/api/images",
                                        data=file_form(data, "fake.jpg", "image/jpeg"))
    body = await response.json()
    download = await gallery_client.get(body["download_url"])
    assert download.status == 200
    assert download.headers["Content-Type"] == "image/png"  # sniffed, not the client's
    # the name keeps the client's stem, with the extension of what the file really is
    assert download.headers["Content-Disposition"].startswith('attachment; filename="fake.png"')
    assert await download.read() == data


async def test_limits_are_published(gallery_client):
    response = await gallery_client.get("/api/limits")
    limits = await response.json()
    assert limits["max_upload_bytes"] == 40 * 1024 * 1024
    assert limits["max_side"] == 10000 and limits["max_pixels"] == 40_000_000


async def test_health(gallery_client):
    assert (await gallery_client.get("/healthz")).status == 200
    assert (await gallery_client.get("/readyz")).status == 200
