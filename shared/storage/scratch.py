"""Scratch: local temp files for uploads in flight, in every storage mode.

An upload is streamed to a scratch file, checked and cleaned into a second one, and only then
put into the image store. Scratch is ``tmp/`` in ``KITTEH_STORAGE_DIR``: with the local store
that is the same file system as the images, so putting a file is a rename. The sweeper removes
scratch files a crash left behind (``KITTEH_TEMP_MAX_AGE``).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

UPLOAD_PREFIX = "upload-"


@dataclass(frozen=True)
class Scratch:
    directory: Path

    def prepare(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def new_file(self, prefix: str = UPLOAD_PREFIX) -> Path:
        """An empty, uniquely named file (blocking: call it off the event loop)."""
        fd, name = tempfile.mkstemp(prefix=prefix, dir=self.directory)
        os.close(fd)
        return Path(name)


def scratch_for(storage_dir: Path) -> Scratch:
    return Scratch(storage_dir / "tmp")
