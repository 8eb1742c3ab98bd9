"""Settings only the resize service reads, beside the shared ``ResizeConfig``.

``shared.config`` holds what several parts share; the sweeper's two knobs are the resize
service's alone, read here with the same ``Env`` rules (declared in ``shared.settings``,
validated, errors naming the variable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import Env, ResizeConfig


@dataclass(frozen=True)
class SweepConfig:
    interval: int  # seconds between sweeps; 0: no periodic sweep
    temp_max_age: int  # seconds before a temp file or a row-less image directory is removed

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SweepConfig:
        env = Env(environ)
        return cls(interval=env.integer("KITTEH_SWEEP_INTERVAL", minimum=0),
                   temp_max_age=env.integer("KITTEH_TEMP_MAX_AGE", minimum=0))


@dataclass(frozen=True)
class ResizeServiceConfig:
    """What ``python -m services.resize`` runs with."""

    resize: ResizeConfig
    sweep: SweepConfig

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ResizeServiceConfig:
        return cls(ResizeConfig.from_env(environ), SweepConfig.from_env(environ))

    # What shared.serve needs to start a service.
    @property
    def host(self) -> str:
        return self.resize.host

    @property
    def port(self) -> int:
        return self.resize.port

    @property
    def log_level(self) -> str:
        return self.resize.log_level
