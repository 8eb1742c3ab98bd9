"""Albums through the gateway: made from uploads by the API, by the form with several files and
by the share target; their page, JSON and Newest tile; delete with and without their pictures;
unlisted and expiring albums; keys mode."""

from __future__ import annotations

import asyncio
import io
import re
import time

import aiohttp
import pytest

from tests.e2e.access_support import bearer, create_key, fresh_jpeg, stack_db, upload_form
from tests.e2e.test_access import image_count

pytestmark = pytest.mark.e2e


class Paced:
    """Writes wait their turn at the gateway's per-address rate limit (other tests of the
    session share the stack and its budget): a 429 is retried a second later. A form is
    given as a function that makes it (a FormData is spent once sent)."""

    def __init__(self, session: aiohttp.ClientSession):
        self.session = session

    def get(self, url, **kwargs):
        return self.session.get(url, **kwargs)

    def post(self, url, **kwargs):
        return _Retried(self.session, "POST", url, kwargs)

    def delete(self, url, **kwargs):
        return _Retried(self.session, "DELETE", url, kwargs)


class _Retried:
    def __init__(self, session, method, url, kwargs):
        self.session, self.method, self.url, self.kwargs = session, method, url, kwargs
        self.response = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        make = self.kwargs.pop("data", None)
        for _ in range(90):
            data = make() if callable(make) else make
            self.response = await self.session.request(self.method, self.url, data=data,
                                                       **self.kwargs)
            if self.response.status != 429:
                break
            self.response.release()
            await asyncio.sleep(1)
        return self.response

    async def __aexit__(self, *exc) -> None:
        self.response.release()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield Paced(session)


async def post(http, stack, key=None, **fields):
    async with http.post(f"{stack.url}/api/images", data=lambda: upload_form(**fields),
                         headers=bearer(key) if key else {}) as response:
        return response.status, await response.json(), response.headers


async def three(http, stack, key=None, **fields) -> list[dict]:
    images = []
    for _ in range(3):
        status, body, _ = await post(http, stack, key, **fields)
        assert status == 201, body
        images.append(body)
    return images


async def make_album(http, stack, body, key=None):
    async with http.post(f"{stack.url}/api/albums", json=body,
                         headers=bearer(key) if key else {}) as response:
        return response.status, await response.json()


def entries(images, tokens=True):
    return [{"token": i["token"], **({"delete_token": i["delete_token"]} if tokens else {})}
            for i in images]


async def get(http, stack, path):
    async with http.get(f"{stack.url}{path}") as response:
        return response.status, await response.text()


async def test_an_album_of_three_has_a_page_json_and_one_tile(http, stack):
    images = await three(http, stack)
    status, album = await make_album(http, stack, {"images": entries(images),
                                                   "title": "Three  cats\n"})
    assert status == 201, album
    assert album["title"] == "Three cats" and album["delete_token"]
    assert album["page_url"] == f"/{album['name']}Album"
    assert [i["token"] for i in album["images"]] == [i["token"] for i in images]
    assert album["embed"]["markdown"] == (
        f"[![Three cats]({stack.url}{images[0]['variants']['monstrous']['url']})]"
        f"({stack.url}{album['page_url']})")
    status, read = await get(http, stack, f"/api/albums/{album['token']}")
    assert status == 200 and '"delete_token"' not in read
    # The page: every picture, in order, each linking to its own page, as <picture>.
    status, page = await get(http, stack, album["page_url"])
    assert status == 200 and "Three cats" in page
    positions = [page.index(f'href="{i["page_url"]}"') for i in images]
    assert positions == sorted(positions)
    assert page.count("<picture>") == 3 and "/original." not in page.split("<main")[1]
    # Names are case-insensitive, as for images.
    assert (await get(http, stack, album["page_url"].lower()))[0] == 200
    # The Newest grid: the album is one tile, its pictures are not tiles of their own.
    status, home = await get(http, stack, "/")
    assert f'href="{album["page_url"]}"' in home
    for image in images:
        assert f'href="{image["page_url"]}"' not in home
    # The list API still lists every public image.
    status, listed = await get(http, stack, "/api/images?limit=100")
    assert all(i["token"] in listed for i in images)


async def test_deleting_an_album_keeps_its_pictures_unless_asked(http, stack):
    images = await three(http, stack)
    _, album = await make_album(http, stack, {"images": entries(images)})
    url = f"{stack.url}/api/albums/{album['token']}"
    async with http.delete(url, headers=bearer(images[0]["delete_token"])) as response:
        assert response.status == 403  # an image's token is not the album's
    async with http.delete(url, headers=bearer(album["delete_token"])) as response:
        assert response.status == 204
    assert (await get(http, stack, album["page_url"]))[0] == 404
    assert (await get(http, stack, f"/api/albums/{album['token']}"))[0] == 404
    for image in images:
        assert (await get(http, stack, image["page_url"]))[0] == 200
    # Again, with its pictures: all gone, files too.
    _, album = await make_album(http, stack, {"images": entries(images)})
    async with http.delete(f"{stack.url}/api/albums/{album['token']}?images=1",
                           headers=bearer(album["delete_token"])) as response:
        assert response.status == 204
    for image in images:
        assert (await get(http, stack, f"/api/images/{image['token']}"))[0] == 404
        async with http.get(f"{stack.url}{image['original']['url']}") as response:
            assert response.status == 404


