"""What the HTML pages show, computed from image records (kept out of the templates)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup, escape

from services.gallery.placeholders import STAGE_SIDE, TILE_SIDE, placeholder_url
from services.gallery.video import duration_text, player, waiting_note
from shared.albums import AlbumRecord, Tile, album_json
from shared.config import GalleryConfig, Limits
from shared.embed import direct_url
from shared.formats import ACCEPTED_NAMES, ACCEPTED_PROSE, accept_attribute, animation_kept
from shared.images import ImageRecord, image_json
from shared.units import human_bytes
from shared.urls import Urls
from shared.variants import BASE, MODERN_FORMATS

# The home form's "Expires" select: (seconds sent as expires_in, label); "" is never.
EXPIRY_CHOICES = (("", "Never"), ("3600", "In 1 hour"), ("86400", "In 1 day"),
                  ("604800", "In 1 week"))

# Where a memorable name may wrap: before each capital (SublimeDandelion -> Sublime|Dandelion).
WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])")
TILE_KINDS = ("tiny", "large")  # 90 px tiles: tiny on ordinary screens, large on dense ones
# The picture's displayed width (app.css): 600 px beside the panel, the screen less the
# margins on narrow screens.
STAGE_SIZES = ("(min-width: 980px) 600px, (min-width: 800px) calc(100vw - 380px), "
               "calc(100vw - 40px)")


def srcset(image: ImageRecord, urls: Urls, kinds: tuple[str, ...] | None = None,
           variant_format: str = BASE) -> str:
    """The sizes the browser may pick from, narrowest first; never the original (it may be
    tens of megabytes: the variants go up to 2048 px). For a modern format, a size whose
    modern file is not there (not made yet, or dropped as larger) offers its base file."""
    entries: dict[int, str] = {}
    for v in image.variants:
        if kinds is not None and v.kind not in kinds:
            continue
        modern = image.variant(v.kind, variant_format) if variant_format != BASE else None
        chosen = variant_format if modern is not None and modern.state == "ready" else BASE
        entries.setdefault(v.width, urls.file(image.variant_path(v.kind, chosen)))
    return ", ".join(f"{url} {width}w" for width, url in entries.items())


def sources(image: ImageRecord, urls: Urls,
            kinds: tuple[str, ...] | None = None) -> list[dict[str, str]]:
    """``<source>``s of ``<picture>``, best format first: one per modern format that has at
    least one file ready among ``kinds``. Every file keeps its own immutable URL."""
    found = []
    if image.gain_map and kinds is None:
        # An HDR photo's JPEG files are Ultra HDR, its AVIF and WebP ones SDR (Pillow writes
        # no gain map): a screen that shows HDR gets the JPEG, every other the smaller files.
        # Not in grid tiles: 90 px of HDR is noise, and the tiles stay the smaller files.
        found.append({"type": "image/jpeg", "media": "(dynamic-range: high)",
                      "srcset": srcset(image, urls, kinds)})
    for variant_format in MODERN_FORMATS:
        ready = [v for v in image.modern if v.format == variant_format and v.state == "ready"
                 and (kinds is None or v.kind in kinds)]
        if ready:
            found.append({"type": image.variant_content_type(variant_format),
                          "srcset": srcset(image, urls, kinds, variant_format)})
    return found


def tile_kinds(image: ImageRecord) -> tuple[str, ...]:
    """Grid tiles: the tiny variant on ordinary screens, the large one on dense ones; an
    animation's tiny only, its still poster (its large one moves: grid tiles stay still)."""
    return ("tiny",) if image.frames > 1 else TILE_KINDS


def tile_srcset(image: ImageRecord, urls: Urls) -> str:
    return srcset(image, urls, tile_kinds(image))


def placeholder(image: ImageRecord, side: int) -> str | None:
    """The ThumbHash drawn under the picture while it loads; none where it would show through
    (transparency, animations)."""
    if image.thumbhash is None or image.frames > 1 or image.format.variant_pillow_name != "JPEG":
        return None
    return placeholder_url(image.thumbhash, side)


def breakable(name: str) -> Markup:
    """A long memorable name with line-break opportunities between its words."""
    return Markup("<wbr>").join(escape(part) for part in WORD_START.split(name))


def limits_summary(limits: Limits) -> str:
    seconds = limits.max_video_seconds
    length = f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds:,} s"
    return (f"up to {human_bytes(limits.max_upload_bytes)} · {limits.max_side:,} px a side · "
            f"{limits.max_pixels / 1_000_000:g} megapixels · videos up to "
            f"{human_bytes(limits.max_video_bytes)} and {length}")


