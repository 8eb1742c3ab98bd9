"""What an upload may ask for besides its file: ``visibility`` and ``expires_in``.

Both are plain multipart fields (the home page's checkbox and select carry the same names).
Anything else in them is a 400 naming the field, checked before the image is stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from shared.errors import BadRequest

VISIBILITIES = ("public", "unlisted")
MIN_EXPIRES_IN = 60  # seconds; expiry is honoured within a minute, less would be a promise
MAX_EXPIRES_IN = 365 * 24 * 3600  # one year
OPTION_FIELDS = ("visibility", "expires_in")


@dataclass(frozen=True)
class UploadOptions:
    visibility: str = "public"
    expires_in: int | None = None  # seconds from now; None: never


def parse_options(fields: Mapping[str, str]) -> UploadOptions:
    visibility = fields.get("visibility", "").strip().lower() or "public"
    if visibility not in VISIBILITIES:
        raise BadRequest("'visibility' must be 'public' or 'unlisted'.")
    raw = fields.get("expires_in", "").strip()
    expires_in = None
    if raw:  # the form's "never" sends an empty value
        # ASCII digits only, and few: int() accepts "²", "1_000" and thousands of digits.
        if not re.fullmatch(r"[0-9]{1,9}", raw) or not (
                MIN_EXPIRES_IN <= int(raw) <= MAX_EXPIRES_IN):
            raise BadRequest(f"'expires_in' must be a whole number of seconds from "
                             f"{MIN_EXPIRES_IN} to {MAX_EXPIRES_IN} (one year), "
                             "or empty for never.")
        expires_in = int(raw)
    return UploadOptions(visibility, expires_in)
