"""Every URL Kitteh hands out for an image, built in one place.

Pages (and the API) live on ``KITTEH_PUBLIC_URL``; files (``/i/...``) and downloads
(``/img/{token}``) on ``KITTEH_FILES_URL`` when it is set, so user bytes never share the
pages' origin (OWASP's file upload advice). Downloads go with the files: an attachment
is user content too, and the gateway's X-Accel-Redirect to the volume is internal, so it
works on whichever host the request came to. With neither set, URLs are absolute paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class HasUrlSettings(Protocol):
    public_url: str
    files_url: str


@dataclass(frozen=True)
class Urls:
    public_url: str = ""  # "" or an origin (or base URL) without a trailing slash
    files_url: str = ""  # "": files are on the pages' origin

    @classmethod
    def of(cls, config: HasUrlSettings) -> Urls:
        return cls(config.public_url, config.files_url)

    @property
    def files_origin(self) -> str:
        """Where files are served from: the files URL, else the pages' own."""
        return self.files_url or self.public_url

    def page(self, name: str) -> str:
        """The image page: ``/{Name}Kitty``."""
        return f"{self.public_url}/{name}Kitty"

    def album_page(self, name: str) -> str:
        """An album's page: ``/{Name}Album``."""
        return f"{self.public_url}/{name}Album"

    def file(self, relative_path: str) -> str:
        """A file on the volume, ``shard/key/kind.ext`` as Storage lays it out."""
        return f"{self.files_origin}/i/{relative_path}"

    def download(self, token: str) -> str:
        """The original as an attachment (gallery answers, nginx streams)."""
        return f"{self.files_origin}/img/{token}"


# Absolute paths on whichever host was asked: no KITTEH_PUBLIC_URL, no KITTEH_FILES_URL.
RELATIVE = Urls()
