"""What the local runner starts, where: the data directory, ports and replicas, read from
the environment (``KITTEH_DATA_DIR``, ``KITTEH_*_PORT``, ``KITTEH_*_REPLICAS``...)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.gateway import ONE_ORIGIN, GatewayTls, Origins, origins_from_env, tls_from_env
from shared.config import ConfigError, Env

SERVICES = ("resize", "upload", "gallery")  # start order; resize first, upload calls it
REPLICATED = ("upload", "resize")  # the services that may run as several processes
REPLICA_PORT_STEP = 10  # replica n of a service listens on its port + 10·n
MAX_REPLICAS = 16


@dataclass(frozen=True)
class Replica:
    """One process of a service: ``upload`` is the first, ``upload-2`` the second..."""

    service: str
    index: int
    port: int

    @property
    def name(self) -> str:
        return self.service if self.index == 0 else f"{self.service}-{self.index + 1}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class RunnerConfig:
    data_dir: Path
    database_url: str | None
    gateway_host: str
    ports: dict[str, int]  # gateway, upload, resize, gallery, assets, gateway_status
    replicas: dict[str, int]  # upload, resize, gallery: processes to start
    tls: GatewayTls | None = None  # HTTPS on the gateway port (deploy/gateway.py)
    origins: Origins = ONE_ORIGIN  # KITTEH_PUBLIC_URL, KITTEH_FILES_URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunnerConfig:
        environ = os.environ if environ is None else environ
        env = Env(environ)
        ports = {
            "gateway": env.port("KITTEH_PORT"),
            "upload": env.port("KITTEH_UPLOAD_PORT"),
            "resize": env.port("KITTEH_RESIZE_PORT"),
            "gallery": env.port("KITTEH_GALLERY_PORT"),
            "assets": env.port("KITTEH_ASSETS_PORT"),
            "gateway_status": env.port("KITTEH_GATEWAY_STATUS_PORT"),  # stub_status, loopback
        }
        replicas = {"gallery": 1, **{
            name: env.integer(f"KITTEH_{name.upper()}_REPLICAS", minimum=0, maximum=MAX_REPLICAS)
            for name in REPLICATED}}
        config = cls(
            data_dir=Path(env.raw("KITTEH_DATA_DIR")).expanduser().resolve(),
            database_url=environ.get("DATABASE_URL") or None,
            gateway_host=env.text("KITTEH_GATEWAY_HOST"),
            ports=ports,
            replicas=replicas,
            tls=tls_from_env(env),
            origins=origins_from_env(env),
        )
        taken = [port for _, port in config.all_ports()]
        if len(set(taken)) != len(taken):
            raise ConfigError(f"two parts would share a port: {dict(config.all_ports())}; "
                              f"replicas use the service's port + {REPLICA_PORT_STEP}·n")
        return config

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.gateway_host}:{self.ports['gateway']}/"

    def replica(self, service: str, index: int) -> Replica:
        return Replica(service, index, self.ports[service] + REPLICA_PORT_STEP * index)

    def replicas_of(self, service: str) -> list[Replica]:
        return [self.replica(service, n) for n in range(self.replicas[service])]

    def all_ports(self) -> list[tuple[str, int]]:
        """Every port the stack listens on, named by what listens there."""
        ports = [(name, self.ports[name]) for name in ("gateway", "assets", "gateway_status")]
        if self.tls and self.tls.http_port is not None:
            ports.append(("gateway-http", self.tls.http_port))
        for service in SERVICES:
            # A service with no replicas still reserves its port: the gateway points there.
            ports += [(r.name, r.port) for r in self.replicas_of(service)] \
                or [(service, self.ports[service])]
        return ports

    def upstream(self, service: str) -> list[str]:
        """host:port of every replica; with none, the service's own port (nothing listens
        there until someone starts a process; the gateway handles that as a service down)."""
        return [r.address for r in self.replicas_of(service)] \
            or [f"127.0.0.1:{self.ports[service]}"]
