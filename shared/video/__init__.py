"""Video: MP4, MOV and WebM uploads, and animations played as video (issue 21).

Every FFmpeg call (PyAV) on an uploaded file runs in a child process (``shared.video.child``),
the way HEIC's first decode does (``shared.isolated``): FFmpeg's demuxers and decoders parse
attacker-chosen bytes, and a crash or a hang there must cost a 415, never a service.

- ``sniff``: MP4, MOV and WebM from their first bytes (the format registry's sniffers).
- ``limits``: what a video may be (streams, codecs, sizes, rates, duration), checked on the
  demuxer's view before a frame is decoded.
- ``probe``, ``remux``, ``poster``: the upload's work, in the child: read the header, copy the
  compressed streams into a new container without metadata, decode one frame for the poster.
- ``transcode``: the renditions (web MP4, AV1 WebM, an animation's MP4), in the resize
  service's background child.
- ``isolated``: the parent's side of the child (timeouts, limits, errors as 4xx).
"""
