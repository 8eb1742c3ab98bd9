"""HTTPS and a files origin, through the real gateway of a stack started by the runner with
a self-signed certificate (openssl), KITTEH_HTTP_PORT, KITTEH_PUBLIC_URL and KITTEH_FILES_URL.

The names are reached on 127.0.0.1 (the certificate also names that address) with the Host
header a browser would send for them.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import warnings

import aiohttp
import pytest
from yarl import URL

from tests.certs import FILES_HOST, PAGES_HOST, Certificate, origins_env, self_signed
from tests.stack import RunningStack, free_ports, stack_env
from tests.support import file_form, image_bytes, open_dir

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def certificate():
    directory = open_dir("kitteh-tls-")
    yield self_signed(directory, ["127.0.0.1", PAGES_HOST, FILES_HOST])
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_stack(certificate: Certificate):
    data_dir = open_dir("kitteh-https-") / "var"
    [http_port] = free_ports(1)
    running = RunningStack(data_dir, origins_env(stack_env(data_dir), certificate, http_port))
    running.start()
    yield running
    status = running.stop()
    assert status == 0, "".join(running.output[-40:])
    shutil.rmtree(data_dir.parent, ignore_errors=True)


@pytest.fixture
async def client(certificate):
    connector = aiohttp.TCPConnector(ssl=certificate.client_context())
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


def host(tls_stack, name: str) -> dict[str, str]:
    return {"Host": f"{name}:{tls_stack.env['KITTEH_PORT']}"}


async def uploaded(client, tls_stack) -> dict:
    form = file_form(image_bytes(size=(800, 600)), "https.jpg")
    async with client.post(f"{tls_stack.url}/api/images", data=form,
                           headers=host(tls_stack, PAGES_HOST)) as response:
        assert response.status in (200, 201), await response.text()
        return await response.json()


def local_path(tls_stack, absolute_url: str) -> str:
    """The path of a URL on FILES_URL or PUBLIC_URL, to request it on 127.0.0.1."""
    for origin in (tls_stack.env["KITTEH_FILES_URL"], tls_stack.env["KITTEH_PUBLIC_URL"]):
        if absolute_url.startswith(origin + "/"):
            return absolute_url.removeprefix(origin)
    raise AssertionError(f"{absolute_url} is on neither origin")


# -- HTTPS --------------------------------------------------------------------------------

async def test_the_gateway_serves_https_on_kitteh_port_with_the_certificate(client, tls_stack):
    assert tls_stack.url == f"https://127.0.0.1:{tls_stack.env['KITTEH_PORT']}"
    async with client.get(f"{tls_stack.url}/healthz") as response:
        assert response.status == 200
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    # A client that does not trust the certificate is refused: it is really TLS.
    async with aiohttp.ClientSession() as untrusting:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await untrusting.get(f"{tls_stack.url}/healthz")


def handshake(tls_stack, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", int(tls_stack.env["KITTEH_PORT"])), timeout=5)
    try:
        return context.wrap_socket(raw, server_hostname=PAGES_HOST)
    except BaseException:
        raw.close()
        raise


def test_http2_is_offered_by_alpn(certificate, tls_stack):
    context = certificate.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with handshake(tls_stack, context) as tls:
        assert tls.selected_alpn_protocol() == "h2"
    context = certificate.client_context()
    context.set_alpn_protocols(["http/1.1"])
    with handshake(tls_stack, context) as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"


def test_tls_1_2_and_1_3_are_accepted_and_1_1_is_refused(certificate, tls_stack):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = certificate.client_context()
        context.minimum_version = context.maximum_version = version
        with handshake(tls_stack, context) as tls:
            assert tls.version() == version.name.replace("_", ".")
    context = certificate.client_context()
    # OpenSSL 3 keeps TLS 1.1 behind security level 0; lower it so this client really
    # offers 1.1 and the refusal is the server's (its protocol_version alert).
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():  # deprecated in Python: exactly why it must be refused
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError) as refused:
        handshake(tls_stack, context).close()
    assert "ALERT_PROTOCOL_VERSION" in str(refused.value).upper() \
        or "UNSUPPORTED_PROTOCOL" in str(refused.value).upper(), refused.value


def test_http2_upload_and_page_with_curl(certificate, tls_stack, tmp_path):
    """A real HTTP/2 client (curl with nghttp2) uploads and reads a page."""
    curl = shutil.which("curl")
    assert curl, "curl is needed: apt-get install curl"
    picture = tmp_path / "h2.png"
    picture.write_bytes(image_bytes("PNG", size=(120, 90), color=(10, 200, 30)))
    port = tls_stack.env["KITTEH_PORT"]
    result = subprocess.run(
        [curl, "-sS", "--http2", "--cacert", str(certificate.cert),
         "--resolve", f"{PAGES_HOST}:{port}:127.0.0.1", "-o", "/dev/null",
         "-w", "%{http_version} %{http_code}", "-F", f"file=@{picture};type=image/png",
         f"https://{PAGES_HOST}:{port}/api/images"], capture_output=True, text=True, timeout=60)
    assert result.stdout in ("2 201", "2 200"), result.stdout + result.stderr


async def test_every_https_answer_carries_hsts(client, tls_stack):
    image = await uploaded(client, tls_stack)
    answers = [
        ("/", PAGES_HOST, 200),
        (local_path(tls_stack, image["page_url"]), PAGES_HOST, 200),
        (local_path(tls_stack, image["original"]["url"]), FILES_HOST, 200),
        (local_path(tls_stack, image["variants"]["tiny"]["url"]), FILES_HOST, 200),
        (local_path(tls_stack, image["download_url"]), FILES_HOST, 200),
        ("/NoSuchKittyKitty", PAGES_HOST, 404),
        ("/", FILES_HOST, 421),
    ]
    for path, name, status in answers:
        async with client.get(f"{tls_stack.url}{path}", headers=host(tls_stack, name)) as r:
            assert r.status == status, (path, name)
            assert r.headers.get("Strict-Transport-Security") == "max-age=31536000", path


async def test_the_http_port_redirects_to_the_same_path_and_query_on_https(tls_stack):
    http_port = tls_stack.env["KITTEH_HTTP_PORT"]
    https_port = tls_stack.env["KITTEH_PORT"]
    async with aiohttp.ClientSession() as plain:
        for method in ("GET", "POST", "HEAD"):
            async with plain.request(
                    method, URL(f"http://127.0.0.1:{http_port}/SomeKitty?size=large&x=%2F1",
                                encoded=True),  # sent byte for byte
                    headers={"Host": f"{PAGES_HOST}:{http_port}"},
                    allow_redirects=False) as response:
                assert response.status == 308, method
                assert response.headers["Location"] == \
                    f"https://{PAGES_HOST}:{https_port}/SomeKitty?size=large&x=%2F1"
                assert "Strict-Transport-Security" not in response.headers  # not over HTTP
        async with plain.get(f"http://127.0.0.1:{http_port}/i/ab/cd.jpg",
                             headers={"Host": FILES_HOST}, allow_redirects=False) as response:
            assert response.headers["Location"] == f"https://{FILES_HOST}:{https_port}/i/ab/cd.jpg"
        async with plain.get(f"http://127.0.0.1:{http_port}/healthz") as response:
            assert response.status == 200
        # The HTTPS port itself does not speak plain HTTP.
        async with plain.get(f"http://127.0.0.1:{https_port}/healthz") as response:
            assert response.status == 400


# -- the files origin ---------------------------------------------------------------------

async def test_file_urls_are_on_the_files_url_and_pages_on_the_public_url(client, tls_stack):
    files, pages = tls_stack.env["KITTEH_FILES_URL"], tls_stack.env["KITTEH_PUBLIC_URL"]
    image = await uploaded(client, tls_stack)
    assert image["page_url"] == f"{pages}/{image['name']}Kitty"
    assert image["download_url"] == f"{files}/img/{image['token']}"
    assert image["original"]["url"].startswith(f"{files}/i/")
    assert all(v["url"].startswith(f"{files}/i/") for v in image["variants"].values())
    async with client.get(f"{tls_stack.url}/api/images/{image['token']}",
                          headers=host(tls_stack, PAGES_HOST)) as response:
        assert (await response.json())["original"]["url"] == image["original"]["url"]
    async with client.get(f"{tls_stack.url}{local_path(tls_stack, image['page_url'])}",
                          headers=host(tls_stack, PAGES_HOST)) as response:
        html = await response.text()
        policy = response.headers["Content-Security-Policy"]
    assert f'src="{image["variants"]["monstrous"]["url"]}"' in html
    assert f'href="{image["download_url"]}"' in html
    assert "/i/" not in html.replace(f"{files}/i/", "")  # no file URL on the pages' origin
    assert f"img-src 'self' {files} " in policy


async def test_files_only_on_the_files_host_pages_only_on_the_pages_host(client, tls_stack):
    image = await uploaded(client, tls_stack)
    original = local_path(tls_stack, image["original"]["url"])
    download = local_path(tls_stack, image["download_url"])
    page = local_path(tls_stack, image["page_url"])
    expected = {
        (original, FILES_HOST): 200, (original, PAGES_HOST): 421,
        (download, FILES_HOST): 200, (download, PAGES_HOST): 421,
        (page, PAGES_HOST): 200, (page, FILES_HOST): 421,
        ("/", PAGES_HOST): 200, ("/", FILES_HOST): 421,
        (f"/api/images/{image['token']}", PAGES_HOST): 200,
        (f"/api/images/{image['token']}", FILES_HOST): 421,
        ("/api/limits", FILES_HOST): 421,
        ("/assets/css/app.css", FILES_HOST): 421,
        ("/_originals/x", FILES_HOST): 404,  # internal: never reachable from outside
        ("/healthz", PAGES_HOST): 200, ("/healthz", FILES_HOST): 200,
        ("/healthz", "elsewhere.example"): 200,
        (original, "elsewhere.example"): 421, (page, "elsewhere.example"): 421,
    }
    for (path, name), status in expected.items():
        async with client.get(f"{tls_stack.url}{path}", headers={"Host": name}) as response:
            assert response.status == status, (path, name, response.status)
    async with client.get(f"{tls_stack.url}/api/images/{image['token']}",
                          headers=host(tls_stack, FILES_HOST)) as response:
        error = (await response.json())["error"]  # the JSON error every 4xx has
        assert error["code"] == "misdirected"
        assert tls_stack.env["KITTEH_PUBLIC_URL"] in error["message"]
    async with client.get(f"{tls_stack.url}{download}",
                          headers=host(tls_stack, FILES_HOST)) as response:
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert await response.read() == (tls_stack.storage / original.removeprefix("/i/")
                                          ).read_bytes()
    # An upload on the files host is refused before it reaches the upload service.
    form = file_form(image_bytes(size=(64, 64), color=(1, 2, 3)), "nope.jpg")
    async with client.post(f"{tls_stack.url}/api/images", data=form,
                           headers=host(tls_stack, FILES_HOST)) as response:
        assert response.status == 421