def tile_context(tile: Tile, urls: Urls) -> dict[str, Any]:
    """A grid tile: an image links to its page; an album to its own, showing its cover."""
    image = tile.image
    album = tile.album_name is not None
    return {"image": image, "srcset": tile_srcset(image, urls),
            "sources": sources(image, urls, tile_kinds(image)),
            "placeholder": placeholder(image, TILE_SIDE),
            "album": album,
            "token": tile.album_token if album else image.token,
            "href": urls.album_page(tile.album_name) if album else urls.page(image.name),
            "label": (tile.album_title or tile.album_name) if album else image.name,
            "pictures": tile.album_pictures}


def home_context(tiles: list[Tile], config: GalleryConfig,
                 next_cursor: str | None, error: str | None = None,
                 before: int | None = None, share: dict | None = None) -> dict[str, Any]:
    urls = Urls.of(config)
    return {
        "before": before,
        "share": share,
        "tiles": [tile_context(t, urls) for t in tiles],
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
                  limits: Limits, share_origin: str = "") -> dict[str, Any]:
    """``share_origin``: scheme and host for the URLs people copy and link previews read,
    which must be absolute (KITTEH_PUBLIC_URL, or the request's own)."""
    share_urls = Urls(share_origin or urls.public_url, urls.files_url)
    body = image_json(image, urls, share_urls)
    share = image_json(image, share_urls, share_urls)
    preview = share["variants"].get("wide") or share["variants"].get("monstrous")
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
        "share": share,
        "preview": preview,
        "srcset": srcset(image, urls),
        "sources": sources(image, urls),
        "stage_sizes": STAGE_SIZES,
        "placeholder": placeholder(image, STAGE_SIDE),
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
        "codes": copy_codes(share["page_url"], direct_url(image, share_urls), share["embed"]),
        "video": player(image, urls),
        "is_video": image.kind == "video",
        "video_note": waiting_note(image),
        "duration_text": duration_text(image.duration),
    }


def copy_codes(page: str, direct: str, embed: dict[str, str]) -> list[dict[str, str]]:
    """The copy fields of a page: (id, label, value), the same strings as the JSON's."""
    return [  # spoken: the button's name ("Copy page link") and the status's words
        {"id": "page-link", "label": "Page link", "spoken": "page link", "value": page},
        {"id": "image-link", "label": "Direct image link", "spoken": "image link",
         "value": direct},
        {"id": "code-markdown", "label": "Markdown", "spoken": "Markdown code",
         "value": embed["markdown"]},
        {"id": "code-bbcode", "label": "BBCode (forums)", "spoken": "BBCode code",
         "value": embed["bbcode"]},
        {"id": "code-html", "label": "HTML", "spoken": "HTML code", "value": embed["html"]},
    ]


def album_context(album: AlbumRecord, urls: Urls, query: Mapping[str, str],
                  share_origin: str = "") -> dict[str, Any]:
    share_urls = Urls(share_origin or urls.public_url, urls.files_url)
    body = album_json(album, urls, share_urls)
    share = album_json(album, share_urls, share_urls)
    cover = album.images[0] if album.images else None
    pictures = [{"image": i, "page": urls.page(i.name), "srcset": srcset(i, urls),
                 "sources": sources(i, urls), "placeholder": placeholder(i, STAGE_SIDE),
                 "src": urls.file(i.variant_path("monstrous"))}
                for i in album.images]
    flash = ("Uploaded", "Your pictures are one album with one link. Each still has its own "
             "page.") if "uploaded" in query else None
    return {
        "album": album,
        "json": body,
        "share": share,
        "cover": cover,
        "preview": (share["images"][0]["variants"].get("wide")
                    or share["images"][0]["variants"].get("monstrous")) if cover else None,
        "pictures": pictures,
        "stage_sizes": STAGE_SIZES,
        "title_html": breakable(album.title) if album.title else breakable(album.name),
        "created_text": body["created_at"].replace("T", " ").replace("Z", " UTC"),
        "expires_text": (body["expires_at"] or "").replace("T", " ").replace("Z", " UTC"),
        "flash": flash,
        "codes": copy_codes(share["page_url"],
                            direct_url(cover, share_urls) if cover else share["page_url"],
                            share["embed"]),
    }
