"""The stored original: the upload's video and audio packets copied, unchanged, into a new
container that carries nothing else.

Kept: the first video stream (not a cover picture) and the first audio stream the container
can hold, their codec parameters, and the display matrix (the rotation players apply: it is
how the picture is meant to be seen, not private). Not copied, because the new container is
written from scratch: container and stream metadata (QuickTime ``©xyz`` and
``com.apple.quicktime.location.ISO6709``, ``udta``/``meta`` atoms, XMP, Matroska tags),
chapters, data and subtitle streams (iPhone's timed metadata tracks), attachments and
embedded covers. ``+bitexact``: no encoder tag or creation time is invented, and the same
upload always gives the same bytes.

The header is checked first (``shared.video.limits``), then every packet is counted as it is
copied: more packets or a later timestamp than the limits allow stops the copy (a header may
lie), and fewer packets than the header's sample tables promise means the file is truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from shared.video.limits import (
    AUDIO_CODECS,
    DAMAGED,
    DECODERS,
    NOT_A_VIDEO,
    Refused,
    VideoLimits,
    check_codec,
    check_duration,
    check_frame_size,
    check_rate,
    check_streams,
)

# (Streams are added with opaque=True: from the decoder itself, no encoder looked up; an
# AV1 stream is decoded by "libdav1d", a name no encoder has.)
# Registry name -> (FFmpeg demuxer, muxer, family of codec rules).
CONTAINERS = {"MP4": ("mov", "mp4", "mov"), "MOV": ("mov", "mov", "mov"),
              "WEBM": ("matroska", "webm", "webm")}
# A truncated MP4 whose sample tables survived still lists every sample: allow a few fewer
# packets than listed (edit lists, a final sample the demuxer drops) before calling it cut.
MISSING_PACKET_SLACK = 2


@dataclass(frozen=True)
class Remuxed:
    width: int  # as coded (the poster's decode says how it is displayed)
    height: int
    duration: float  # seconds, from the packets
    codec: str
    fps: float
    audio: bool


def open_input(path: Path, format_name: str):
    """The upload, opened with only the demuxer its first bytes named, only local files
    (no references to other files or URLs) and only the decoders Kitteh accepts."""
    demuxer = CONTAINERS[format_name][0]
    try:
        return av.open(str(path), format=demuxer,
                       options={"protocol_whitelist": "file", "codec_whitelist": DECODERS,
                                "enable_drefs": "0"})
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        raise Refused(415, DAMAGED) from None


def remux(source: Path, target: Path, format_name: str, limits: VideoLimits) -> Remuxed:
    _, muxer, family = CONTAINERS[format_name]
    with open_input(source, format_name) as src:
        check_streams(len(src.streams))
        video = _main_video(src, family)
        width, height = video.codec_context.width, video.codec_context.height
        check_frame_size(width, height, limits)
        fps = float(video.average_rate or video.guessed_rate or 0)
        check_rate(fps)
        if src.duration is not None:
            check_duration(src.duration / av.time_base, limits)
        audio = next((s for s in src.streams.audio
                      if s.codec_context.codec.canonical_name in AUDIO_CODECS[family]), None)
        with av.open(str(target), "w", format=muxer, options={"fflags": "+bitexact"}) as out:
            streams = {video: out.add_stream_from_template(video, opaque=True)}
            streams[video].codec_context.codec_tag = video.codec_context.codec_tag
            if audio is not None:
                streams[audio] = out.add_stream_from_template(audio, opaque=True)
            counted = _copy(src, out, streams, video, limits)
    return Remuxed(width, height, counted, video.codec_context.codec.canonical_name, fps,
                   audio is not None)


def _main_video(src, family: str):
    videos = [s for s in src.streams.video
              if not s.disposition & av.stream.Disposition.attached_pic]
    if not videos:
        raise Refused(415, NOT_A_VIDEO)
    check_codec(family, videos[0].codec_context.codec.canonical_name)
    return videos[0]


def _copy(src, out, streams: dict, video, limits: VideoLimits) -> float:
    """Copy the packets; returns the video's duration in seconds from its timestamps."""
    packets, last = 0, Fraction(0)
    try:
        for packet in src.demux(list(streams)):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            if packet.stream is video:
                packets += 1
                if packets > limits.max_video_packets:
                    raise Refused(422, "This video has too many frames for its length limit "
                                       f"({limits.max_seconds:,} seconds).")
                if packet.pts is not None and packet.time_base is not None:
                    end = (packet.pts + (packet.duration or 0)) * packet.time_base
                    last = max(last, end)
                    check_duration(float(last), limits)
            packet.stream = streams[packet.stream]
            out.mux(packet)
    except av.error.FFmpegError:
        raise Refused(415, DAMAGED) from None
    promised = video.frames  # the sample tables' count (0 when the container has none)
    if packets == 0 or (promised and packets + MISSING_PACKET_SLACK < promised):
        raise Refused(415, DAMAGED)
    return float(last - Fraction(video.start_time or 0) * (video.time_base or 1))
