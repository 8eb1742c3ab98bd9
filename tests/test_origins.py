"""HTTPS and files-origin settings checked at start-up, and the one URL builder.

The gateway's side (TLS, redirect, which host serves what) is in tests/e2e/test_https_origins.py.
"""

from __future__ import annotations

import re

import pytest

from deploy.gateway import templates, tls_from_env
from deploy.runner_config import RunnerConfig
from services.gallery.app import create_app as create_gallery
from shared.config import ConfigError, Env, GalleryConfig, UploadConfig
from shared.urls import RELATIVE, Urls
from tests.certs import self_signed
from tests.support import file_form, image_bytes

URL = "postgresql://kitteh@localhost/kitteh"
PAGES = "https://cats.example"
FILES = "https://images.example"


# -- the URL builder ----------------------------------------------------------------------

def test_urls_are_paths_without_origins_and_files_move_to_the_files_url():
    assert RELATIVE.page("ShinyCat") == "/ShinyCatKitty"
    assert RELATIVE.file("d2/abc/tiny.jpg") == "/i/d2/abc/tiny.jpg"
    assert RELATIVE.download("shinycat") == "/img/shinycat"
    pages_only = Urls(PAGES)
    assert pages_only.file("d2/abc/tiny.jpg") == f"{PAGES}/i/d2/abc/tiny.jpg"
    both = Urls(PAGES, FILES)
    assert both.page("ShinyCat") == f"{PAGES}/ShinyCatKitty"
    assert both.file("d2/abc/tiny.jpg") == f"{FILES}/i/d2/abc/tiny.jpg"
    assert both.download("shinycat") == f"{FILES}/img/shinycat"


# -- validation ---------------------------------------------------------------------------

@pytest.mark.parametrize(("env", "fragment"), [
    ({"KITTEH_FILES_URL": FILES}, "KITTEH_FILES_URL is set, so KITTEH_PUBLIC_URL is required"),
    ({"KITTEH_FILES_URL": "images.example", "KITTEH_PUBLIC_URL": PAGES},
     "KITTEH_FILES_URL='images.example' must be a URL"),
    ({"KITTEH_FILES_URL": "https://cats.example:8443", "KITTEH_PUBLIC_URL": PAGES},
     "must be on another host than KITTEH_PUBLIC_URL"),
    ({"KITTEH_FILES_URL": f"{FILES}/files", "KITTEH_PUBLIC_URL": PAGES}, "without a path"),
])
def test_a_files_url_needs_a_public_url_on_another_host(env, fragment):
    for config in (UploadConfig, GalleryConfig):
        with pytest.raises(ConfigError, match=fragment):
            config.from_env({"DATABASE_URL": URL, **env})


def test_files_and_public_url_together_are_accepted():
    config = GalleryConfig.from_env({"DATABASE_URL": URL, "KITTEH_FILES_URL": FILES + "/",
                                     "KITTEH_PUBLIC_URL": PAGES})
    assert (config.files_url, config.public_url) == (FILES, PAGES)
    assert UploadConfig.from_env({"DATABASE_URL": URL}).files_url == ""


@pytest.fixture(scope="module")
def pem(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("tls"), ["cats.example"])


