"""Helpers for the browser tests: unique copies of real photos, the API seen from outside,
and what the pages must never do (console errors, CSP violations, requests elsewhere)."""

from __future__ import annotations

import io
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from playwright.sync_api import (
    APIRequestContext,
    BrowserContext,
    ConsoleMessage,
    Request,
    Response,
)

from tests.support import photo

SEED_PHOTOS = ("j03_seeding.jpg", "j04_dragonfly.jpg", "j07_wine.jpg", "j10_fallenleaf.jpg",
               "p01_chelsea.png", "p03_coffee.png")


def unique_copy(source: Path, directory: Path, name: str | None = None) -> Path:
    """The photo's own bytes plus a unique comment, so uploads never dedupe across tests
    that share one stack. Pixels and format stay exactly the photo's."""
    data = source.read_bytes()
    marker = f"kitteh-test {uuid.uuid4().hex}".encode()
    if data[:2] == b"\xff\xd8":  # JPEG: a COM segment right after SOI
        data = data[:2] + b"\xff\xfe" + struct.pack(">H", len(marker) + 2) + marker + data[2:]
    elif data[:8] == b"\x89PNG\r\n\x1a\n":  # PNG: a tEXt chunk right after IHDR
        text = b"Comment\x00" + marker
        chunk = struct.pack(">I", len(text)) + b"tEXt" + text
        chunk += struct.pack(">I", zlib.crc32(b"tEXt" + text))
        ihdr_end = 8 + 4 + 4 + 13 + 4
        data = data[:ihdr_end] + chunk + data[ihdr_end:]
    else:
        raise ValueError(f"not a JPEG or PNG: {source}")
    target = directory / (name or source.name)
    target.write_bytes(data)
    return target


def photo_crop(index: int, longest: int = 1200) -> bytes:
    """A distinct JPEG cut from one of the real photos: varied, pleasant grid tiles."""
    name = SEED_PHOTOS[index % len(SEED_PHOTOS)]
    round_ = index // len(SEED_PHOTOS)
    with Image.open(photo(name)) as original:
        img = original.convert("RGB")
    width, height = img.size
    scale = 0.9 - 0.12 * (round_ % 5)
    crop_w, crop_h = int(width * scale), int(height * scale)
    left = (width - crop_w) * ((round_ * 37) % 100) // 100
    top = (height - crop_h) * ((round_ * 61) % 100) // 100
    img = img.crop((left, top, left + crop_w, top + crop_h))
    img.thumbnail((longest, longest))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85, comment=f"kitteh-test {uuid.uuid4().hex}".encode())
    return out.getvalue()


# ---- the API, as any client sees it ---------------------------------------------------------

def all_images(api: APIRequestContext) -> list[dict]:
    images, cursor = [], None
    while True:
        query = "/api/images?limit=100" + (f"&before={cursor}" if cursor else "")
        response = api.get(query)
        assert response.status == 200, response.text()
        page = response.json()
        images += page["images"]
        cursor = page["next"]
        if cursor is None:
            return images


def api_upload(api: APIRequestContext, data: bytes, filename: str,
               content_type: str = "image/jpeg") -> dict:
    for _ in range(30):
        response = api.post("/api/images", multipart={
            "file": {"name": filename, "mimeType": content_type, "buffer": data}})
        if response.status == 429:  # the gateway's per-address upload limit: wait our turn
            time.sleep(float(response.headers.get("retry-after", "2")))
            continue
        assert response.status in (200, 201), response.text()
        return response.json()
    raise AssertionError("still rate limited after 30 tries")


def ensure_images(api: APIRequestContext, wanted: int) -> list[dict]:
    """At least ``wanted`` images on the stack, adding crops of real photos if needed; paced
    under the gateway's upload rate limit (2 a second) so other tests keep their budget."""
    images = all_images(api)
    for index in range(len(images), wanted):
        started = time.monotonic()
        api_upload(api, photo_crop(index), f"{SEED_PHOTOS[index % 6].split('.')[0]}-{index}.jpg")
        time.sleep(max(0.0, 0.55 - (time.monotonic() - started)))
    return all_images(api)


def volume_files(storage: Path) -> list[str]:
    return sorted(p.relative_to(storage).as_posix() for p in storage.rglob("*") if p.is_file())


def upload_traces(storage: Path) -> list[str]:
    """What an upload leaves on the volume: image directories, originals and temp files (not
    the variant files that the background keeps adding to earlier images)."""
    files = volume_files(storage)
    return sorted({f.rsplit("/", 1)[0] for f in files}
                  | {f for f in files if "/original." in f or f.startswith("tmp/")})


# ---- what a page must not do ----------------------------------------------------------------

# Runs first in every document (init scripts are exempt from the page's CSP) and reports
# each violation to the test at once, whichever document it happened in.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.kittehCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}` +
                            ` at ${e.sourceFile || e.documentURI}:${e.lineNumber}`);
});
"""


@dataclass
class PageWatch:
    """Everything a page did that a healthy Kitteh page never does."""

    origin: str
    problems: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext, scripts: bool = True) -> None:
        if scripts:
            context.expose_function(
                "kittehCspViolation", lambda text: self.problems.append(f"CSP violation: {text}"))
            context.add_init_script(CSP_LISTENER)
        context.on("console", self._console)
        context.on("weberror", lambda error: self.problems.append(f"page error: {error.error}"))
        context.on("request", self._request)
        context.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type not in ("error", "warning"):
            return
        # A refused upload or a 404 page is an expected status: statuses are checked below,
        # by URL. Everything else (CSP refusals, script errors) is a problem.
        if message.text.startswith("Failed to load resource"):
            return
        self.problems.append(f"console {message.type}: {message.text}")

    def _request(self, request: Request) -> None:
        url = request.url
        if not url.startswith((self.origin + "/", "data:", "blob:")):
            self.problems.append(f"request off the site: {url}")

    def _response(self, response: Response) -> None:
        path = response.url.removeprefix(self.origin)
        if response.status >= 400 and path.startswith(("/assets/", "/i/")):
            self.problems.append(f"{response.status} for {path}")

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)
