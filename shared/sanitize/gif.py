"""GIF: blocks through the trailer; frames, graphic control and looping kept."""

from __future__ import annotations

import struct

from shared.sanitize.errors import damaged
from shared.sanitize.limits import Parts
from shared.sanitize.reader import FrameCheck, Reader, Sink, write

_NETSCAPE_LOOP = b"\x0bNETSCAPE2.0"


def rewrite(src: Reader, out: Sink, _: int, check_frame: FrameCheck | None) -> int:
    head = src.read(13)
    if head[:6] not in (b"GIF87a", b"GIF89a"):
        raise damaged("no GIF signature")
    if check_frame is not None:
        check_frame(0, *struct.unpack("<HH", head[6:10]))
    write(out, head)
    if head[10] & 0x80:
        src.copy(3 << ((head[10] & 7) + 1), out)  # global colour table
    frames = 0
    control: bytes | None = None  # a graphic control block waits for the frame it belongs to
    parts = Parts("GIF blocks")
    while not src.at_end():
        kind = src.read(1)
        if kind == b";":
            break
        parts.add(kind == b",")
        if kind == b"!":
            label = src.read(1)
            first = _sub_block(src)
            if label == b"\xf9":
                # Decoders read the first sub-block (4 bytes) only; the rest, if a hostile
                # file has any, is walked like other data and not kept.
                control = kind + label + first
                if first != b"\0":
                    control += b"\0"
                    src.copy_sub_blocks(None)
                continue
            keep = label == b"\xff" and first == _NETSCAPE_LOOP
            if label == b"\x01":  # plain text: drawn by no browser; its control goes too
                control = None
            sink = out if keep else None
            write(sink, kind + label + first)
            if first != b"\0":
                src.copy_sub_blocks(sink)
        elif kind == b",":
            descriptor = src.read(9)
            left, top, width, height, packed = struct.unpack("<4HB", descriptor)
            frames += 1
            if check_frame is not None:
                check_frame(frames, left + width, top + height)
            write(out, (control or b"") + kind + descriptor)
            control = None
            if packed & 0x80:
                src.copy(3 << ((packed & 7) + 1), out)  # local colour table
            write(out, src.read(1))  # LZW minimum code size
            src.copy_sub_blocks(out)
        else:
            raise damaged("unknown GIF block")
    # Many GIFs in the wild end without a trailer after their last whole frame; browsers show
    # them, so they are accepted and given one. A cut inside a frame was refused above.
    if not frames:
        raise damaged("GIF without frames")
    write(out, b";")
    return frames


def _sub_block(src: Reader) -> bytes:
    size = src.read(1)
    return size + src.read(size[0]) if size != b"\0" else size
