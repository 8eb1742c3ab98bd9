"""Who may upload and who sees what, through the gateway: upload keys, moderation, unlisted
and expiring images, the list switch, the ShareX file."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time

import aiohttp
import pytest

from tests.e2e.access_support import (
    bearer,
    create_key,
    fresh_jpeg,
    kitteh,
    stack_db,
    upload_form,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def keys(keys_stack):
    return {"alice": create_key(keys_stack, "alice"), "bob": create_key(keys_stack, "bob"),
            "mod": create_key(keys_stack, "mod", admin=True)}


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def image_count(stack) -> int:
    conn = await stack_db(stack)
    try:
        return await conn.fetchval("SELECT count(*) FROM images")
    finally:
        await conn.close()


def stored_files(stack) -> list:
    return [p for p in stack.storage.rglob("*") if p.is_file()]


async def post(http, stack, key=None, **fields):
    # A fresh connection each time: a refused upload is answered before its body is read,
    # and the connection is then closed; a pooled one could be reused as it closes.
    headers = {**(bearer(key) if key else {}), "Connection": "close"}
    async with http.post(f"{stack.url}/api/images", data=upload_form(**fields),
                         headers=headers) as response:
        return response.status, await response.json(), response.headers


# ---- keys mode -------------------------------------------------------------------------------

async def test_anonymous_or_wrong_key_gets_401_and_nothing_is_stored(http, keys_stack, keys):
    before = await image_count(keys_stack), stored_files(keys_stack)
    for key in (None, "not-a-key", keys["alice"] + "x"):
        status, body, headers = await post(http, keys_stack, key)
        assert status == 401, body
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert body["error"]["code"] == "unauthorized" and "key" in body["error"]["message"]
    assert (await image_count(keys_stack), stored_files(keys_stack)) == before
    assert not list((keys_stack.storage / "tmp").iterdir())


async def test_upload_with_a_key_is_201_and_records_the_key(http, keys_stack, keys):
    status, body, _ = await post(http, keys_stack, keys["alice"])
    assert status == 201, body
    conn = await stack_db(keys_stack)
    try:
        owner = await conn.fetchval(
            "SELECT k.name FROM images i JOIN upload_keys k ON k.id = i.key_id"
            " WHERE i.token = $1", body["token"])
    finally:
        await conn.close()
    assert owner == "alice"
    async with http.get(f"{keys_stack.url}/api/images/{body['token']}") as response:
        assert response.status == 200  # reading stays public


async def test_revoked_key_is_refused(http, keys_stack):
    key = create_key(keys_stack, "leaver")
    assert (await post(http, keys_stack, key))[0] == 201
    listed = kitteh(keys_stack, "keys", "list")
    assert re.search(r"^leaver\s+no\s", listed.stdout, re.M), listed.stdout
    assert key not in listed.stdout  # never shown again
    assert kitteh(keys_stack, "keys", "revoke", "leaver").returncode == 0
    status, body, _ = await post(http, keys_stack, key)
    assert status == 401 and "revoked" in body["error"]["message"]
    assert kitteh(keys_stack, "keys", "revoke", "leaver").returncode == 1


async def test_form_without_a_key_gets_a_401_page_that_explains(http, keys_stack, keys):
    async with http.get(f"{keys_stack.url}/") as response:
        home = await response.text()
    # The key field comes before the file, so it is checked before the file is stored.
    assert home.index('name="key"') < home.index('name="file"')
    assert 'id="grid"' not in home  # KITTEH_NEWEST=off
    before = await image_count(keys_stack)
    async with http.post(f"{keys_stack.url}/upload", data=upload_form(),
                         allow_redirects=False) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        page = await response.text()
    assert 'role="alert"' in page and "upload key" in page and 'action="/upload"' in page
    assert await image_count(keys_stack) == before
    form = upload_form(key=keys["bob"])
    async with http.post(f"{keys_stack.url}/upload", data=form,
                         allow_redirects=False) as response:
        assert response.status == 303, await response.text()


async def test_admin_deletes_any_image_and_a_key_deletes_its_own(http, keys_stack, keys):
    _, alices, _ = await post(http, keys_stack, keys["alice"])
    _, alices_other, _ = await post(http, keys_stack, keys["alice"])
    url = f"{keys_stack.url}/api/images"
    async with http.delete(f"{url}/{alices['token']}", headers=bearer(keys["bob"])) as response:
        assert response.status == 403  # another key's upload
    async with http.get(f"{keys_stack.url}/api/keys/me", headers=bearer(keys["mod"])) as r:
        assert await r.json() == {"name": "mod", "admin": True}
    async with http.get(f"{keys_stack.url}/api/keys/me", headers=bearer("nope")) as r:
        assert r.status == 401
    async with http.delete(f"{url}/{alices['token']}", headers=bearer(keys["mod"])) as response:
        assert response.status == 204
    async with http.delete(f"{url}/{alices_other['token']}",
                           headers=bearer(keys["alice"])) as response:
        assert response.status == 204
    for image in (alices, alices_other):
        async with http.get(f"{url}/{image['token']}") as response:
            assert response.status == 404
        async with http.get(f"{keys_stack.url}{image['original']['url']}") as response:
            assert response.status == 404
    # The delete token still works as before.
    _, bobs, _ = await post(http, keys_stack, keys["bob"])
    async with http.delete(f"{url}/{bobs['token']}",
                           headers=bearer(bobs["delete_token"])) as response:
        assert response.status == 204


async def test_list_api_is_404_when_newest_is_off(http, keys_stack):
    async with http.get(f"{keys_stack.url}/api/images") as response:
        assert response.status == 404
        assert "KITTEH_NEWEST=off" in (await response.json())["error"]["message"]


async def test_sharex_file_carries_the_key_and_its_urls_work(http, keys_stack, keys):
    async with http.get(f"{keys_stack.url}/api/sharex.sxcu",
                        headers=bearer(keys["alice"])) as response:
        assert response.status == 200
        assert "attachment" in response.headers["Content-Disposition"]
        config = json.loads(await response.text())
    assert config["DestinationType"] == "ImageUploader, FileUploader"
    assert config["RequestMethod"] == "POST" and config["Body"] == "MultipartFormData"
    assert config["RequestURL"] == f"{keys_stack.url}/api/images"
    assert config["Headers"] == {"Authorization": f"Bearer {keys['alice']}"}
    # Do what ShareX does: post the file, then fill the {json:...} placeholders.
    form = aiohttp.FormData()
    form.add_field(config["FileFormName"], io.BytesIO(fresh_jpeg()), filename="shot.jpg",
                   content_type="image/jpeg")
    async with http.post(config["RequestURL"], data=form, headers=config["Headers"]) as response:
        assert response.status == 201
        answer = await response.json()

    def fill(template: str) -> str:
        def value(match):
            node = answer
            for part in match.group(1).split("."):
                node = node[part]
            return str(node)
        return re.sub(r"\{json:([a-z_.]+)\}", value, template)

    page = fill(config["URL"])
    assert page == f"{keys_stack.url}{answer['page_url']}"
    async with http.get(page) as response:
        assert response.status == 200
    async with http.get(fill(config["ThumbnailURL"])) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
    deletion = fill(config["DeletionURL"])
    page_part, _, fragment = deletion.partition("#")
    assert page_part == page and fragment == f"delete={answer['delete_token']}"
    async with http.get(deletion) as response:  # a browser opens it: the image page
        assert response.status == 200 and "/js/image-" in await response.text()
    # The page's script sends the fragment's token as the delete token.
    async with http.delete(f"{keys_stack.url}/api/images/{answer['token']}",
                           headers=bearer(fragment.removeprefix("delete="))) as response:
        assert response.status == 204


async def test_guessing_keys_is_rate_limited(http, keys_stack):
    """Last of the keys-mode tests: it spends the address's burst for a few seconds."""
    statuses = []
    # One connection per attempt: a refused request's connection is closed by nginx.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        for _ in range(40):
            async with fresh.post(f"{keys_stack.url}/api/images", data=upload_form(),
                                  headers=bearer("guess")) as response:
                statuses.append(response.status)
    assert set(statuses) == {401, 429}, statuses
    assert statuses.count(429) >= 10


