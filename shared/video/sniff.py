"""MP4, MOV and WebM from their first bytes, for the format registry (``shared.formats``).

MP4 and MOV are both ISO base media files told apart by the ``ftyp`` brands: QuickTime's is
``qt  `` (iPhones), the others are MP4's. A MOV from before ``ftyp`` existed starts with its
``moov``, ``mdat``, ``wide`` or ``free`` atom. WebM is Matroska (EBML) whose DocType says
``webm``; other Matroska files are not accepted. The still-image ISOBMFF brands (AVIF, HEIC)
come first in the registry, so a file is never both.

Imports nothing of the registry: it imports this.
"""

from __future__ import annotations

from shared.sanitize.isobmff import brands

QUICKTIME = b"qt  "
MP4_BRANDS = frozenset({b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7",
                        b"iso8", b"iso9", b"mp41", b"mp42", b"mp71", b"avc1", b"av01",
                        b"M4V ", b"M4VP", b"M4VH", b"dash", b"mmp4", b"MSNV", b"f4v "})
OLD_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free")
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
WEBM_DOCTYPE = b"\x42\x82\x84webm"  # DocType element, 4 bytes long, "webm"


def _major_brand(head: bytes) -> bytes:
    return head[8:12] if head[4:8] == b"ftyp" else b""


def is_mov(head: bytes) -> bool:
    if head[4:8] == b"ftyp":
        return _major_brand(head) == QUICKTIME
    size = int.from_bytes(head[:4], "big")
    return len(head) >= 8 and head[4:8] in OLD_QUICKTIME_ATOMS and (size in (0, 1) or size >= 8)


def is_mp4(head: bytes) -> bool:
    major = _major_brand(head)
    return bool(major) and major != QUICKTIME and (
        major in MP4_BRANDS or bool(brands(head) & MP4_BRANDS))


def is_webm(head: bytes) -> bool:
    return head.startswith(EBML_MAGIC) and WEBM_DOCTYPE in head[:64]


def not_rewritten(*_args) -> int:
    """The registry's rewrite slot for videos: they are remuxed (``shared.video.remux``),
    never walked by the image sanitizers. Reaching this is a bug, refused as one."""
    raise TypeError("videos are remuxed in shared.video, not rewritten as images")
