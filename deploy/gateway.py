"""The gateway's public face, for the local runner: HTTPS (``KITTEH_TLS_CERT``,
``KITTEH_TLS_KEY``, ``KITTEH_HTTP_PORT``) and the files origin (``KITTEH_FILES_URL``), read
and checked at start-up, and turned into the templates and values nginx is rendered from.

compose.yaml / compose.tls.yaml set the same template values by hand (docs/docker.md).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from shared.config import ConfigError, Env, files_url, public_url

# The templates in deploy/nginx/ the gateway is made of, in this order (all at http level).
ROUTES = "gateway"
TLS = "gateway-tls"
REDIRECT = "gateway-redirect"

PEM_MARKERS = {"KITTEH_TLS_CERT": "-----BEGIN CERTIFICATE-----",
               "KITTEH_TLS_KEY": "PRIVATE KEY-----"}


@dataclass(frozen=True)
class GatewayTls:
    cert: Path
    key: Path
    http_port: int | None  # plain HTTP that redirects to HTTPS; None: no such port


@dataclass(frozen=True)
class Origins:
    public_url: str  # "" or KITTEH_PUBLIC_URL
    files_url: str  # "" or KITTEH_FILES_URL (then public_url is set, on another host)


ONE_ORIGIN = Origins("", "")  # neither set: every host serves everything


def tls_from_env(env: Env) -> GatewayTls | None:
    """Both KITTEH_TLS_CERT and KITTEH_TLS_KEY, or neither; KITTEH_HTTP_PORT only with them."""
    given = {name: env.raw(name) for name in PEM_MARKERS}
    http_port = env.port("KITTEH_HTTP_PORT") if env.raw("KITTEH_HTTP_PORT") else None
    if not any(given.values()):
        if http_port is not None:
            raise ConfigError("KITTEH_HTTP_PORT is set but HTTPS is not: it only redirects to "
                              "HTTPS, so set KITTEH_TLS_CERT and KITTEH_TLS_KEY too")
        return None
    for name, value in given.items():
        if not value:
            other = next(n for n in given if n != name)
            raise ConfigError(f"{name} is required when {other} is set (HTTPS needs both "
                              "the certificate chain and its private key)")
    return GatewayTls(pem_file("KITTEH_TLS_CERT", given["KITTEH_TLS_CERT"]),
                      pem_file("KITTEH_TLS_KEY", given["KITTEH_TLS_KEY"]), http_port)


def pem_file(name: str, value: str) -> Path:
    """An existing, readable PEM file: nginx would name neither the variable nor the reason."""
    path = Path(value).expanduser().resolve()
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"{name}={value!r}: no such file") from None
    except OSError as error:
        raise ConfigError(f"{name}={value!r} cannot be read: {error.strerror}") from None
    if PEM_MARKERS[name] not in text:
        raise ConfigError(f"{name}={value!r} is not a PEM file (no {PEM_MARKERS[name]!r})")
    return path


def origins_from_env(env: Env) -> Origins:
    return Origins(public_url(env), files_url(env))


def templates(tls: GatewayTls | None) -> list[str]:
    if tls is None:
        return [ROUTES]
    return [ROUTES, TLS] + ([REDIRECT] if tls.http_port is not None else [])


def template_values(tls: GatewayTls | None, origins: Origins, host: str,
                    port: int) -> dict[str, str]:
    """The placeholders of the gateway's templates beyond its routes' upstreams and limits."""
    values = {
        "KITTEH_LISTEN": f"{host}:{port}" + (" ssl http2" if tls else ""),
        "KITTEH_FILES_URL": origins.files_url,
        "KITTEH_PUBLIC_URL": origins.public_url,
        "KITTEH_PORT": str(port),
    }
    if tls is not None:
        values["KITTEH_TLS_CERT"] = str(tls.cert)
        values["KITTEH_TLS_KEY"] = str(tls.key)
        if tls.http_port is not None:
            values["KITTEH_HTTP_LISTEN"] = f"{host}:{tls.http_port}"
    return values


def probe_context() -> ssl.SSLContext:
    """For the runner's own /healthz probe of the gateway on loopback: the certificate names
    the public host, not 127.0.0.1, and the probe asks whether nginx answers, not who it is."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