# ---- open mode (the session's stack) --------------------------------------------------------

async def test_open_mode_needs_no_key_and_ignores_a_wrong_one(http, stack):
    assert (await post(http, stack))[0] == 201
    assert (await post(http, stack, "whatever"))[0] == 201


async def test_unlisted_is_hidden_from_lists_and_reachable_by_link(http, stack):
    status, unlisted, _ = await post(http, stack, visibility="unlisted")
    assert status == 201 and unlisted["visibility"] == "unlisted"
    _, public, _ = await post(http, stack)
    async with http.get(f"{stack.url}/api/images?limit=100") as response:
        listed = [i["token"] for i in (await response.json())["images"]]
    assert public["token"] in listed and unlisted["token"] not in listed
    async with http.get(f"{stack.url}/") as response:
        home = await response.text()
    assert public["name"] in home and unlisted["name"] not in home
    for url in (unlisted["page_url"], f"/api/images/{unlisted['token']}",
                unlisted["original"]["url"], unlisted["variants"]["tiny"]["url"],
                unlisted["download_url"]):
        async with http.get(f"{stack.url}{url}") as response:
            assert response.status == 200, url


@pytest.mark.parametrize("fields, words", [
    ({"visibility": "secret"}, "'visibility'"),
    ({"expires_in": "59"}, "'expires_in'"),
    ({"expires_in": "31536001"}, "'expires_in'"),
    ({"expires_in": "soon"}, "'expires_in'"),
    ({"expires_in": "١٢٠"}, "'expires_in'"),  # digits, but not ASCII ones
])
async def test_bad_options_are_400_and_nothing_is_stored(http, stack, fields, words):
    before = await image_count(stack)
    status, body, _ = await post(http, stack, **fields)
    assert status == 400 and words in body["error"]["message"], body
    assert await image_count(stack) == before
    assert not list((stack.storage / "tmp").iterdir())


