"""The renditions: a web MP4 and an AV1 WebM of a video, and an MP4 of an animation.

Blocking PyAV work, run only in the child process (``shared.video.child``) at a low CPU
priority. The settings are in ``RENDITIONS``; ``python -m bench.video`` compares this code
with the ``ffmpeg`` command line given the same settings.

Frames go through one FFmpeg filter graph, the same filters ``ffmpeg`` would use: turned
upright by the display matrix (phones record sideways and say so in the track header; the
renditions carry no matrix, so every player shows them upright), at most ``max_width`` wide
(even sizes: 4:2:0 needs them), at most ``max_fps`` frames a second, in yuv420p.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import av.filter

from shared.video.catalog import MAX_WIDTH, output_size
from shared.video.remux import open_input

MAX_FPS = 30
ENCODER_THREADS = 2  # the background's share: resize leaves the other core to uploads
DEFAULT_FRAME_MS = 100  # what browsers show a GIF frame of no (or 0) delay for


@dataclass(frozen=True)
class Rendition:
    name: str  # the JSON key and rendition row: "mp4", "av1"
    extension: str  # the stored file: play.<extension>
    content_type: str
    container: str  # FFmpeg muxer
    video_codec: str
    video_options: dict[str, str]
    audio_codec: str
    audio_rate: int
    audio_bitrate: int
    container_options: dict[str, str] = field(default_factory=dict)
    pixel_format: str = "yuv420p"


# H.264 High at CRF 23 (x264's default quality) and "veryfast": the web MP4 plays
# everywhere, is made soon after the upload, and is not the smallest file (that is AV1's).
MP4 = Rendition("mp4", "mp4", "video/mp4", "mp4", "libx264",
                {"crf": "23", "preset": "veryfast", "profile": "high"},
                "aac", 48000, 128_000, {"movflags": "+faststart"})
# SVT-AV1 preset 10 (its fast end that still beats VP9 on bytes) at CRF 35; Opus audio.
AV1 = Rendition("av1", "webm", "video/webm", "webm", "libsvtav1",
                {"crf": "35", "preset": "10"}, "libopus", 48000, 96_000)
RENDITIONS = {r.name: r for r in (MP4, AV1)}
# An animation's MP4: no audio, a higher quality (flat colours and text show CRF 23's blocks)
# and a slower preset (animations are small; bytes matter more than the CPU here).
ANIMATION_MP4 = Rendition("mp4", "mp4", "video/mp4", "mp4", "libx264",
                          {"crf": "20", "preset": "slow", "profile": "high", "tune": "animation"},
                          "", 0, 0, {"movflags": "+faststart"})


@dataclass(frozen=True)
class Made:
    width: int
    height: int
    bytes: int


def upright_filters(rotation: float) -> list[tuple[str, str]]:
    """What ``ffmpeg``'s autorotate inserts for a display matrix (``rotation`` as FFmpeg
    reports it: degrees counterclockwise)."""
    turn = round(-rotation / 90) % 4
    return {0: [], 1: [("transpose", "clock")], 2: [("hflip", ""), ("vflip", "")],
            3: [("transpose", "cclock")]}[turn]


def transcode_video(source: Path, target: Path, rendition: Rendition,
                    max_width: int = MAX_WIDTH, max_fps: int = MAX_FPS,
                    format_name: str | None = None) -> Made:
    """One rendition of a (remuxed, already checked) video: its first video stream and its
    first audio stream, if any. ``format_name``: the registry's name of the source's
    format, opened as the upload was (one demuxer, local files, known decoders)."""
    with (open_input(source, format_name) if format_name else av.open(str(source))) as src:
        video = src.streams.video[0]
        audio = src.streams.audio[0] if src.streams.audio else None
        rotation = _rotation(video)
        upright = (video.codec_context.height, video.codec_context.width) \
            if round(rotation / 90) % 2 else (video.codec_context.width,
                                              video.codec_context.height)
        width, height = output_size(*upright, max_width)
        rate = video.average_rate or video.guessed_rate or Fraction(max_fps)
        fps = min(Fraction(rate), Fraction(max_fps))
        with av.open(str(target), "w", format=rendition.container,
                     options=rendition.container_options) as out:
            out_video = _video_stream(out, rendition, width, height, fps)
            graph = _graph(video, rotation, width, height, fps, rendition.pixel_format)
            out_audio = _audio_stream(out, rendition) if audio is not None else None
            resampler = av.AudioResampler("fltp" if rendition.audio_codec == "aac" else "flt",
                                          "stereo", rendition.audio_rate,
                                          frame_size=out_audio.codec_context.frame_size or None
                                          ) if out_audio is not None else None
            streams = [video] + ([audio] if audio is not None else [])
            for packet in src.demux(streams):
                for frame in packet.decode():
                    if packet.stream is video:
                        graph.vpush(frame)
                        _drain_graph(graph, out, out_video)
                    elif resampler is not None and out_audio is not None:
                        for chunk in resampler.resample(frame):
                            out.mux(out_audio.encode(chunk))
            graph.vpush(None)
            _drain_graph(graph, out, out_video)
            out.mux(out_video.encode(None))
            if resampler is not None and out_audio is not None:
                for chunk in resampler.resample(None):
                    out.mux(out_audio.encode(chunk))
                out.mux(out_audio.encode(None))
    return Made(width, height, target.stat().st_size)


def transcode_animation(frames: Iterator[tuple[object, int]], size: tuple[int, int],
                        target: Path, max_width: int = MAX_WIDTH) -> Made:
    """An animation (Pillow frames, composed, with their durations in ms) as a silent
    H.264 MP4 with the same timing: variable frame rate, one timestamp per frame in ms."""
    width, height = output_size(*size, max_width)
    rendition = ANIMATION_MP4
    with av.open(str(target), "w", format="mp4", options=rendition.container_options) as out:
        stream = out.add_stream(rendition.video_codec, options=rendition.video_options)
        stream.width, stream.height, stream.pix_fmt = width, height, rendition.pixel_format
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.framerate = Fraction(25)  # a hint only: timestamps rule
        stream.thread_count = ENCODER_THREADS
        at = 0
        for image, duration in frames:
            frame = av.VideoFrame.from_image(image)  # RGB
            frame = frame.reformat(width, height, rendition.pixel_format,
                                   interpolation="LANCZOS")
            frame.pts, frame.time_base = at, Fraction(1, 1000)
            out.mux(stream.encode(frame))
            at += max(duration, 1)
        out.mux(stream.encode(None))
    return Made(width, height, target.stat().st_size)


def _rotation(stream) -> float:
    """The display matrix's rotation (degrees counterclockwise), from the first frame that
    carries it: FFmpeg hands the stream's matrix to every decoded frame."""
    for frame in stream.container.decode(stream):
        rotation = frame.rotation or 0
        stream.container.seek(0)
        return rotation
    return 0


