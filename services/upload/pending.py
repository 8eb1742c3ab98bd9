"""A share waiting for its upload key.

The phone's share sheet posts the photos to ``/share`` as a plain navigation: no script runs
first, so in keys mode no key comes with them (the page keeps it in localStorage, which only
the page's script reads). Rather than lose the photos, they are parked in the temp directory
under a random id and the person lands on the home page, whose script sends the kept key with
that id (or which asks for the key). The resize service's sweeper removes a share nobody came
back for after ``KITTEH_TEMP_MAX_AGE``, like any stale temp file.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from services.upload.receive import ReceivedFile
from shared.errors import BadRequest
from shared.storage import Scratch

PENDING_ID = re.compile(r"[A-Za-z0-9_-]{24}")
KEPT_OPTIONS = ("visibility", "expires_in", "title")


def _paths(scratch: Scratch, pending: str) -> tuple[Path, Path]:
    return scratch.directory / f"share-{pending}.json", scratch.directory / f"share-{pending}"


def park(storage: Scratch, files: list[ReceivedFile], fields: dict[str, str]) -> str:
    """Blocking: move the received files aside under a new id; returns the id."""
    pending = secrets.token_urlsafe(18)
    index, stem = _paths(storage, pending)
    entries = []
    for number, received in enumerate(files):
        os.replace(received.path, f"{stem}-{number}")
        entries.append({"filename": received.filename, "sha256": received.sha256.hex(),
                        "size": received.size})
    options = {k: v for k, v in fields.items() if k in KEPT_OPTIONS}
    index.write_text(json.dumps({"files": entries, "fields": options}))
    return pending


def unpark(storage: Scratch, pending: str, fields: dict[str, str]) -> list[ReceivedFile]:
    """Blocking: the parked files, taken out of the waiting area (once)."""
    if not PENDING_ID.fullmatch(pending):
        raise BadRequest("That is not the id of shared pictures.")
    index, stem = _paths(storage, pending)
    try:
        parked = json.loads(index.read_text())
        index.unlink()
    except (OSError, ValueError):
        raise BadRequest("These shared pictures are no longer waiting (they are kept for an "
                         "hour, and sent once): share them again.") from None
    merged = {**parked["fields"], **fields}
    found = []
    for number, entry in enumerate(parked["files"]):
        path = Path(f"{stem}-{number}")
        if path.exists():
            found.append(ReceivedFile(path, entry["filename"], bytes.fromhex(entry["sha256"]),
                                      entry["size"], merged))
    if not found:
        raise BadRequest("These shared pictures are no longer waiting: share them again.")
    return found
