"""Request ids, logs and metrics as an operator meets them: through the stack the runner
started, the gateway in front."""

from __future__ import annotations

import asyncio
import json
import random
import re
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.support import file_form, image_bytes

pytestmark = pytest.mark.e2e

SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def fresh_image() -> bytes:
    """A picture no other test uploaded, so the upload is created (and resize is called)."""
    colour = tuple(random.randrange(256) for _ in range(3))
    return image_bytes(size=(random.randrange(300, 400), 200), color=colour)


def log_lines(path: Path) -> list[dict]:
    """The JSON objects of a service log (the runner's own lines in it are not JSON)."""
    objects = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            objects.append(parsed)
    return objects


async def lines_with(stack, service: str, request_id: str, seconds: float = 15) -> list[dict]:
    path = stack.data_dir / "logs" / f"{service}.log"
    for _ in range(int(seconds / 0.2)):
        found = [line for line in log_lines(path) if line.get("request_id") == request_id]
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no line of {path} has request_id {request_id!r}")


async def upload(http, stack, request_id: str | None) -> tuple[int, str, dict]:
    headers = {"X-Request-Id": request_id} if request_id is not None else {}
    form = file_form(fresh_image(), "trace.jpg")
    async with http.post(f"{stack.url}/api/images", data=form, headers=headers) as response:
        ids = response.headers.getall("X-Request-Id", [])
        assert len(ids) == 1, ids  # the gateway's, never doubled by the service's
        return response.status, ids[0], await response.json()


async def test_a_request_id_is_followed_from_the_gateway_to_resize(http, stack):
    request_id = f"e2e-{uuid.uuid4().hex}"
    status, answered, body = await upload(http, stack, request_id)
    assert status == 201, body
    assert answered == request_id
    upload_lines = await lines_with(stack, "upload", request_id)
    assert any(body["name"] in line["message"] for line in upload_lines)
    resize_lines = await lines_with(stack, "resize", request_id)
    assert any(line["message"].startswith("made ") and body["name"] in line["message"]
               for line in resize_lines)
    for line in upload_lines + resize_lines:
        assert {"time", "level", "logger", "message", "service"} <= set(line)
    # The gateway's access log (buffered: flushed every second) names it too.
    access_log = stack.data_dir / "nginx" / "gateway" / "access.log"
    for _ in range(50):
        hits = [line for line in access_log.read_text().splitlines()
                if line.endswith(f"request_id={request_id}")]
        if hits:
            break
        await asyncio.sleep(0.2)
    assert len(hits) == 1 and '"POST /api/images HTTP/1.1" 201' in hits[0], hits


@pytest.mark.parametrize("offered", [
    "x" * 65,  # too long
    "has space",
    'quote"and<angle>',
    "semi;colon",
    "../../etc/passwd",
    "",
])
async def test_an_unsafe_request_id_is_replaced(http, stack, offered):
    status, answered, body = await upload(http, stack, offered)
    assert status == 201, body
    assert answered != offered
    assert SAFE_ID.fullmatch(answered)
    assert re.fullmatch(r"[0-9a-f]{32}", answered)  # nginx's $request_id
    # The replacement is the id the services log with, the offered one appears nowhere.
    await lines_with(stack, "upload", answered)
    if offered:
        assert not any(line.get("request_id") == offered
                       for line in log_lines(stack.data_dir / "logs" / "upload.log"))


async def test_every_answer_carries_the_request_id(http, stack):
    _, _, body = await upload(http, stack, None)
    paths = ["/", "/healthz", "/readyz", "/metrics", "/NoSuchCatKitty", "/api/limits",
             body["original"]["url"], body["variants"]["tiny"]["url"], body["page_url"],
             "/i/00/nothing-here", f"/api/images/{body['token']}"]
    for path in paths:
        async with http.get(f"{stack.url}{path}", headers={"X-Request-Id": "probe-1"}) as r:
            assert r.headers.getall("X-Request-Id", []) == ["probe-1"], (path, r.status)
    # An answer nginx makes itself (413, before any service sees the body).
    async with http.get(f"{stack.url}/api/limits") as response:
        too_big = b"\xff" * ((await response.json())["max_upload_bytes"] + 1024)
    async with http.post(f"{stack.url}/api/images", data=file_form(too_big),
                         headers={"X-Request-Id": "probe-2"}) as r:
        assert r.status == 413
        assert r.headers.getall("X-Request-Id", []) == ["probe-2"]


async def test_metrics_are_on_the_services_ports_only(http, stack):
    async with http.get(f"{stack.url}/metrics") as response:
        assert response.status == 404
        assert "kitteh_" not in await response.text()
    for service in ("upload", "resize", "gallery"):
        port = stack.env[f"KITTEH_{service.upper()}_PORT"]
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200, service
            text = await response.text()
            assert "kitteh_http_request_duration_seconds_bucket" in text
            assert "kitteh_storage_free_bytes" in text


async def test_gateway_status_is_on_loopback_not_public(http, stack):
    port = stack.env["KITTEH_GATEWAY_STATUS_PORT"]
    async with http.get(f"http://127.0.0.1:{port}/stub_status") as response:
        assert response.status == 200
        assert (await response.text()).startswith("Active connections:")
    async with http.get(f"{stack.url}/stub_status") as response:
        assert response.status == 404
        assert "Active connections" not in await response.text()