async def test_pictures_without_proof_are_linked_never_deleted(http, stack):
    mine, theirs = await three(http, stack), await three(http, stack)
    status, album = await make_album(http, stack, {
        "images": entries(mine) + entries(theirs[:1], tokens=False)})
    assert status == 201 and len(album["images"]) == 4
    async with http.delete(f"{stack.url}/api/albums/{album['token']}?images=1",
                           headers=bearer(album["delete_token"])) as response:
        assert response.status == 204
    assert (await get(http, stack, f"/api/images/{mine[0]['token']}"))[0] == 404
    assert (await get(http, stack, f"/api/images/{theirs[0]['token']}"))[0] == 200


@pytest.mark.parametrize("body, status, words", [
    ({"images": []}, 400, "'images'"),
    ({"images": "abc"}, 400, "'images'"),
    ({"images": [{"token": "nosuchkittyatall"}]}, 400, "No image has the token"),
    ({"images": [{"token": "Bad Token!"}]}, 400, "not an image token"),
    ({"title": 7}, 400, "'images'"),
    ({"images": None, "title": "x" * 201}, 400, "'images'"),
    ({"images": [{"token": "abc"}], "pad": "x" * 70_000}, 413, "larger than 64 KiB"),
])
async def test_bad_albums_are_400_and_nothing_is_made(http, stack, body, status, words):
    got, answer = await make_album(http, stack, body)
    assert got == status and words in answer["error"]["message"], answer
    conn = await stack_db(stack)
    try:
        assert await conn.fetchval("SELECT count(*) FROM albums WHERE title = 'x'") == 0
    finally:
        await conn.close()


