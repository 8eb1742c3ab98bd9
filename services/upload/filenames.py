"""The name a client gave its file: kept to show and to offer on download, never used as a path.

Stored files are named by their hash (``shared.storage``); this name only appears in pages
(escaped by the templates), in JSON, and in ``Content-Disposition`` (encoded by the gallery).
It is still cleaned so that it reads as what the person picked: no directories, no control
characters, no invisible direction marks that make ``cat\\u202egnp.exe`` display as
``catexe.png``, and an extension that says what the file really is.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

from shared.formats import FORMATS, Format

MAX_FILENAME = 200
# Unicode categories dropped: controls (NUL, CR, LF...), format characters (direction marks
# and overrides, zero-width joiners), lone surrogates (undecodable bytes), line and paragraph
# separators.
DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Extensions that name some image format (the registry's): a name ending in one of the
# sniffed format's keeps it, one ending in another's has it replaced.
IMAGE_EXTENSIONS = frozenset(ext for f in FORMATS for ext in f.extensions)


def clean_filename(raw: str | None) -> str:
    """Keep what a person would recognise; drop paths, control and direction characters."""
    name = raw or ""
    if name.isascii() and "%" in name:
        # Browsers send UTF-8 as is and escape only quotes and newlines as %22/%0D/%0A;
        # some clients (aiohttp, scripts) percent-encode the whole name. Both mean this:
        name = unquote(name)
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in DROPPED_CATEGORIES)
    name = name.strip().strip(".")
    return _shorten(name, MAX_FILENAME)


def stored_filename(cleaned: str, fmt: Format) -> str:
    """The cleaned name with an extension matching the sniffed format: ``photo.jpg`` holding
    a PNG becomes ``photo.png``, ``setup.exe`` holding a PNG ``setup.exe.png``, so a download
    never arrives under a name that makes it something else."""
    if not cleaned:
        return f"image.{fmt.extension}"
    stem, dot, ext = cleaned.rpartition(".")
    if dot and ext.lower() in fmt.extensions:
        return cleaned
    if dot and stem and ext.lower() in IMAGE_EXTENSIONS:
        return f"{stem}.{fmt.extension}"
    return _shorten(cleaned, MAX_FILENAME - len(fmt.extension) - 1) + f".{fmt.extension}"


def _shorten(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    if dot and len(ext) <= 10:
        return stem[: limit - len(ext) - 1] + dot + ext
    return name[:limit]
