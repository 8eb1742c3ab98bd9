"""What a video may be, checked on the demuxer's view of it before a frame is decoded.

A bomb is a small file that makes the server do enormous work: frames of absurd size, an
absurd frame rate, thousands of streams, a duration of days, or a header that lies about any
of these. The header is checked here first; then the remux (``shared.video.remux``) counts
what the packets really hold, and stops at the first one past a limit.

Raised as ``Refused`` (status and message), which the child reports and the parent turns
into the client's 415 or 422.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_STREAMS = 16  # an iPhone MOV has 5 or so (video, audio, metadata tracks)
MAX_FPS = 240  # slow-motion phones record 240; 1000 frames a second is a bomb
# Codecs a video stream may have, by FFmpeg's name: what the issue lists for MP4/MOV (H.264,
# HEVC, AV1) and WebM (VP8, VP9, AV1). Any other is not a video Kitteh accepts.
VIDEO_CODECS = {"mov": frozenset({"h264", "hevc", "av1"}),
                "webm": frozenset({"vp8", "vp9", "av1"})}
# Audio kept in the original beside the video (others are dropped, never refused: the video
# is what was uploaded).
AUDIO_CODECS = {"mov": frozenset({"aac", "mp3", "alac", "opus", "ac3", "eac3"}),
                "webm": frozenset({"opus", "vorbis"})}
# The decoders FFmpeg may use at all in the child (codec_whitelist): nothing else is parsed.
DECODERS = ("h264,hevc,libdav1d,av1,vp8,vp9,libvpx,libvpx-vp9,aac,mp3float,mp3,alac,opus,"
            "libopus,vorbis,ac3,eac3")
NOT_A_VIDEO = ("This file is not a video Kitteh accepts: MP4 or MOV (H.264, HEVC or AV1) or "
               "WebM (VP8, VP9 or AV1).")
DAMAGED = "This video is damaged or truncated and cannot be read."


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class VideoLimits:
    max_side: int
    max_pixels: int
    max_seconds: int

    @property
    def max_video_packets(self) -> int:
        return int(self.max_seconds * MAX_FPS) + MAX_FPS


def check_streams(count: int) -> None:
    if count > MAX_STREAMS:
        raise Refused(422, f"This video has {count:,} streams: at most {MAX_STREAMS} are "
                           "accepted.")


def check_codec(family: str, codec: str) -> None:
    if codec not in VIDEO_CODECS[family]:
        raise Refused(415, NOT_A_VIDEO)


def check_frame_size(width: int, height: int, limits: VideoLimits) -> None:
    if width < 1 or height < 1:
        raise Refused(415, DAMAGED)
    if width > limits.max_side or height > limits.max_side:
        raise Refused(422, f"This video is {width:,}×{height:,} pixels: the limit is "
                           f"{limits.max_side:,} pixels a side.")
    if width * height > limits.max_pixels:
        raise Refused(422, f"This video's frames have {width * height:,} pixels: the limit "
                           f"is {limits.max_pixels:,}.")


def check_rate(fps: float) -> None:
    if fps > MAX_FPS:
        raise Refused(422, f"This video has {fps:,.0f} frames a second: the limit is "
                           f"{MAX_FPS}.")


def check_duration(seconds: float, limits: VideoLimits) -> None:
    if seconds > limits.max_seconds:
        raise Refused(422, f"This video is {seconds:,.0f} seconds long: the limit is "
                           f"{limits.max_seconds:,} seconds.")
