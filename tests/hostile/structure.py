"""Listing what is inside an image file, independently of the code under test: JPEG segments,
PNG and WebP chunks, GIF blocks. Tests use it to say exactly what a stored file holds."""

from __future__ import annotations

import struct


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) for every segment up to the first scan, then the first SOS."""
    assert data[:2] == b"\xff\xd8"
    pos, segments = 2, []
    while True:
        assert data[pos] == 0xFF, f"no marker at {pos}"
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        segments.append((marker, data[pos + 4:pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:
            return segments


def jpeg_scan_data(data: bytes) -> bytes:
    """Everything from the first scan header on: the compressed pixels (and later tables)."""
    pos = 2
    while data[pos + 1] != 0xDA:
        pos += 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]
    return data[pos:]


def png_chunks(data: bytes, trailing_allowed: bool = False) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while True:
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            assert trailing_allowed or pos == len(data), "bytes after IEND"
            return chunks


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert struct.unpack("<I", data[4:8])[0] + 8 == len(data), "RIFF size is not the file size"
    pos, chunks = 12, []
    while pos < len(data):
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        chunks.append((kind, data[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    return chunks


def gif_blocks(data: bytes) -> list[tuple[str, bytes, int]]:
    """('extension', label + first sub-block, offset) and ('image', descriptor, offset), then
    ('trailer', b'', offset)."""
    assert data[:6] in (b"GIF87a", b"GIF89a")
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    blocks = []

    def skip_sub_blocks(at: int) -> int:
        while data[at]:
            at += data[at] + 1
        return at + 1

    while True:
        kind = data[pos]
        if kind == 0x3B:
            blocks.append(("trailer", b"", pos))
            return blocks
        if kind == 0x21:
            first = data[pos + 2:pos + 3 + data[pos + 2]]
            blocks.append(("extension", data[pos + 1:pos + 2] + first, pos))
            pos = skip_sub_blocks(pos + 2)
        else:
            assert kind == 0x2C
            descriptor = data[pos + 1:pos + 10]
            blocks.append(("image", descriptor, pos))
            pos += 10 + (3 << ((descriptor[8] & 7) + 1) if descriptor[8] & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)
