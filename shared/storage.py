"""Files on the volume: originals and variants, always written atomically.

Layout, under the storage directory (served by nginx at ``/i/``)::

    ab/ab12…(32 hex)/original.jpg
    ab/ab12…/tiny.jpg  large.jpg  monstrous.jpg
    tmp/                   uploads being received (same file system, so rename is atomic)

The directory key is the first 128 bits of the original's sha256, so a URL always names the
same bytes: that is what makes ``Cache-Control: immutable`` true, even if an image is deleted
and uploaded again. Names are never taken from the client.

Everything here is blocking file I/O: callers run it in an executor.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")
TEMP_PREFIX = ".tmp-"


def storage_key(sha256_hex: str) -> str:
    return sha256_hex[:32]


@dataclass(frozen=True)
class Storage:
    root: Path

    @property
    def temp_dir(self) -> Path:
        return self.root / "tmp"

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.temp_dir.mkdir(exist_ok=True)

    def image_dir(self, key: str) -> Path:
        if not KEY_PATTERN.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key[:2] / key

    def path(self, key: str, stem: str, extension: str) -> Path:
        return self.image_dir(key) / f"{stem}.{extension}"

    @staticmethod
    def relative_url_path(key: str, stem: str, extension: str) -> str:
        """The path under ``/i/`` (and under the internal download location)."""
        return f"{key[:2]}/{key}/{stem}.{extension}"

    def new_upload_file(self) -> Path:
        """An empty, uniquely named file in the temp directory for an incoming upload."""
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.temp_dir)
        os.close(fd)
        return Path(name)

    def place(self, temp_file: Path, key: str, stem: str, extension: str) -> Path:
        """Move a finished temp file into place; readers see the old state or the whole file."""
        target = self.path(key, stem, extension)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(temp_file, 0o644)
        os.replace(temp_file, target)
        return target

    def write_bytes(self, key: str, stem: str, extension: str, data: bytes) -> Path:
        """Write ``data`` beside its final name, then rename it into place."""
        target = self.path(key, stem, extension)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.chmod(name, 0o644)
            os.replace(name, target)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return target

    def remove_files(self, key: str, files: list[tuple[str, str]]) -> None:
        """Remove these (stem, extension) files of an image, then its directory and shard if
        that left them empty; never anything else (the same bytes may be arriving again)."""
        for stem, extension in files:
            self.path(key, stem, extension).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: another upload owns it now
            self.image_dir(key).rmdir()
            self.image_dir(key).parent.rmdir()

    def remove_image(self, key: str) -> None:
        shutil.rmtree(self.image_dir(key), ignore_errors=True)
        with contextlib.suppress(OSError):  # the shard directory, if now empty
            self.image_dir(key).parent.rmdir()
