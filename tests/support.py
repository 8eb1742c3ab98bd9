"""Helpers the tests share: sample photos, generated images, multipart bodies."""

from __future__ import annotations

import io
import os
import stat
import tempfile
from pathlib import Path

import aiohttp
from PIL import Image

from tests.leaks import current_run

REPO = Path(__file__).resolve().parent.parent
# Real photos with their sources and licences: tests/data/photos/README.md. KITTEH_PHOTOS may
# point at another folder holding files of the same names.
PHOTOS = Path(os.environ.get("KITTEH_PHOTOS") or REPO / "tests" / "data" / "photos")


def photo(name: str) -> Path:
    path = PHOTOS / name
    if not path.exists():
        raise FileNotFoundError(
            f"sample photo {path} is missing: the tests read real photos from tests/data/photos "
            "(or the folder KITTEH_PHOTOS names)")
    return path


def image_bytes(fmt: str = "JPEG", size=(64, 48), color=(200, 120, 40), mode="RGB",
                **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, fmt, **save)
    return out.getvalue()


def file_form(data: bytes, filename: str = "cat.jpg", content_type: str = "image/jpeg",
              field: str = "file") -> aiohttp.FormData:
    form = aiohttp.FormData()
    # A stream, not bytes: aiohttp warns (an error under our filterwarnings) for big bytes.
    form.add_field(field, io.BytesIO(data), filename=filename, content_type=content_type)
    return form


def open_dir(prefix: str) -> Path:
    """A temp directory others may traverse (the postgres user must reach its cluster). Its
    name carries the test run's id: nginx's and PostgreSQL's command lines name it, which is
    how tests.leaks finds them (they write over their environment)."""
    run = current_run()
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}{run}-" if run else prefix))
    path.chmod(path.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)
    return path
