"""What the HTML pages show, computed from image records (kept out of the templates)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup, escape

from shared.config import GalleryConfig, Limits
from shared.formats import ACCEPTED_NAMES, ACCEPTED_PROSE, accept_attribute, animation_kept
from shared.images import ImageRecord, image_json
from shared.units import human_bytes
from shared.urls import Urls

# The home form's "Expires" select: (seconds sent as expires_in, label); "" is never.
EXPIRY_CHOICES = (("", "Never"), ("3600", "In 1 hour"), ("86400", "In 1 day"),
                  ("604800", "In 1 week"))

# Where a memorable name may wrap: before each capital (SublimeDandelion -> Sublime|Dandelion).
WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")


def srcset(image: ImageRecord, urls: Urls) -> str:
    """Every size the browser may pick from, narrowest first, the original last (if a
    browser can show it: never a HEIC)."""
    entries = [f"{urls.file(image.variant_path(v.kind))} {v.width}w" for v in image.variants]
    widest_variant = max((v.width for v in image.variants), default=0)
    if image.width > widest_variant and image.frames == 1 and image.format.browser_safe:
        entries.append(f"{urls.file(image.original_path)} {image.width}w")
    return ", ".join(entries)


def tile_srcset(image: ImageRecord, urls: Urls) -> str:
    """Grid tiles: the tiny variant on ordinary screens, the large one on dense ones."""
    return ", ".join(f"{urls.file(image.variant_path(v.kind))} {v.width}w"
                     for v in image.variants if v.kind in ("tiny", "large"))


def breakable(name: str) -> Markup:
    """A long memorable name with line-break opportunities between its words."""
    return Markup("<wbr>").join(escape(part) for part in WORD_START.split(name))


def limits_summary(limits: Limits) -> str:
    return (f"up to {human_bytes(limits.max_upload_bytes)} · {limits.max_side:,} px a side · "
            f"{limits.max_pixels / 1_000_000:g} megapixels")


def home_context(images: list[ImageRecord], config: GalleryConfig,
                 next_cursor: str | None, error: str | None = None,
                 before: int | None = None) -> dict[str, Any]:
    urls = Urls.of(config)
    return {
        "before": before,
        "tiles": [{"image": i, "srcset": tile_srcset(i, urls)} for i in images],
        "limits": config.limits,
        "limits_text": limits_summary(config.limits),
        "accept": accept_attribute(),
        "accepted_names": ACCEPTED_NAMES,
        "accepted_prose": ACCEPTED_PROSE,
        "next_cursor": next_cursor,
        "error": error,
        "needs_key": config.uploads == "keys",
        "show_newest": config.newest,
        "expiry_choices": EXPIRY_CHOICES,
    }


def image_context(image: ImageRecord, urls: Urls, query: Mapping[str, str],
                  limits: Limits) -> dict[str, Any]:
    body = image_json(image, urls)
    sizes = [{"label": kind.capitalize(), **v} for kind, v in body["variants"].items()]
    sizes.append({"label": "Original", **body["original"]})
    if "uploaded" in query:
        flash = ("Uploaded", "Your kitty has a page. Share its link or download the original.")
    elif "existing" in query:
        flash = ("Already here", "Someone uploaded the very same picture before: this is it.")
    else:
        flash = None
    return {
        "image": image,
        "json": body,
        "srcset": srcset(image, urls),
        "size_text": human_bytes(image.bytes),
        "format_name": image.format.label,
        "animated": image.frames > 1,
        # Animated, but past the work budget: its variants are still posters.
        "still_variants": image.frames > 1 and not animation_kept(
            image.format, image.frames, image.width, image.height, limits.max_animation_work),
        "title_html": breakable(image.name),
        "uploaded_text": body["created_at"].replace("T", " ").replace("Z", " UTC"),
        "expires_text": (body["expires_at"] or "").replace("T", " ").replace("Z", " UTC"),
        "sizes": sizes,
        "flash": flash,
    }
