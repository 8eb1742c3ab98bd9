"""HEIC, AVIF and animations through the gateway: every byte served for them (original,
download, variants) is free of their EXIF text and GPS position, with the right types."""

from __future__ import annotations

import io

import aiohttp
import pi_heif
import pytest
from PIL import Image

from tests.heif_files import avif_bytes, heic_bytes
from tests.support import file_form, photo
from tests.test_privacy import SECRETS

pytestmark = pytest.mark.e2e
pi_heif.register_heif_opener()
PLANTED = (*SECRETS, b"SecretCam", b"SERIAL12345", b"secret-xmp")


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def picture(size) -> Image.Image:
    with Image.open(photo("j07_wine.jpg")) as img:
        return img.convert("RGB").resize(size)


async def served(http, stack, url: str) -> tuple[bytes, str]:
    async with http.get(f"{stack.url}{url}") as response:
        assert response.status == 200, url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        return await response.read(), response.headers["Content-Type"]


@pytest.mark.parametrize(("make", "filename", "content_type"), [
    (lambda: heic_bytes(picture((4032, 3024)), quality=35), "IMG_0001.HEIC", "image/heic"),
    (lambda: avif_bytes(picture((1200, 800))), "photo.avif", "image/avif"),
])
async def test_heic_and_avif_serve_no_metadata_anywhere(http, stack, make, filename,
                                                        content_type):
    upload = make()
    assert b"SecretCam" in upload
    async with http.post(f"{stack.url}/api/images",
                         data=file_form(upload, filename, content_type)) as response:
        assert response.status == 201, await response.text()
        image = await response.json()
    original, served_type = await served(http, stack, image["original"]["url"])
    download, download_type = await served(http, stack, image["download_url"])
    assert served_type == download_type == content_type
    assert download == original
    assert not [s for s in PLANTED if s in original]
    with Image.open(io.BytesIO(original)) as img:
        assert img.size == (image["original"]["width"], image["original"]["height"])
        assert not img.getexif().get_ifd(0x8825)
    for kind, variant in image["variants"].items():
        data, variant_type = await served(http, stack, variant["url"])
        assert variant_type == "image/jpeg", kind
        assert not [s for s in PLANTED if s in data], kind
        with Image.open(io.BytesIO(data)) as img:
            assert img.size == (variant["width"], variant["height"])
            assert not img.getexif()
    async with http.delete(f"{stack.url}/api/images/{image['token']}",
                           headers={"Authorization": f"Bearer {image['delete_token']}"}) as gone:
        assert gone.status == 204
