"""The one tag kept: the EXIF orientation, as a minimal EXIF block holding only it."""

from __future__ import annotations

from PIL import ExifTags, Image


def orientation_exif(orientation: int) -> bytes:
    """A TIFF structure (with the ``Exif\\0\\0`` prefix JPEG wants) holding only orientation."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif.tobytes()
