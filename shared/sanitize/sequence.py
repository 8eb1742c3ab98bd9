"""Animated AVIF (``avis``): the ``moov`` box of an image sequence, walked and cleaned.

An AVIF sequence keeps its frames as samples of a track, like an MP4: ``moov`` > ``trak`` >
``mdia`` > ``minf`` > ``stbl``, whose tables (``stsz`` sizes, ``stco``/``co64`` chunk offsets,
``stsc`` samples per chunk) locate every frame in ``mdat``. This walk bounds every count, finds
the frames' bytes so the rewrite (``shared.sanitize.heif``) copies them and zeros the rest of
``mdat`` as it does for items, and lists what is metadata: user data (``udta``: a phone's
location, ``©xyz``), ``meta`` boxes inside the movie, tracks that are not pictures (timed
metadata), and in a picture track every box that playing it does not need. Those become
``free`` boxes of the same size, so no offset moves. The creation and modification times of
the movie, its tracks and their media become zeros. Picture tracks (``pict``, ``vide``) and
their alpha (``auxv``) are kept byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from shared.sanitize.errors import damaged, too_many

MAX_MOOV_BYTES = 16 * 1024 * 1024  # 1,000 frames' tables take ~20 KiB
MAX_TRACKS = 8  # colour and alpha, and room for a thumbnail track or two
MAX_SAMPLES = 100_000  # all tracks; frames are held to KITTEH_MAX_FRAMES after this
MAX_CHUNKS = 100_000
PICTURE_HANDLERS = frozenset({b"pict", b"vide", b"auxv"})
CONTAINERS = frozenset({b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"})
# What a picture track needs to be played, copied as it is; any other box in a track (user
# data, meta, anything unknown, which could hold whatever a writer put there) becomes free.
KEPT = frozenset({b"tkhd", b"tref", b"elst", b"mdhd", b"hdlr", b"vmhd", b"nmhd", b"dref",
                  b"stsd", b"stts", b"stsc", b"stsz", b"stco", b"co64", b"stss", b"ctts",
                  b"sdtp", b"sgpd", b"sbgp", b"cslg", b"colr", b"pasp"})
DATED = frozenset({b"mvhd", b"tkhd", b"mdhd"})  # FullBoxes starting with two times


@dataclass
class Tracks:
    frames: int = 0  # samples of the first picture track
    width: int = 0  # its tkhd size, as shown (pixels)
    height: int = 0
    samples: list[tuple[int, int]] = field(default_factory=list)  # file (start, end) kept
    blanked: list[tuple[int, int]] = field(default_factory=list)  # moov offsets: free boxes
    dates: list[tuple[int, int]] = field(default_factory=list)  # moov offsets: zeros


def read(fp: BinaryIO, start: int, end: int) -> tuple[bytes, Tracks]:
    """The ``moov`` box at ``start``..``end`` of the file, and what the rewrite needs."""
    from shared.sanitize.isobmff import read_boxes  # the box reader; it imports this module

    if end - start > MAX_MOOV_BYTES:
        raise too_many("bytes of HEIF sequence tables", MAX_MOOV_BYTES)
    fp.seek(start)
    data = fp.read(end - start)
    tracks = Tracks()
    header = 16 if data[4:8] == b"moov" and struct.unpack(">I", data[:4])[0] == 1 else 8
    traks = 0
    for box in read_boxes(data, header, len(data), 1, 1000, "boxes in a HEIF sequence"):
        if box.type == b"trak":
            traks += 1
            if traks > MAX_TRACKS:
                raise too_many("tracks in a HEIF sequence", MAX_TRACKS)
            _track(data, box, tracks, read_boxes)
        elif box.type in DATED:
            tracks.dates.append(_dates(data, box))
        elif box.type != b"mvex":  # udta, meta, and anything unknown
            tracks.blanked.append((box.start, box.end))
    if tracks.frames < 1:
        raise damaged("HEIF sequence without a picture track")
    return data, tracks


def _track(data: bytes, trak, tracks: Tracks, read_boxes) -> None:
    found: dict[bytes, object] = {}
    dated = []
    kept_out = []

    def visit(start: int, end: int, depth: int) -> None:
        for box in read_boxes(data, start, end, depth, 100, "boxes in a HEIF track"):
            if box.type in CONTAINERS:
                visit(box.body, box.end, depth + 1)
            elif box.type in DATED:
                dated.append(box)
                found.setdefault(box.type, box)
            elif box.type in KEPT:
                found.setdefault(box.type, box)
            else:
                kept_out.append((box.start, box.end))

    visit(trak.body, trak.end, 2)
    hdlr = found.get(b"hdlr")
    handler = data[hdlr.body + 8:hdlr.body + 12] if hdlr is not None else b""
    if handler not in PICTURE_HANDLERS:  # timed metadata and anything else: not served
        tracks.blanked.append((trak.start, trak.end))
        return
    tracks.blanked.extend(kept_out)
    tracks.dates.extend(_dates(data, b) for b in dated)
    samples = _samples(data, found)
    if tracks.frames == 0 and handler != b"auxv":
        tracks.frames = len(samples)
        tkhd = found.get(b"tkhd")
        if tkhd is not None:
            tracks.width, tracks.height = _tkhd_size(data, tkhd)
    if len(tracks.samples) + len(samples) > MAX_SAMPLES:
        raise too_many("samples in a HEIF sequence", MAX_SAMPLES)
    tracks.samples.extend(samples)


def _samples(data: bytes, found: dict) -> list[tuple[int, int]]:
    """Every sample's (start, end) in the file, from the sample tables."""
    stsz, stsc = found.get(b"stsz"), found.get(b"stsc")
    offsets_box = found.get(b"stco") or found.get(b"co64")
    if stsz is None or stsc is None or offsets_box is None:
        raise damaged("HEIF sequence track without its sample tables")
    uniform, count = struct.unpack(">II", _slice(data, stsz.body + 4, 8, stsz.end))
    if count > MAX_SAMPLES:
        raise too_many("samples in a HEIF sequence", MAX_SAMPLES)
    sizes = ([uniform] * count if uniform else
             list(struct.unpack(f">{count}I", _slice(data, stsz.body + 12, 4 * count, stsz.end))))
    wide = offsets_box.type == b"co64"
    (chunks,) = struct.unpack(">I", _slice(data, offsets_box.body + 4, 4, offsets_box.end))
    if chunks > MAX_CHUNKS:
        raise too_many("chunks in a HEIF sequence", MAX_CHUNKS)
    width = 8 if wide else 4
    offsets = struct.unpack(f">{chunks}{'Q' if wide else 'I'}",
                            _slice(data, offsets_box.body + 8, width * chunks, offsets_box.end))
    (runs,) = struct.unpack(">I", _slice(data, stsc.body + 4, 4, stsc.end))
    if runs > MAX_CHUNKS:
        raise too_many("chunk runs in a HEIF sequence", MAX_CHUNKS)
    table = [struct.unpack(">III", _slice(data, stsc.body + 8 + 12 * i, 12, stsc.end))
             for i in range(runs)]
    ranges: list[tuple[int, int]] = []
    sample = 0
    for index, (first, per_chunk, _) in enumerate(table):
        last = table[index + 1][0] if index + 1 < runs else chunks + 1
        if first < 1 or last <= first or last > chunks + 1:
            raise damaged("HEIF sequence chunk table out of order")
        for chunk in range(first, last):
            position = offsets[chunk - 1]
            for _ in range(per_chunk):
                if sample >= count:
                    raise damaged("HEIF sequence chunks list more samples than it has")
                ranges.append((position, position + sizes[sample]))
                position += sizes[sample]
                sample += 1
    if sample != count:
        raise damaged("HEIF sequence samples outside every chunk")
    return ranges


