"""Asset URLs: fingerprinted names from the build's manifest.json, plain names without one."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class AssetManifest:
    base_url: str  # ends with "/"; may be another host (a CDN)
    names: dict[str, str] = field(default_factory=dict)  # "css/app.css" -> "css/app-1a2b3c.css"

    @classmethod
    def load(cls, base_url: str, manifest: Path | None) -> AssetManifest:
        if manifest is None:
            return cls(base_url)
        return cls(base_url, json.loads(manifest.read_text(encoding="utf-8")))

    def url(self, name: str) -> str:
        return self.base_url + self.names.get(name, name)

    @property
    def origin(self) -> str:
        """The base URL's origin when assets live elsewhere, for the CSP; '' when local."""
        if "://" not in self.base_url:
            return ""
        scheme, rest = self.base_url.split("://", 1)
        return f"{scheme}://{rest.split('/', 1)[0]}"
