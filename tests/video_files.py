"""Videos the tests make themselves with PyAV: small, a second or two, each with what a
phone or a browser writes that Kitteh must not serve (a location, a maker's tags).

- ``iphone_mov``: QuickTime, HEVC ('hvc1'), recorded sideways with a display matrix that
  turns it upright (rotation -90: coded 320×240, shown 240×320), AAC, and the location as
  iPhones write it (``com.apple.quicktime.location.ISO6709`` in the ``meta`` keys).
- ``android_mp4``: MP4, H.264, wider than the web rendition (1440×810), AAC, location in
  ``udta`` (``©xyz``) as Android's camera writes it.
- ``webm_vp9``: WebM, VP9 + Opus, with Matroska tags (a title and a location).

Each frame has a blue band along its coded top edge and a red bar that grows along the coded
width, so a test can tell which way up a decoded picture is.
"""

from __future__ import annotations

import io
import uuid
from fractions import Fraction

import av
import numpy as np

IPHONE_LOCATION = "+37.7749-122.4194+010.000/"
ANDROID_LOCATION = "+48.8584+002.2945/"
WEBM_LOCATION = "+35.6895+139.6917/"
# Bytes that must appear in no served file: the positions, and the tags that held them.
PRIVATE = (b"37.7749", b"122.4194", b"48.8584", b"002.2945", b"35.6895", b"139.6917",
           b"ISO6709", b"\xa9xyz", b"SecretMaker", b"SecretTitle")


def _frame(index: int, width: int, height: int) -> av.VideoFrame:
    pixels = np.full((height, width, 3), 40, np.uint8)
    pixels[: max(2, height // 8), :] = (0, 0, 255)  # the coded top edge
    pixels[height // 2:, : (index * 8) % width + 8] = (220, 30, 30)
    return av.VideoFrame.from_ndarray(pixels, format="rgb24")


def _tone(stream, seconds: float, rate: int = 48000, layout: str = "mono"):
    samples = int(seconds * rate)
    t = np.arange(samples, dtype=np.float32) / rate
    wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    size = stream.codec_context.frame_size or 1024
    for start in range(0, samples - size + 1, size):
        frame = av.AudioFrame.from_ndarray(wave[None, start:start + size], format="fltp",
                                           layout=layout)
        frame.sample_rate, frame.pts = rate, start
        yield from stream.encode(frame)
    yield from stream.encode(None)


def make_video(container: str, codec: str, size: tuple[int, int], seconds: float, fps: int,
               audio: str | None, metadata: dict[str, str] | None = None,
               container_options: dict[str, str] | None = None, rotation: int = 0,
               codec_tag: str | None = None, video_options: dict[str, str] | None = None,
               ) -> bytes:
    out_file = io.BytesIO()
    with av.open(out_file, "w", format=container, options=container_options or {}) as out:
        # Unique bytes per call, so tests sharing one stack never get each other's upload
        # back (200, the same bytes): a comment, which the remux drops like the rest.
        out.metadata.update({"comment": f"kitteh-test {uuid.uuid4().hex}", **(metadata or {})})
        video = out.add_stream(codec, rate=fps, options=video_options or {})
        video.width, video.height, video.pix_fmt = *size, "yuv420p"
        if codec_tag:
            video.codec_context.codec_tag = codec_tag
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream(audio, rate=48000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for index in range(int(seconds * fps)):
            frame = _frame(index, *size)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            for packet in _tone(sound, seconds):
                out.mux(packet)
    return out_file.getvalue()


def iphone_mov(seconds: float = 1.0) -> bytes:
    return make_video("mov", "libx265", (320, 240), seconds, 30, "aac",
                      {"com.apple.quicktime.location.ISO6709": IPHONE_LOCATION,
                       "com.apple.quicktime.make": "SecretMaker"},
                      {"movflags": "use_metadata_tags"}, rotation=-90, codec_tag="hvc1",
                      video_options={"preset": "ultrafast", "x265-params": "log-level=error"})


def android_mp4(seconds: float = 1.0, size: tuple[int, int] = (1440, 810), fps: int = 15,
                ) -> bytes:
    """FFmpeg's MP4 muxer writes a location as a binary 'loci' box; Android writes the text
    '©xyz' in udta, as QuickTime does. So: muxed as QuickTime, then branded MP4 ('isom' in
    the ftyp box, the same length as 'qt  ')."""
    data = make_video("mov", "libx264", size, seconds, fps, "aac",
                      {"location": ANDROID_LOCATION, "title": "SecretTitle"},
                      video_options={"preset": "ultrafast"})
    assert data[4:8] == b"ftyp" and b"\xa9xyz" in data
    end = int.from_bytes(data[:4], "big")
    return data[:end].replace(b"qt  ", b"isom") + data[end:]


def webm_vp9(seconds: float = 1.0) -> bytes:
    return make_video("webm", "libvpx-vp9", (320, 240), seconds, 15, "libopus",
                      {"title": "SecretTitle", "location": WEBM_LOCATION},
                      video_options={"deadline": "realtime", "cpu-used": "8"})


def small_mp4(seconds: float = 1.0, fps: int = 10, size: tuple[int, int] = (160, 120),
              ) -> bytes:
    """The cheapest valid video: for limits and refusals."""
    return make_video("mp4", "libx264", size, seconds, fps, None,
                      video_options={"preset": "ultrafast"})
