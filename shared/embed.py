"""Copy-as codes: what people paste into a forum, a README or a chat to show a picture.

One function makes the three codes from a page link, a direct link and the picture's size, so
the image page, the album page and the JSON (``embed``) always carry the same strings. The
direct link is a variant (``monstrous``, 600 px wide at most, in the image's base format:
JPEG, PNG or WebP, which every forum shows), never the original, which may be tens of
megabytes or a HEIC no browser shows. The HTML code offers every size in ``srcset``.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # shared.images imports this module
    from shared.images import ImageRecord
    from shared.urls import Urls

DIRECT_KIND = "monstrous"


def embed_codes(page: str, direct: str, name: str, width: int, height: int,
                srcset: str = "") -> dict[str, str]:
    """Markdown, BBCode and HTML showing ``direct`` and linking to ``page``."""
    def attr(value: str | int) -> str:
        return escape(str(value), quote=True)

    extra = (f' srcset="{attr(srcset)}" sizes="(max-width: {width}px) 100vw, {width}px"'
             if srcset else "")
    return {
        "markdown": f"[![{_markdown_text(name)}]({direct})]({page})",
        "bbcode": f"[url={page}][img]{direct}[/img][/url]",
        "html": (f'<a href="{attr(page)}"><img src="{attr(direct)}"{extra} alt="{attr(name)}"'
                 f' width="{width}" height="{height}"></a>'),
    }


def _markdown_text(text: str) -> str:
    """Alt text cannot break out of ``![...]`` (names are letters and digits; titles may not be)."""
    return "".join("\\" + c if c in "[]\\" else c for c in text.replace("\n", " "))


def direct_url(image: ImageRecord, urls: Urls) -> str:
    return urls.file(image.variant_path(DIRECT_KIND))


def variant_srcset(image: ImageRecord, urls: Urls) -> str:
    """Every size of the picture in its base format, narrowest first (never the original)."""
    widths: dict[int, str] = {}  # a small picture's sizes may share a width: one entry each
    for v in image.variants:
        widths.setdefault(v.width, urls.file(image.variant_path(v.kind)))
    return ", ".join(f"{url} {width}w" for width, url in widths.items())


def picture_embed(image: ImageRecord, urls: Urls, page: str, label: str) -> dict[str, str]:
    """Codes showing ``image`` (its direct variant, every size in srcset) linking to ``page``."""
    direct = image.variant(DIRECT_KIND)
    width, height = (direct.width, direct.height) if direct else (image.width, image.height)
    return embed_codes(page, direct_url(image, urls), label, width, height,
                       variant_srcset(image, urls))


def image_embed(image: ImageRecord, urls: Urls) -> dict[str, str]:
    """The codes of one image; ``urls`` should be absolute (a pasted code leaves the site)."""
    return picture_embed(image, urls, urls.page(image.name), image.name)
