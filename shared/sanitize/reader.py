"""Streaming reads for the format walkers: a chunk of the upload at a time, never all of it."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from typing import BinaryIO

from shared.sanitize.errors import damaged, too_many
from shared.sanitize.limits import MAX_GIF_SUB_BLOCKS

CHUNK = 1024 * 1024

Sink = BinaryIO | None  # None: walk the structure, write nothing
FrameCheck = Callable[[int, int, int], None]  # (frame number, right edge, bottom edge)
# A format's walk and rewrite: (source, sink or None to only check, EXIF orientation to keep,
# frame check) -> frames found (GIF) or None.
Rewriter = Callable[["Reader", Sink, int, "FrameCheck | None"], "int | None"]


class Reader:
    """Exact reads from a file, refilled a chunk at a time; running out early is damage."""

    def __init__(self, fp: BinaryIO):
        self._fp = fp
        self.file = fp  # containers with offsets (ISOBMFF) are read by seeking instead
        self._buf = b""
        self._pos = 0
        self.sub_blocks = 0

    def _fill(self, count: int) -> bool:
        while len(self._buf) - self._pos < count:
            more = self._fp.read(CHUNK)
            if not more:
                return False
            self._buf = self._buf[self._pos:] + more
            self._pos = 0
        return True

    def at_end(self) -> bool:
        return not self._fill(1)

    def read(self, count: int) -> bytes:
        """Up to a few KiB (headers, JPEG segments of at most 64 KiB)."""
        if not self._fill(count):
            raise damaged("the file ends early")
        data = self._buf[self._pos:self._pos + count]
        self._pos += count
        return data

    def copy(self, count: int, out: Sink, crc: int = 0) -> int:
        """Pass ``count`` bytes on to ``out``, a chunk at a time; returns their running CRC-32."""
        while count:
            if not self._fill(1):
                raise damaged("the file ends early")
            piece = self._buf[self._pos:self._pos + count]
            self._pos += len(piece)
            count -= len(piece)
            crc = zlib.crc32(piece, crc)
            write(out, piece)
        return crc

    def copy_until(self, pattern: re.Pattern[bytes], out: Sink, overlap: int) -> bool:
        """Pass bytes on until ``pattern`` matches at the read position (False: the file
        ended first). ``overlap`` bytes are kept back at each refill, so a match that
        straddles two chunks is still found."""
        while True:
            found = pattern.search(self._buf, self._pos)
            if found:
                write(out, self._buf[self._pos:found.start()])
                self._pos = found.start()
                return True
            keep_from = max(self._pos, len(self._buf) - overlap)
            write(out, self._buf[self._pos:keep_from])
            self._pos = keep_from
            more = self._fp.read(CHUNK)
            if not more:
                return False
            self._buf = self._buf[self._pos:] + more
            self._pos = 0

    def copy_sub_blocks(self, out: Sink) -> None:
        """Pass a chain of GIF sub-blocks (length byte, data) on through its zero terminator.
        The lengths are followed in a tight loop over the buffer: a hostile GIF of 1-byte
        sub-blocks has 20 million of them in 40 MiB."""
        while True:
            buf, start = self._buf, self._pos
            pos = last = start
            end = len(buf)
            count = 0
            while pos < end:
                size = buf[pos]
                if size == 0:
                    write(out, buf[start:pos + 1])
                    self._pos = pos + 1
                    self._count_sub_blocks(count)
                    return
                count += 1
                last, pos = pos, pos + size + 1
            if pos > end:  # the last sub-block runs past the buffer: start there next time
                pos, count = last, count - 1
            self._count_sub_blocks(count)
            write(out, buf[start:pos])
            self._pos = pos
            if not self._fill(len(self._buf) - pos + 1):  # at least one byte more
                raise damaged("GIF data ends early")

    def _count_sub_blocks(self, count: int) -> None:
        self.sub_blocks += count
        if self.sub_blocks > MAX_GIF_SUB_BLOCKS:
            raise too_many("GIF data sub-blocks", MAX_GIF_SUB_BLOCKS)


def write(out: Sink, data: bytes) -> None:
    if out is not None:
        out.write(data)
