"""The poster: the video's first frame, upright, as a JPEG the image variants are made from.

The first frame is what a player shows before it plays (``preload="metadata"``), so the
poster and the video agree. Only this frame is decoded at upload: the rest is decoded in the
background when the renditions are made. Decoding stops after ``MAX_PACKETS`` packets without
a picture (a stream of undecodable packets is damage, not a long wait).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
from PIL import Image

from shared.video.limits import DAMAGED, Refused
from shared.video.remux import open_input

MAX_PACKETS = 300
QUALITY = 92  # the variants are re-encoded from it: keep it close to the frame
# FFmpeg's display-matrix rotation (degrees counterclockwise) -> the Pillow transposition
# that shows the frame as players do.
UPRIGHT = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
           270: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class Poster:
    width: int  # upright
    height: int
    rotation: int  # 0, 90, 180 or 270 counterclockwise


def make_poster(source: Path, format_name: str, target: Path) -> Poster:
    with open_input(source, format_name) as src:
        video = src.streams.video[0]  # the remuxed file holds one video stream
        video.codec_context.thread_count = 2
        try:
            frame = _first_frame(src, video)
        except av.error.FFmpegError:
            raise Refused(415, DAMAGED) from None
    rotation = round((frame.rotation or 0) / 90) % 4 * 90
    image = frame.to_image()  # RGB, whatever the source's depth
    if rotation:
        image = image.transpose(UPRIGHT[rotation])
    image.save(target, "JPEG", quality=QUALITY)
    return Poster(image.width, image.height, rotation)


def _first_frame(src, video) -> av.VideoFrame:
    for index, packet in enumerate(src.demux(video)):
        if index >= MAX_PACKETS:
            break
        for frame in packet.decode():
            return frame
    raise Refused(415, DAMAGED)