async def test_options_after_the_file_are_checked_too(http, stack):
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(fresh_jpeg()), filename="cat.jpg",
                   content_type="image/jpeg")
    form.add_field("expires_in", "7")
    before = await image_count(stack)
    async with http.post(f"{stack.url}/api/images", data=form) as response:
        assert response.status == 400
    assert await image_count(stack) == before
    assert not list((stack.storage / "tmp").iterdir())


async def test_expired_image_is_gone_everywhere_within_a_minute(http, stack):
    status, image, _ = await post(http, stack, expires_in="60")
    assert status == 201
    assert image["expires_at"] is not None
    urls = [image["page_url"], f"/api/images/{image['token']}", image["download_url"],
            image["original"]["url"], *(v["url"] for v in image["variants"].values())]
    for url in urls:
        async with http.get(f"{stack.url}{url}") as response:
            assert response.status == 200, url
    async with http.get(f"{stack.url}/api/images?limit=100") as response:
        assert image["token"] in [i["token"] for i in (await response.json())["images"]]
    conn = await stack_db(stack)
    try:
        await conn.execute("UPDATE images SET expires_at = now() - interval '1 second'"
                           " WHERE token = $1", image["token"])
        expired_at = time.monotonic()
        pending = set(urls)
        while pending and time.monotonic() - expired_at < 60:
            for url in list(pending):
                async with http.get(f"{stack.url}{url}") as response:
                    if response.status == 404:
                        pending.discard(url)
            await asyncio.sleep(0.5)
        assert not pending, f"still served {time.monotonic() - expired_at:.0f} s after expiry"
        async with http.get(f"{stack.url}/api/images?limit=100") as response:
            assert image["token"] not in [i["token"] for i in (await response.json())["images"]]
        for _ in range(50):  # the files go just before the row's delete commits
            if not await conn.fetchval("SELECT count(*) FROM images WHERE token = $1",
                                       image["token"]):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the expiry job did not remove the row")
    finally:
        await conn.close()
    prefix = image["original"]["url"].removeprefix("/i/").rsplit("/", 1)[0] + "/"
    assert await stack.files.names(prefix) == set(), "the expiry job removed the files"


async def test_expired_bytes_uploaded_again_make_a_new_image(http, stack):
    data = fresh_jpeg()
    status, first, _ = await post(http, stack, data=data, expires_in="60")
    assert status == 201
    conn = await stack_db(stack)
    try:
        await conn.execute("UPDATE images SET expires_at = now() - interval '1 second'"
                           " WHERE token = $1", first["token"])
    finally:
        await conn.close()
    status, second, _ = await post(http, stack, data=data)
    assert status == 201 and second["expires_at"] is None
    async with http.get(f"{stack.url}{second['original']['url']}") as response:
        assert response.status == 200
