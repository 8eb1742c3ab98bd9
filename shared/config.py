"""Typed, frozen configuration per service, read from the environment in one place.

A bad or missing value raises ``ConfigError`` naming the variable and the value it rejected;
each service's ``__main__`` turns that into one line on stderr and exit status 2.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from shared.settings import BY_NAME

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(ValueError):
    pass


UPLOAD_MODES = ("open", "keys")  # KITTEH_UPLOADS


class Env:
    """Reads variables declared in ``shared.settings``, falling back to their defaults."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self._environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str:
        declared = BY_NAME[name]  # KeyError here means a variable missing from settings.py
        value = self._environ.get(name)
        if value is None or value == "":
            if declared.default is None:
                raise ConfigError(f"{name} is required but not set")
            return declared.default
        return value

    def text(self, name: str) -> str:
        return self.raw(name)

    def integer(self, name: str, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.raw(name)
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a whole number") from None
        if number < minimum or (maximum is not None and number > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ConfigError(f"{name}={value!r} must be {bound}")
        return number

    def port(self, name: str) -> int:
        return self.integer(name, minimum=1, maximum=65535)

    def flag(self, name: str) -> bool:
        value = self.raw(name).strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={value!r} must be 1 or 0")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name).strip().lower()
        if value not in choices:
            raise ConfigError(f"{name}={value!r} must be " + " or ".join(choices))
        return value

    def url(self, name: str, schemes: tuple[str, ...], allow_empty: bool = False) -> str:
        value = self.raw(name)
        if allow_empty and value == "":
            return ""
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.query):
            raise ConfigError(f"{name}={value!r} must be a URL starting with "
                              + " or ".join(f"{s}://" for s in schemes))
        return value.rstrip("/") if parts.scheme.startswith("http") else value

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        """A comma-separated list of CIDR ranges (``10.0.0.0/8, fd00::/8``); empty: none."""
        value = self.raw(name)
        found = []
        for item in value.split(","):
            if not item.strip():
                continue
            try:
                found.append(ipaddress.ip_network(item.strip(), strict=True))
            except ValueError as error:
                raise ConfigError(f"{name}={value!r}: {item.strip()!r} is not a network in CIDR "
                                  f"form such as 10.0.0.0/8 or fd00::/8 ({error})") from None
        return tuple(found)

    def directory(self, name: str) -> Path:
        return Path(self.raw(name)).expanduser().resolve()


def database_url(env: Env) -> str:
    return env.url("DATABASE_URL", ("postgres", "postgresql"))


def public_url(env: Env) -> str:
    value = env.raw("KITTEH_PUBLIC_URL")
    if value == "":
        return ""
    return env.url("KITTEH_PUBLIC_URL", ("http", "https"))


def files_url(env: Env) -> str:
    """KITTEH_FILES_URL, checked against KITTEH_PUBLIC_URL: the gateway tells the two origins
    apart by host, so both are needed and their hosts must differ."""
    value = env.raw("KITTEH_FILES_URL")
    if value == "":
        return ""
    value = env.url("KITTEH_FILES_URL", ("http", "https"))
    public = public_url(env)
    if not public:
        raise ConfigError("KITTEH_FILES_URL is set, so KITTEH_PUBLIC_URL is required too "
                          "(pages and the API are served only on its host)")
    if urlsplit(value).path not in ("", "/"):
        raise ConfigError(f"KITTEH_FILES_URL={value!r} must be an origin without a path "
                          "(the gateway serves /i/ at the root of its host)")
    if urlsplit(value).hostname == urlsplit(public).hostname:
        raise ConfigError(f"KITTEH_FILES_URL={value!r} must be on another host than "
                          f"KITTEH_PUBLIC_URL={public!r}")
    return value


STORAGE_MODES = ("local", "s3")  # KITTEH_STORAGE


@dataclass(frozen=True)
class S3Settings:
    endpoint: str  # "" means AWS S3
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class StoreConfig:
    """Where images are kept (``shared.storage.open_store``). ``storage_dir`` holds the images
    in local mode and, in every mode, the scratch directory of uploads in flight."""

    storage_dir: Path
    mode: str = "local"
    s3: S3Settings | None = None

    @classmethod
    def from_env(cls, env: Env) -> StoreConfig:
        mode = env.choice("KITTEH_STORAGE", STORAGE_MODES)
        s3 = None
        if mode == "s3":
            for name in ("KITTEH_S3_BUCKET", "KITTEH_S3_ACCESS_KEY_ID",
                         "KITTEH_S3_SECRET_ACCESS_KEY"):
                if not env.raw(name):
                    raise ConfigError(f"{name} is required with KITTEH_STORAGE=s3")
            bucket = env.raw("KITTEH_S3_BUCKET")
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
                raise ConfigError(f"KITTEH_S3_BUCKET={bucket!r} is not a valid bucket name "
                                  "(3-63 lower-case letters, digits, dots and hyphens)")
            s3 = S3Settings(
                endpoint=env.url("KITTEH_S3_ENDPOINT", ("http", "https"), allow_empty=True),
                bucket=bucket,
                region=env.text("KITTEH_S3_REGION"),
                access_key_id=env.raw("KITTEH_S3_ACCESS_KEY_ID"),
                secret_access_key=env.raw("KITTEH_S3_SECRET_ACCESS_KEY"))
        return cls(env.directory("KITTEH_STORAGE_DIR"), mode, s3)


@dataclass(frozen=True)
class Limits:
    """What the upload path refuses; published at GET /api/limits."""

    max_upload_bytes: int
    max_side: int
    max_pixels: int
    max_frames: int
    upload_read_timeout: int
    max_animation_work: int = 100_000_000  # frames × pixels: beyond, variants are still
    max_video_bytes: int = 200 * 1024 * 1024  # a video may be larger than an image
    max_video_seconds: int = 300

    @property
    def max_body_bytes(self) -> int:
        """What a request may carry before its file is known to be an image or a video."""
        return max(self.max_upload_bytes, self.max_video_bytes)

    @classmethod
    def from_env(cls, env: Env) -> Limits:
        return cls(
            max_upload_bytes=env.integer("KITTEH_MAX_UPLOAD_BYTES", minimum=1024),
            max_side=env.integer("KITTEH_MAX_SIDE", minimum=1),
            max_pixels=env.integer("KITTEH_MAX_PIXELS", minimum=1),
            max_frames=env.integer("KITTEH_MAX_FRAMES", minimum=1),
            upload_read_timeout=env.integer("KITTEH_UPLOAD_READ_TIMEOUT", minimum=1),
            max_animation_work=env.integer("KITTEH_MAX_ANIMATION_WORK", minimum=0),
            max_video_bytes=env.integer("KITTEH_MAX_VIDEO_BYTES", minimum=1024),
            max_video_seconds=env.integer("KITTEH_MAX_VIDEO_SECONDS", minimum=1),
        )


@dataclass(frozen=True)
class UploadConfig:
    database_url: str
    store: StoreConfig
    host: str
    port: int
    resize_url: str
    public_url: str
    files_url: str
    limits: Limits
    resize_timeout: int
    cache_seconds: int
    log_level: str
    min_free_bytes: int = 0  # /readyz: not ready below this many free bytes on the volume
    uploads: str = "open"  # KITTEH_UPLOADS: open | keys
    # KITTEH_FETCH_ALLOW_NETWORKS: non-public ranges an upload from a link may still reach
    fetch_allow_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> UploadConfig:
        env = Env(environ)
        return cls(
            database_url=database_url(env),
            store=StoreConfig.from_env(env),
            host=env.text("KITTEH_BIND_HOST"),
            port=env.port("KITTEH_UPLOAD_PORT"),
            resize_url=env.url("KITTEH_RESIZE_URL", ("http", "https")),
            public_url=public_url(env),
            files_url=files_url(env),
            limits=Limits.from_env(env),
            resize_timeout=env.integer("KITTEH_RESIZE_TIMEOUT", minimum=1),
            cache_seconds=env.integer("KITTEH_CACHE_SECONDS", minimum=1, maximum=10),
            log_level=log_level(env),
            min_free_bytes=env.integer("KITTEH_MIN_FREE_BYTES", minimum=0),
            uploads=env.choice("KITTEH_UPLOADS", UPLOAD_MODES),
            fetch_allow_networks=env.networks("KITTEH_FETCH_ALLOW_NETWORKS"),
        )


@dataclass(frozen=True)
class ResizeConfig:
    database_url: str
    store: StoreConfig
    host: str
    port: int
    workers: int
    queue: int
    max_pixels: int
    reconcile_interval: float
    log_level: str
    min_free_bytes: int = 0  # /readyz: not ready below this many free bytes on the volume
    max_animation_work: int = 100_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ResizeConfig:
        env = Env(environ)
        workers = env.integer("KITTEH_RESIZE_WORKERS", minimum=0, maximum=256)
        return cls(
            database_url=database_url(env),
            store=StoreConfig.from_env(env),
            host=env.text("KITTEH_BIND_HOST"),
            port=env.port("KITTEH_RESIZE_PORT"),
            workers=workers or os.cpu_count() or 1,
            queue=env.integer("KITTEH_RESIZE_QUEUE", minimum=0),
            max_pixels=env.integer("KITTEH_MAX_PIXELS", minimum=1),
            reconcile_interval=env.integer("KITTEH_RECONCILE_INTERVAL", minimum=1),
            log_level=log_level(env),
            min_free_bytes=env.integer("KITTEH_MIN_FREE_BYTES", minimum=0),
            max_animation_work=env.integer("KITTEH_MAX_ANIMATION_WORK", minimum=0),
        )


@dataclass(frozen=True)
class GalleryConfig:
    database_url: str
    store: StoreConfig
    host: str
    port: int
    public_url: str
    files_url: str
    assets_url: str
    assets_manifest: Path | None
    accel_redirect: bool
    limits: Limits
    log_level: str
    uploads: str = "open"  # KITTEH_UPLOADS: the page asks for a key in "keys" mode
    newest: bool = True  # KITTEH_NEWEST: the Newest grid and the list API

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GalleryConfig:
        env = Env(environ)
        manifest = env.raw("KITTEH_ASSETS_MANIFEST")
        assets_url = env.raw("KITTEH_ASSETS_URL")
        if not assets_url.endswith("/"):
            assets_url += "/"
        return cls(
            database_url=database_url(env),
            store=StoreConfig.from_env(env),
            host=env.text("KITTEH_BIND_HOST"),
            port=env.port("KITTEH_GALLERY_PORT"),
            public_url=public_url(env),
            files_url=files_url(env),
            assets_url=assets_url,
            assets_manifest=Path(manifest).resolve() if manifest else None,
            accel_redirect=env.flag("KITTEH_ACCEL_REDIRECT"),
            limits=Limits.from_env(env),
            log_level=log_level(env),
            uploads=env.choice("KITTEH_UPLOADS", UPLOAD_MODES),
            newest=env.flag("KITTEH_NEWEST"),
        )


def log_level(env: Env) -> str:
    value = env.raw("KITTEH_LOG_LEVEL").upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"KITTEH_LOG_LEVEL={value!r} must be DEBUG, INFO, WARNING or ERROR")
    return value
