"""The local runner: the whole Kitteh stack as processes on one machine, no Docker.

``python -m deploy.runner`` (what ``make run`` calls, and what the end-to-end tests start):

1. PostgreSQL: an embedded cluster in the data directory (Unix socket only), unless
   ``DATABASE_URL`` names a server;
2. migrations (``python -m shared.migrate``) and the assets build;
3. resize, upload and gallery (``python -m services.<name>``), each on loopback; upload and
   resize as ``KITTEH_UPLOAD_REPLICAS`` / ``KITTEH_RESIZE_REPLICAS`` processes (default 1;
   replica n listens on the service's port + 10·n; 0 starts none, and the gateway still
   points at the service's port, for a process started by hand or by a test);
4. the assets nginx and the gateway nginx, rendered from ``deploy/nginx/*.conf.template``,
   the gateway balancing over every replica;
5. waits for every ``/healthz``, prints the URL, and supervises: a child that dies once
   the stack is up (a service, a replica, an nginx) is restarted with exponential backoff
   (deploy/supervision.py) while the others keep serving; the embedded PostgreSQL too when
   it crashed (its postmaster.pid left behind), but not when someone stopped it cleanly
   (``pg_ctl stop``: maintenance; the services answer 503 until it is back). A child that
   dies while the stack is still starting stops the runner with the tail of its log: that
   is a configuration problem, which restarting would not fix. SIGINT or SIGTERM stops
   everything it started, gateway first, database last, also while a restart is pending.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from deploy import gateway, nginx
from deploy.postgres import (
    LocalPostgres,
    cluster_dir,
    log_file_for,
    searchable_by_others,
    socket_url,
)
from deploy.processes import Child, clean_stale_pid_files, is_runner
from deploy.runner_config import SERVICES, Replica, RunnerConfig
from deploy.supervision import PostgresWatch, Stop, StopSignals, Watch, describe_exit
from deploy.system import MissingProgram, is_root, require
from shared.config import STORAGE_MODES, ConfigError, Env

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT = 60
TICK = 0.2  # seconds between two looks at the children


class RunnerError(RuntimeError):
    pass


class Stack:
    def __init__(self, config: RunnerConfig):
        self.config = config
        data = config.data_dir
        self.storage_dir = data / "images"
        self.logs = data / "logs"
        self.run_dir = data / "run"
        self.assets_dir = data / "assets"
        self.children: list[Child] = []
        self.watches: list[Watch] = []
        self.stop_signals = StopSignals()  # main() installs it
        self.postgres: LocalPostgres | None = None  # set once this runner started it
        # The embedded cluster's URL is known before it starts: tests start extra service
        # processes with service_env() of a stack that is already running.
        self.cluster_dir = cluster_dir(data)
        # nginx workers run as nobody when started by root, and nobody cannot read a data
        # directory under a private one (a clone in /root): then they run as root, which
        # only ever listens where the runner put it (loopback by default).
        self.nginx_worker_user = "root" if is_root() and not searchable_by_others(data) \
            else None
        self.database_url = config.database_url or socket_url(self.cluster_dir)

    # -- start -------------------------------------------------------------------------

    def start(self) -> None:
        for directory in (self.storage_dir, self.logs, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._claim_data_dir()
        programs = require("nginx")
        self._check_ports_free()
        if not self.config.database_url:
            say("starting PostgreSQL in", self.cluster_dir)
            self.postgres = LocalPostgres(self.cluster_dir,
                                          log_file_for(self.config.data_dir, self.cluster_dir))
            self.postgres.ensure_cluster()
            self.postgres.start()
        self._run_step("migrate", [sys.executable, "-m", "shared.migrate"])
        self._run_step("assets", [sys.executable, "-m", "deploy.build_assets",
                                  str(self.assets_dir)])
        replicas = [r for name in SERVICES for r in self.config.replicas_of(name)]
        for replica in replicas:
            self._start_child(replica.name, [sys.executable, "-m", f"services.{replica.service}"],
                              env=self.service_env(replica),
                              health_url=f"http://127.0.0.1:{replica.port}/healthz")
        for replica in replicas:
            self._wait_healthy(replica.name, replica.port)
        for name in ("assets", "gateway"):
            self._start_nginx(name, programs["nginx"])
        self._wait_healthy("assets", self.config.ports["assets"])
        self._wait_healthy("gateway", self.config.ports["gateway"], self.config.gateway_host,
                           https=self.config.tls is not None)

    def _claim_data_dir(self) -> None:
        marker = str(self.config.data_dir)
        runner_pid = self.run_dir / "runner.lock"
        if runner_pid.exists():
            try:
                other = int(runner_pid.read_text().strip())
            except ValueError:
                other = 0
            if other and other != os.getpid() and is_runner(other) \
                    and Path(f"/proc/{other}").exists():
                raise RunnerError(f"another runner (pid {other}) is using {marker}")
        # Exactly this data directory's children (not those of /tmp/k-10 for /tmp/k-1): the
        # Python ones by the variable they inherit (NUL-terminated as in /proc/<pid>/environ),
        # nginx by its command line (it writes its process title over its environment).
        cleaned = clean_stale_pid_files(self.run_dir, (f"KITTEH_RUNNER_DATA_DIR={marker}\0",
                                                       f" {marker}/nginx/"))
        if cleaned:
            say("stopped leftovers of an earlier run:", ", ".join(cleaned))
        runner_pid.write_text(f"{os.getpid()}\n")

    def _check_ports_free(self) -> None:
        for name, port in self.config.all_ports():
            host = self.config.gateway_host if name.startswith("gateway") else "127.0.0.1"
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, port))
                except OSError:
                    service = name.split("-")[0]
                    variable = {"gateway": "KITTEH_PORT", "gateway-http": "KITTEH_HTTP_PORT"}.get(
                        name, f"KITTEH_{service.upper()}_PORT")
                    raise RunnerError(f"port {port} for {name} is in use; "
                                      f"set {variable} to a free port") from None

    def child_env(self) -> dict[str, str]:
        ports = self.config.ports
        return {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": self.database_url,
            "KITTEH_STORAGE_DIR": str(self.storage_dir),
            "KITTEH_BIND_HOST": "127.0.0.1",
            "KITTEH_UPLOAD_PORT": str(ports["upload"]),
            "KITTEH_RESIZE_PORT": str(ports["resize"]),
            "KITTEH_GALLERY_PORT": str(ports["gallery"]),
            "KITTEH_RESIZE_URL": f"http://127.0.0.1:{ports['resize']}",
            "KITTEH_ASSETS_MANIFEST": str(self.assets_dir / "manifest.json"),
            "KITTEH_ACCEL_REDIRECT": "1",
            "KITTEH_RUNNER_DATA_DIR": str(self.config.data_dir),  # marks our children
        }

    def service_env(self, replica: Replica) -> dict[str, str]:
        """The environment of one service process: its own port and, for an upload replica,
        a resize replica of its own (round robin), so that the eager variant work spreads
        over every resize process. The reconcilers share whatever is left over."""
        env = self.child_env()
        env[f"KITTEH_{replica.service.upper()}_PORT"] = str(replica.port)
        if replica.service == "upload":
            resizers = self.config.upstream("resize")
            env["KITTEH_RESIZE_URL"] = f"http://{resizers[replica.index % len(resizers)]}"
        return env

    def _run_step(self, name: str, command: list[str]) -> None:
        result = subprocess.run(command, env=self.child_env(), cwd=REPO,
                                capture_output=True, text=True)
        with open(self.logs / f"{name}.log", "a") as log:
            log.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RunnerError(f"{name} failed:\n{result.stdout}{result.stderr}")
        say(result.stdout.strip())

    def _start_child(self, name: str, command: list[str], stop_signal=signal.SIGTERM,
                     env: dict[str, str] | None = None, health_url: str | None = None) -> Child:
        child = Child(name, command, self.logs / f"{name}.log", self.run_dir / f"{name}.pid",
                      env or self.child_env(), stop_signal)
        with self.stop_signals.held():
            child.start()
            self.children.append(child)
        self.watches.append(Watch(child, health_url))
        return child

    def nginx_values(self, name: str) -> dict[str, str]:
        ports = self.config.ports
        env = Env()
        values = {
            # The template reads `server ${KITTEH_UPLOAD_ADDR};`: several replicas become
            # several server lines by joining them with "; server ".
            "KITTEH_UPLOAD_ADDR": "; server ".join(self.config.upstream("upload")),
            "KITTEH_RESIZE_ADDR": "; server ".join(self.config.upstream("resize")),
            "KITTEH_GALLERY_ADDR": f"127.0.0.1:{ports['gallery']}",
            "KITTEH_ASSETS_ADDR": f"127.0.0.1:{ports['assets']}",
            "KITTEH_STORAGE_DIR": str(self.storage_dir),
            "KITTEH_STORAGE": env.choice("KITTEH_STORAGE", STORAGE_MODES),
            "KITTEH_ASSETS_ROOT": str(self.assets_dir),
            "KITTEH_MAX_UPLOAD_BYTES": str(env.integer("KITTEH_MAX_UPLOAD_BYTES", minimum=1024)),
            "KITTEH_MAX_BODY_BYTES": str(max(
                env.integer("KITTEH_MAX_UPLOAD_BYTES", minimum=1024),
                env.integer("KITTEH_MAX_VIDEO_BYTES", minimum=1024))),
            "KITTEH_UPLOAD_READ_TIMEOUT": str(env.integer("KITTEH_UPLOAD_READ_TIMEOUT", 1)),
            "KITTEH_RATE_LIMIT": str(env.integer("KITTEH_RATE_LIMIT", minimum=1)),
            "KITTEH_CACHE_SECONDS": str(env.integer("KITTEH_CACHE_SECONDS", 1, 10)),
            "KITTEH_GATEWAY_STATUS_PORT": str(ports["gateway_status"]),
        }
        if name == "gateway":
            values.update(gateway.template_values(self.config.tls, self.config.origins,
                                                  self.config.gateway_host, ports["gateway"]))
        else:
            values["KITTEH_LISTEN"] = f"127.0.0.1:{ports['assets']}"
        return values

    def _start_nginx(self, name: str, binary: Path) -> None:
        work = self.config.data_dir / "nginx" / name
        work.mkdir(parents=True, exist_ok=True)
        # The gateway is its routes plus, with HTTPS, the TLS settings and the redirect server.
        parts = gateway.templates(self.config.tls) if name == "gateway" else [name]
        values = self.nginx_values(name)
        server = work / f"{name}.conf"
        server.write_text("\n".join(
            nginx.render((nginx.TEMPLATES / f"{part}.conf.template").read_text(), values)
            for part in parts))
        main = work / "nginx.conf"
        main.write_text(nginx.main_config(name, work, server, self.nginx_worker_user))
        check = subprocess.run([str(binary), "-t", "-q", "-p", str(work), "-e",
                                str(work / "error.log"), "-c", str(main)],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RunnerError(f"nginx {name} configuration is invalid:\n{check.stderr}")
        # Foreground master, supervised like the others; SIGQUIT is nginx's graceful stop.
        host = self.config.gateway_host if name == "gateway" else "127.0.0.1"
        scheme = "https" if name == "gateway" and self.config.tls else "http"
        self._start_child(f"nginx-{name}", [str(binary), "-p", str(work), "-e",
                                            str(work / "error.log"), "-c", str(main),
                                            "-g", "daemon off;"], stop_signal=signal.SIGQUIT,
                          health_url=f"{scheme}://{host}:{self.config.ports[name]}/healthz")

    def _wait_healthy(self, name: str, port: int, host: str = "127.0.0.1",
                      https: bool = False) -> None:
        url = f"{'https' if https else 'http'}://{host}:{port}/healthz"
        context = gateway.probe_context() if https else None
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self.check_children()
            try:
                with urllib.request.urlopen(url, timeout=2, context=context) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RunnerError(f"{name} did not answer {url} within {READY_TIMEOUT} s")

    # -- supervise and stop -------------------------------------------------------------

    def check_children(self) -> None:
        """While starting: a child that died is fatal (a bad setting, a port taken...)."""
        for child in self.children:
            status = child.exited()
            if status is not None:
                raise RunnerError(f"{child.name} {describe_exit(status)} while starting; "
                                  f"last lines of {child.log_file}:\n{child.log_tail()}")

    def supervise(self) -> None:
        """Once the stack is up: restart what dies, for as long as the runner runs."""
        for watch in self.watches:
            watch.started_at = time.monotonic()
        postgres = PostgresWatch(self.postgres) if self.postgres is not None else None
        while True:
            for watch in self.watches:
                watch.tend(self.stop_signals, say)
            if postgres is not None:
                postgres.tend(say)
            time.sleep(TICK)

    def stop(self) -> None:
        for child in reversed(self.children):  # gateway first, resize last
            child.stop()
        if self.postgres is not None:
            self.postgres.stop()
        # Only our own: a runner refused because another one uses this data directory must
        # leave that one's lock alone.
        lock = self.run_dir / "runner.lock"
        with contextlib.suppress(OSError, ValueError):
            if int(lock.read_text().strip()) == os.getpid():
                lock.unlink()


def say(*parts: object) -> None:
    print("kitteh:", *parts, flush=True)


def main() -> int:
    try:
        config = RunnerConfig.from_env()
    except ConfigError as error:
        print(f"kitteh: configuration error: {error}", file=sys.stderr)
        return 2
    stack = Stack(config)
    stack.stop_signals.install()
    status = 0
    try:
        stack.start()
        say(f"Kitteh is running at {config.url} (data in {config.data_dir}; Ctrl-C stops)")
        if config.origins.files_url:  # then that address answers /healthz and 421 only
            say(f"pages on {config.origins.public_url}, files on {config.origins.files_url} "
                "(each host serves only its own)")
        stack.supervise()
    except Stop as stop:
        say(f"{stop}: stopping")
    except (RunnerError, MissingProgram, ConfigError) as error:
        print(f"kitteh: {error}", file=sys.stderr, flush=True)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stack.stop()
        say("stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