async def test_a_wrong_delete_token_makes_nothing(http, stack):
    images = await three(http, stack)
    body = {"images": entries(images)}
    body["images"][1]["delete_token"] = "not-it"
    conn = await stack_db(stack)
    try:
        before = await conn.fetchval("SELECT count(*) FROM albums")
        status, answer = await make_album(http, stack, body)
        assert status == 403 and images[1]["token"] in answer["error"]["message"]
        assert await conn.fetchval("SELECT count(*) FROM albums") == before
        status, answer = await make_album(http, stack, {**body, "title": "x" * 201,
                                                        "images": entries(images)})
        assert status == 400 and "'title'" in answer["error"]["message"]
        async with http.post(f"{stack.url}/api/albums", data=b"{not json",
                             headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400
        assert await conn.fetchval("SELECT count(*) FROM albums") == before
    finally:
        await conn.close()


async def test_unlisted_and_expiring_albums(http, stack):
    images = await three(http, stack, visibility="unlisted")
    status, album = await make_album(http, stack, {"images": entries(images),
                                                   "visibility": "unlisted",
                                                   "expires_in": 60})
    assert status == 201 and album["visibility"] == "unlisted" and album["expires_at"]
    _, home = await get(http, stack, "/")
    assert album["page_url"] not in home
    assert (await get(http, stack, album["page_url"]))[0] == 200  # by link
    conn = await stack_db(stack)
    try:
        await conn.execute("UPDATE albums SET expires_at = now() - interval '1 second'"
                           " WHERE token = $1", album["token"])
        assert (await get(http, stack, f"/api/albums/{album['token']}"))[0] == 404  # at once
        deadline = time.monotonic() + 60
        while await conn.fetchval("SELECT count(*) FROM albums WHERE token = $1",
                                  album["token"]):
            assert time.monotonic() < deadline, "the expiry job did not remove the album"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    while (await get(http, stack, album["page_url"]))[0] != 404:  # the page's micro-cache
        assert time.monotonic() < deadline, "the album page is still served"
        await asyncio.sleep(0.5)
    assert (await get(http, stack, images[0]["page_url"]))[0] == 200  # pictures expire alone


def files_form(count: int, name: str = "file", **fields: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for field, value in fields.items():
        form.add_field(field, value)
    for number in range(count):
        form.add_field(name, io.BytesIO(fresh_jpeg()), filename=f"cat{number}.jpg",
                       content_type="image/jpeg")
    return form


async def album_from_location(http, stack, location: str) -> dict:
    match = re.fullmatch(r"/([A-Za-z]+)Album\?uploaded=1#delete=([A-Za-z0-9_-]+)", location)
    assert match, location
    status, body = await get(http, stack, f"/api/albums/{match[1].lower()}")
    assert status == 200
    import json
    return {**json.loads(body), "delete_token": match[2]}


async def test_the_form_with_several_files_makes_an_album(http, stack):
    async with http.post(f"{stack.url}/upload", data=lambda: files_form(3, title="From the form"),
                         allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        album = await album_from_location(http, stack, response.headers["Location"])
    assert album["title"] == "From the form" and len(album["images"]) == 3
    assert [i["original"]["filename"] for i in album["images"]] == [
        "cat0.jpg", "cat1.jpg", "cat2.jpg"]
    # One bad file among them: a 415, and nothing of the batch is kept.
    before = await image_count(stack)

    def with_a_bad_one():
        form = files_form(2)
        form.add_field("file", io.BytesIO(b"not a picture at all"), filename="x.jpg",
                       content_type="image/jpeg")
        return form

    async with http.post(f"{stack.url}/upload", data=with_a_bad_one,
                         allow_redirects=False) as response:
        assert response.status == 415
        assert 'role="alert"' in await response.text()
    assert await image_count(stack) == before
    assert not list((stack.storage / "tmp").iterdir())
    # One file is still one picture and its page.
    async with http.post(f"{stack.url}/upload", data=lambda: files_form(1),
                         allow_redirects=False) as response:
        assert response.status == 303
        assert re.fullmatch(r"/[A-Za-z]+Kitty\?uploaded=1", response.headers["Location"])


async def test_the_share_target_as_android_sends_it(http, stack):
    # Android posts the shared files as the manifest's share_target says: multipart, the
    # files under the name its params give ("file").
    async with http.get(f"{stack.url}/manifest.webmanifest") as response:
        target = (await response.json())["share_target"]
    assert target["method"] == "POST" and target["enctype"] == "multipart/form-data"
    name = target["params"]["files"][0]["name"]
    async with http.post(f"{stack.url}{target['action']}", data=lambda: files_form(2, name),
                         allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        album = await album_from_location(http, stack, response.headers["Location"])
    assert len(album["images"]) == 2
    async with http.delete(f"{stack.url}/api/albums/{album['token']}?images=1",
                           headers=bearer(album["delete_token"])) as response:
        assert response.status == 204


# ---- keys mode -------------------------------------------------------------------------------

async def test_keys_mode_the_key_stands_in_for_delete_tokens(http, keys_stack):
    alice, bob = create_key(keys_stack, "album-alice"), create_key(keys_stack, "album-bob")
    images = await three(http, keys_stack, alice)
    status, _ = await make_album(http, keys_stack, {"images": entries(images, False)})
    assert status == 401  # keys mode: a key, as for uploads
    status, album = await make_album(http, keys_stack, {"images": entries(images, False)},
                                     alice)
    assert status == 201, album
    bobs = await three(http, keys_stack, bob)
    status, mixed = await make_album(http, keys_stack, {
        "images": entries(images[:1], False) + entries(bobs[:1], False)}, bob)
    assert status == 201
    async with http.delete(f"{keys_stack.url}/api/albums/{mixed['token']}?images=1",
                           headers=bearer(bob)) as response:
        assert response.status == 204
    assert (await get(http, keys_stack, f"/api/images/{bobs[0]['token']}"))[0] == 404
    assert (await get(http, keys_stack, f"/api/images/{images[0]['token']}"))[0] == 200
    async with http.delete(f"{keys_stack.url}/api/albums/{album['token']}?images=1",
                           headers=bearer(bob)) as response:
        assert response.status == 403
    async with http.delete(f"{keys_stack.url}/api/albums/{album['token']}?images=1",
                           headers=bearer(alice)) as response:
        assert response.status == 204
    for image in images:
        assert (await get(http, keys_stack, f"/api/images/{image['token']}"))[0] == 404


async def test_keys_mode_a_share_without_a_key_waits_for_it(http, keys_stack):
    key = create_key(keys_stack, "album-sharer")
    before = await image_count(keys_stack)
    async with http.post(f"{keys_stack.url}/share", data=lambda: files_form(2),
                         allow_redirects=False) as response:
        assert response.status == 303
        location = response.headers["Location"]
    match = re.fullmatch(r"/\?share=([A-Za-z0-9_-]{24})&pictures=2#upload-title", location)
    assert match, location
    assert await image_count(keys_stack) == before  # waiting, not uploaded
    status, home = await get(http, keys_stack, location.split("#")[0])
    assert status == 200 and "2 shared pictures are waiting" in home
    assert f'value="{match[1]}"' in home

    def waiting(with_key):  # as the home page's form sends it: multipart
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("pending", match[1])
        form.add_field("key", with_key)
        return form

    # A wrong key: they keep waiting.
    async with http.post(f"{keys_stack.url}/share", data=lambda: waiting("wrong"),
                         allow_redirects=False) as response:
        assert response.status == 303 and "key=wrong" in response.headers["Location"]
    async with http.post(f"{keys_stack.url}/share", data=lambda: waiting(key),
                         allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        album = await album_from_location(http, keys_stack, response.headers["Location"])
    assert len(album["images"]) == 2
    assert await image_count(keys_stack) == before + 2
    async with http.post(f"{keys_stack.url}/share", data=lambda: waiting(key),
                         allow_redirects=False) as response:
        assert response.status == 400  # sent once