def _tkhd_size(data: bytes, tkhd) -> tuple[int, int]:
    version = data[tkhd.body]
    at = tkhd.body + (88 if version == 1 else 76)  # width, height: 16.16 fixed point
    width, height = struct.unpack(">II", _slice(data, at, 8, tkhd.end))
    return width >> 16, height >> 16


def _dates(data: bytes, box) -> tuple[int, int]:
    length = 16 if data[box.body] == 1 else 8  # creation and modification times
    _slice(data, box.body + 4, length, box.end)
    return box.body + 4, box.body + 4 + length


def _slice(data: bytes, at: int, length: int, end: int) -> bytes:
    if at + length > end:
        raise damaged("HEIF sequence table cut short")
    return data[at:at + length]


def cleaned(data: bytes, tracks: Tracks) -> bytes:
    """The ``moov`` box with its metadata made ``free`` boxes and its times zeros."""
    out = bytearray(data)
    for start, end in tracks.dates:
        out[start:end] = bytes(end - start)
    for start, end in sorted(tracks.blanked):
        size = end - start
        if size >= 1 << 32 or size < 8:
            raise damaged("HEIF sequence box that cannot become free")
        out[start:end] = struct.pack(">I4s", size, b"free") + bytes(size - 8)
    return bytes(out)
