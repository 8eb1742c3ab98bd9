"""The assets build (the old ``phoenix.digest``), no Node toolchain needed.

``python -m deploy.build_assets OUT_DIR`` copies ``services/gallery/static/`` to OUT_DIR
with each file also under a content-hashed name (``css/app-1a2b3c4d5e6f.css``) and writes
``manifest.json`` mapping plain names to hashed ones. The gallery resolves asset URLs
through that manifest, so a changed file gets a new URL and old ones can be cached forever.
Text files also get a gzipped copy beside them (``app-1a2b3c4d5e6f.css.gz``), at the
highest level, once: the assets nginx sends it as it is (``gzip_static on``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sys
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "services" / "gallery" / "static"
HASH_LENGTH = 12
COMPRESSIBLE = {".css", ".js", ".svg", ".json", ".txt", ".html"}


def write_with_gzip(target: Path, content: bytes) -> None:
    target.write_bytes(content)
    if target.suffix in COMPRESSIBLE:
        # mtime=0: the same input always gives the same bytes (reproducible builds).
        target.with_name(target.name + ".gz").write_bytes(gzip.compress(content, 9, mtime=0))


def fingerprinted(relative: Path, content: bytes) -> Path:
    digest = hashlib.sha256(content).hexdigest()[:HASH_LENGTH]
    return relative.with_name(f"{relative.stem}-{digest}{relative.suffix}")


def build(out_dir: Path, source: Path = STATIC) -> dict[str, str]:
    staging = out_dir.with_name(out_dir.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    manifest: dict[str, str] = {}
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source)
        content = path.read_bytes()
        hashed = fingerprinted(relative, content)
        for name in (relative, hashed):
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            write_with_gzip(target, content)
        manifest[relative.as_posix()] = hashed.as_posix()
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    # Swap the whole directory in, so a serving nginx never sees a half-built tree.
    old = out_dir.with_name(out_dir.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return manifest


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m deploy.build_assets OUT_DIR", file=sys.stderr)
        return 2
    manifest = build(Path(argv[1]).resolve())
    print(f"kitteh assets: {len(manifest)} file(s) fingerprinted into {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
