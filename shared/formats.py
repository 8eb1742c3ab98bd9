"""The format registry: every image format Kitteh accepts, and everything known about each.

One entry per format says how to recognise it from its first bytes (never the name or the
``Content-Type``), what it is called, which extensions and content types mean it, how its
metadata is rewritten (``shared.sanitize``), how Pillow decodes it, whether browsers can show
it, and what its variants are written as. Everything else is derived from this list: the
sniffing and checks in ``shared.imaging``, download names (``services.upload.filenames``), the
resize engine's output format, the upload page's ``accept`` list and messages, the nginx MIME
types and the refusal messages. A test checks the gateway template against it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shared.sanitize import gif, heif, jpeg, png, webp
from shared.sanitize.isobmff import is_avif, is_heic
from shared.sanitize.reader import Rewriter
from shared.video.sniff import is_mov, is_mp4, is_webm, not_rewritten

Sniffer = Callable[[bytes], bool]  # the first SNIFF_BYTES of a file -> is it this format?
SNIFF_BYTES = 256  # enough for an ISOBMFF ftyp box with 60 compatible brands


def _starts(*signatures: bytes) -> Sniffer:
    return lambda head: head.startswith(signatures)


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _register_pi_heif() -> None:
    """HEIC through pi-heif: libheif + libde265, decode only, LGPL (docs/formats.md)."""
    import pi_heif

    pi_heif.register_heif_opener()


@dataclass(frozen=True)
class Format:
    name: str  # the registry key, and how logs name it: "JPEG", "HEIC"
    label: str  # how people write it: "WebP"
    content_type: str
    extensions: tuple[str, ...]  # names meaning this format; the first is the one stored
    sniff: Sniffer
    sanitizer: Rewriter  # the lossless metadata rewrite (shared.sanitize.<format>)
    pillow_names: tuple[str, ...]  # Image.format values Pillow may report for it
    browser_safe: bool  # can an <img> show it in every current browser?
    still_variant: str  # name of the format its variants are written in
    animated_variant: str | None = None  # ...when it is animated: animation kept
    aliases: tuple[str, ...] = ()  # other content types clients send for it
    verify_chunks: bool = False  # PNG: Pillow's verify() checks every chunk's CRC
    draft_decode: bool = False  # JPEG: the damage check decodes at 1/8 scale
    isolated_decode: bool = False  # first decoded in a child process (shared.isolated)
    pillow_plugin: Callable[[], None] | None = field(default=None, compare=False)
    kind: str = "image"  # "video": probed, remuxed and transcoded by shared.video instead

    @property
    def pillow_name(self) -> str:
        """The Pillow plugin that reads it (``Image.open(formats=[...])``)."""
        return self.pillow_names[0]

    @property
    def extension(self) -> str:
        return self.extensions[0]

    # The still variant's format, as the resize bench names it. An image's variant files
    # (animations: WebP) are ImageRecord.variant_output's, never this.
    @property
    def variant_pillow_name(self) -> str:
        return self.still_variant


FORMATS: tuple[Format, ...] = (
    # Phones write JPEGs with a second picture (a depth or gain map) after the first, which
    # Pillow reads as MPO. The rewrite keeps the first picture only: a plain one-frame JPEG.
    Format("JPEG", "JPEG", "image/jpeg", ("jpg", "jpeg", "jpe", "jfif"),
           _starts(b"\xff\xd8\xff"), jpeg.rewrite, ("JPEG", "MPO"), True, "JPEG",
           aliases=("image/pjpeg", "image/jpg"), draft_decode=True),
    Format("PNG", "PNG", "image/png", ("png", "apng"), _starts(b"\x89PNG\r\n\x1a\n"),
           png.rewrite, ("PNG",), True, "PNG", animated_variant="WEBP",
           aliases=("image/apng",), verify_chunks=True),
    Format("GIF", "GIF", "image/gif", ("gif",), _starts(b"GIF87a", b"GIF89a"), gif.rewrite,
           ("GIF",), True, "PNG", animated_variant="WEBP"),
    Format("WEBP", "WebP", "image/webp", ("webp",), _is_webp, webp.rewrite, ("WEBP",), True,
           "WEBP", animated_variant="WEBP"),
    # AVIF and HEIC are ISOBMFF containers told apart by their ftyp brands. Browsers show
    # AVIF, but its variants are JPEG like HEIC's: one encoder path for photos, and the
    # output formats beside the base one are the delivery side's choice.
    Format("AVIF", "AVIF", "image/avif", ("avif",), is_avif, heif.rewrite, ("AVIF",),
           True, "JPEG", animated_variant="WEBP", isolated_decode=True),
    Format("HEIC", "HEIC", "image/heic", ("heic", "heif", "hif"), is_heic, heif.rewrite,
           ("HEIF",), False, "JPEG", aliases=("image/heif", "image/heic-sequence"),
           isolated_decode=True, pillow_plugin=_register_pi_heif),
    # Videos (shared/video): remuxed without metadata, never decoded by Pillow. Their
    # variants are the poster frame's, in JPEG; no <img> shows them (browser_safe False).
    Format("MP4", "MP4", "video/mp4", ("mp4", "m4v"), is_mp4, not_rewritten, (), False,
           "JPEG", kind="video"),
    Format("MOV", "MOV", "video/quicktime", ("mov", "qt"), is_mov, not_rewritten, (), False,
           "JPEG", kind="video"),
    Format("WEBM", "WebM", "video/webm", ("webm",), is_webm, not_rewritten, (), False, "JPEG",
           kind="video"),
)
BY_NAME = {f.name: f for f in FORMATS}
BY_PILLOW_NAME = BY_NAME  # the registry key was Pillow's name before HEIC ("HEIF")
BY_CONTENT_TYPE = {f.content_type: f for f in FORMATS}
ACCEPTED_NAMES = ", ".join(f.label for f in FORMATS)  # "JPEG, PNG, GIF, WebP, AVIF, HEIC"
ACCEPTED_PROSE = ", ".join(f.label for f in FORMATS[:-1]) + f" or {FORMATS[-1].label}"
NOT_AN_IMAGE = f"This file is not an image Kitteh accepts: it accepts {ACCEPTED_NAMES}."
VIDEO_FORMATS = tuple(f for f in FORMATS if f.kind == "video")


def sniff(head: bytes) -> Format | None:
    return next((f for f in FORMATS if f.sniff(head)), None)


def variant_format(fmt: Format, animated: bool) -> Format:
    """What the variants of an image in ``fmt`` are written as (an animated one keeps its
    animation as animated WebP, if its format can animate)."""
    if animated and fmt.animated_variant:
        return BY_NAME[fmt.animated_variant]
    return BY_NAME[fmt.still_variant]


STILL_KINDS = frozenset({"tiny"})  # grid tiles stay still: 24 animations at once is noise


def animation_kept(fmt: Format, frames: int, width: int, height: int, budget: int) -> bool:
    """Do the (non-tiny) variants of this image animate? Animated formats only, within the
    work budget of frames × pixels of the original (``KITTEH_MAX_ANIMATION_WORK``): decoding
    and resizing every frame costs about that, whatever the variant sizes."""
    return frames > 1 and fmt.animated_variant is not None and frames * width * height <= budget


def accept_attribute() -> str:
    """The upload input's ``accept``: every content type and extension, so pickers that filter
    by either (iOS offers HEIC photos by type, desktop pickers by extension) show them all."""
    types = [t for f in FORMATS for t in (f.content_type, *f.aliases)]
    return ",".join(types + [f".{e}" for f in FORMATS for e in f.extensions])


def mime_types() -> dict[str, tuple[str, ...]]:
    """Content type -> file extensions, for nginx's ``types`` block."""
    return {f.content_type: f.extensions for f in FORMATS}


def browser_originals() -> tuple[str, ...]:
    """Extensions of originals a browser can show, for the gateway's show-the-original
    fallback while no resize process answers."""
    return tuple(f.extension for f in FORMATS if f.browser_safe)


def register_plugins() -> None:
    """Pillow plugins the registry needs beyond Pillow's own (idempotent)."""
    for fmt in FORMATS:
        if fmt.pillow_plugin is not None:
            fmt.pillow_plugin()