def test_tls_needs_both_files_and_the_http_port_needs_tls(pem, tmp_path):
    assert tls_from_env(Env({})) is None
    with pytest.raises(ConfigError, match="KITTEH_TLS_KEY is required when KITTEH_TLS_CERT"):
        tls_from_env(Env({"KITTEH_TLS_CERT": str(pem.cert)}))
    with pytest.raises(ConfigError, match="KITTEH_TLS_CERT is required when KITTEH_TLS_KEY"):
        tls_from_env(Env({"KITTEH_TLS_KEY": str(pem.key)}))
    with pytest.raises(ConfigError, match="KITTEH_HTTP_PORT is set but HTTPS is not"):
        tls_from_env(Env({"KITTEH_HTTP_PORT": "8080"}))
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=re.escape(f"KITTEH_TLS_CERT='{missing}': no such file")):
        tls_from_env(Env({"KITTEH_TLS_CERT": str(missing), "KITTEH_TLS_KEY": str(pem.key)}))
    with pytest.raises(ConfigError, match=r"KITTEH_TLS_KEY=.* is not a PEM file"):
        tls_from_env(Env({"KITTEH_TLS_CERT": str(pem.cert), "KITTEH_TLS_KEY": str(pem.cert)}))
    with pytest.raises(ConfigError, match=r"KITTEH_TLS_CERT=.* cannot be read"):
        tls_from_env(Env({"KITTEH_TLS_CERT": str(tmp_path), "KITTEH_TLS_KEY": str(pem.key)}))
    with pytest.raises(ConfigError, match="KITTEH_HTTP_PORT='x' is not a whole number"):
        tls_from_env(Env({"KITTEH_TLS_CERT": str(pem.cert), "KITTEH_TLS_KEY": str(pem.key),
                          "KITTEH_HTTP_PORT": "x"}))
    tls = tls_from_env(Env({"KITTEH_TLS_CERT": str(pem.cert), "KITTEH_TLS_KEY": str(pem.key),
                            "KITTEH_HTTP_PORT": "8000"}))
    assert (tls.cert, tls.key, tls.http_port) == (pem.cert, pem.key, 8000)
    assert templates(tls) == ["gateway", "gateway-tls", "gateway-redirect"]
    assert templates(None) == ["gateway"]


def test_the_runner_checks_tls_at_start_and_prints_an_https_url(pem, tmp_path):
    env = {"KITTEH_DATA_DIR": str(tmp_path), "KITTEH_TLS_CERT": str(pem.cert),
           "KITTEH_TLS_KEY": str(pem.key), "KITTEH_PORT": "8443", "KITTEH_HTTP_PORT": "8000"}
    config = RunnerConfig.from_env(env)
    assert config.url == "https://127.0.0.1:8443/"
    assert ("gateway-http", 8000) in config.all_ports()
    assert RunnerConfig.from_env({"KITTEH_DATA_DIR": str(tmp_path)}).url.startswith("http://")
    with pytest.raises(ConfigError, match="two parts would share a port"):
        RunnerConfig.from_env({**env, "KITTEH_HTTP_PORT": "8443"})
    with pytest.raises(ConfigError, match="KITTEH_PUBLIC_URL is required"):
        RunnerConfig.from_env({**env, "KITTEH_FILES_URL": FILES})


# -- pages and JSON with a files URL ------------------------------------------------------

@pytest.fixture
async def files_gallery(aiohttp_client, env, db):
    config = GalleryConfig.from_env({**env, "KITTEH_ACCEL_REDIRECT": "0",
                                     "KITTEH_PUBLIC_URL": PAGES, "KITTEH_FILES_URL": FILES})
    return await aiohttp_client(create_gallery(config))


async def test_with_a_files_url_every_file_url_is_on_it(upload_client, files_gallery):
    response = await upload_client.post("/api/images", data=file_form(
        image_bytes(size=(700, 500)), "origin.jpg"))
    token = (await response.json())["token"]
    body = await (await files_gallery.get(f"/api/images/{token}")).json()
    assert body["page_url"].startswith(f"{PAGES}/")
    assert body["download_url"] == f"{FILES}/img/{token}"
    file_urls = [body["original"]["url"], *(v["url"] for v in body["variants"].values())]
    assert all(url.startswith(f"{FILES}/i/") for url in file_urls), file_urls
    listed = await (await files_gallery.get("/api/images")).json()
    assert listed["images"][0]["original"]["url"] == body["original"]["url"]
    for path in (body["page_url"].removeprefix(PAGES), "/"):
        page = await files_gallery.get(path)
        html = await page.text()
        assert f"{FILES}/i/" in html and f"{PAGES}/i/" not in html and '"/i/' not in html
        assert " /i/" not in html  # srcset entries too
        assert f"img-src 'self' {FILES} data: blob:" in page.headers["Content-Security-Policy"]
    page_html = await (await files_gallery.get(body["page_url"].removeprefix(PAGES))).text()
    assert f'href="{FILES}/img/{token}"' in page_html
