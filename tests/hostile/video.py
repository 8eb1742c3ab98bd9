"""Video bombs and broken videos for the hostile corpus: each is small to send and would be
enormous (or impossible) work if Kitteh trusted it. All refused before a transcoder runs.

Made with PyAV at test time (tests/video_files.py), a fraction of a second each.
"""

from __future__ import annotations

import io

import av
import numpy as np

from tests.hostile.corpus import Case
from tests.video_files import android_mp4, make_video, small_mp4

OVER = 422  # over a limit: "over_limits"


def many_streams(count: int = 40) -> bytes:
    """One tiny video stream and ``count`` silent audio streams, each a few packets."""
    out_file = io.BytesIO()
    with av.open(out_file, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 16, 16, "yuv420p"
        sounds = [out.add_stream("aac", rate=8000) for _ in range(count)]
        for sound in sounds:
            sound.layout = "mono"
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for sound in sounds:
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 8000, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return out_file.getvalue()


def audio_only() -> bytes:
    out_file = io.BytesIO()
    with av.open(out_file, "w", format="mp4") as out:
        sound = out.add_stream("aac", rate=8000)
        sound.layout = "mono"
        for index in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 8000, index * 1024
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return out_file.getvalue()


def stretched(data: bytes, seconds: int) -> bytes:
    """The same packets, each ``seconds`` after the one before: a tiny file that claims (and
    holds) hours of video."""
    source, out_file = av.open(io.BytesIO(data)), io.BytesIO()
    with source, av.open(out_file, "w", format="mp4") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        packets = [p for p in source.demux(video=0) if p.dts is not None]
        for index, packet in enumerate(packets):
            packet.pts = packet.dts = index * seconds * int(1 / packet.time_base)
            packet.stream = stream
            out.mux(packet)
    return out_file.getvalue()


def matroska() -> bytes:
    """A Matroska file (DocType "matroska", not "webm"): not a format Kitteh takes."""
    return make_video("matroska", "libx264", (32, 32), 0.3, 10, None,
                      video_options={"preset": "ultrafast"})


def video_cases() -> list[Case]:
    phone = android_mp4(0.5, (320, 180))
    moov_at_end = small_mp4(0.5)
    return [
        Case("video-absurd-width", make_video("mp4", "libx264", (16000, 16), 0.3, 10, None,
                                              video_options={"preset": "ultrafast"}),
             "wide.mp4", "video/mp4", OVER, "over_limits"),
        Case("video-absurd-frame-rate", small_mp4(0.05, fps=1000, size=(16, 16)),
             "fast.mp4", "video/mp4", OVER, "over_limits"),
        Case("video-forty-streams", many_streams(), "streams.mp4", "video/mp4", OVER,
             "over_limits"),
        Case("video-hours-in-kilobytes", stretched(small_mp4(0.3), 7200), "long.mp4",
             "video/mp4", OVER, "over_limits"),
        Case("video-truncated", phone[: len(phone) * 2 // 3], "cut.mp4", "video/mp4"),
        Case("video-moov-missing", moov_at_end[:64], "head.mp4", "video/mp4"),
        Case("video-garbage-after-ftyp", moov_at_end[:32] + bytes(range(256)) * 8,
             "noise.mp4", "video/mp4"),
        Case("video-audio-only", audio_only(), "song.mp4", "video/mp4"),
        Case("video-matroska-not-webm", matroska(), "film.mkv", "video/x-matroska"),
        Case("video-mpeg4-part2", make_video("mp4", "mpeg4", (32, 32), 0.3, 10, None),
             "old.mp4", "video/mp4"),
        Case("video-named-mp4-but-text", b"#EXTM3U\n#EXT-X-TARGETDURATION:10\nfile:///etc/"
             b"passwd\n", "list.mp4", "video/mp4"),
    ]