def _video_stream(out, rendition: Rendition, width: int, height: int, fps: Fraction):
    stream = out.add_stream(rendition.video_codec, rate=fps, options=rendition.video_options)
    stream.width, stream.height, stream.pix_fmt = width, height, rendition.pixel_format
    stream.thread_count = ENCODER_THREADS
    return stream


def _audio_stream(out, rendition: Rendition):
    stream = out.add_stream(rendition.audio_codec, rate=rendition.audio_rate)
    stream.layout = "stereo"
    stream.bit_rate = rendition.audio_bitrate
    return stream


def _graph(video, rotation: float, width: int, height: int, fps: Fraction,
           pixel_format: str) -> av.filter.Graph:
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=video)]
    for name, argument in [*upright_filters(rotation), ("scale", f"{width}:{height}"),
                           ("fps", f"{fps.numerator}/{fps.denominator}"),
                           ("format", pixel_format)]:
        nodes.append(graph.add(name, argument))
    nodes.append(graph.add("buffersink"))
    graph.link_nodes(*nodes).configure()
    return graph


def _drain_graph(graph: av.filter.Graph, out, stream) -> None:
    while True:
        try:
            frame = graph.vpull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        frame.pict_type = av.video.frame.PictureType.NONE  # let the encoder choose
        out.mux(stream.encode(frame))


def animation_from_file(source: Path, format_name: str, target: Path,
                        max_width: int = MAX_WIDTH) -> Made:
    """An animated GIF, APNG or WebP (already accepted at upload) as MP4: Pillow composes
    each frame (disposal, blending), transparency is shown on white as on the page."""
    from PIL import Image

    from shared.formats import BY_NAME

    fmt = BY_NAME[format_name]
    with Image.open(source, formats=[fmt.pillow_name]) as img:
        size = output_size(*img.size, max_width)

        def frames() -> Iterator[tuple[object, int]]:
            for index in range(img.n_frames):
                img.seek(index)
                frame = img.convert("RGBA")
                duration = int(img.info.get("duration") or DEFAULT_FRAME_MS)
                flat = Image.new("RGB", frame.size, (255, 255, 255))
                flat.paste(frame, mask=frame.getchannel("A"))
                yield flat.resize(size, Image.Resampling.LANCZOS), duration

        return transcode_animation(frames(), size, target, max_width)
