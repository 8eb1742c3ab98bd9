"""Several hosts on one machine: network namespaces joined by a bridge, made by the test.

Each host is a namespace with its own loopback and one veth into a bridge in the root
namespace, on a /24 of its own chosen among the 10.213.x.0/24 networks no route here uses
yet. Hosts get no default route: they reach each other and the root namespace (the
bridge's .1, where the test's load balancer lives), nothing beyond. Names carry a short id
of their own, so runs never collide, and everything is taken down by ``close`` (processes
inside first: a namespace with live processes outlives ``ip netns del``).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path


def ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    command = ["ip", *(["netns", "exec", namespace, "ip"] if namespace else []), *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str

    def command(self, *args: str) -> list[str]:
        """``args`` run inside this host."""
        return ["ip", "netns", "exec", self.namespace, *args]

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.namespace], capture_output=True,
                             text=True).stdout
        return [int(p) for p in out.split()]

    def kill_everything(self) -> list[int]:
        """SIGKILL every process of this host at once, as a machine losing power would."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids


@dataclass
class Network:
    prefix: str  # "10.213.57": hosts are prefix.N/24, the bridge prefix.1
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    hosts: dict[str, Host] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"ktb{self.tag}"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"

    @property
    def cidr(self) -> str:
        return f"{self.prefix}.0/24"

    @classmethod
    def create(cls) -> Network:
        used = ip("route", "show")
        free = [n for n in range(2, 250) if f"10.213.{n}." not in used]
        network = cls(f"10.213.{random.choice(free)}")
        try:
            ip("link", "add", network.bridge, "type", "bridge")
            ip("addr", "add", f"{network.gateway}/24", "dev", network.bridge)
            ip("link", "set", network.bridge, "up")
        except BaseException:
            network.close()
            raise
        return network

    def add_host(self, name: str, number: int) -> Host:
        host = Host(name, f"kt{self.tag}-{name}", f"{self.prefix}.{number}")
        self.hosts[name] = host
        outside = f"kt{self.tag}{number}"  # interface names are 15 characters at most
        ip("netns", "add", host.namespace)
        ip("link", "add", outside, "type", "veth", "peer", "name", "eth0",
           "netns", host.namespace)
        ip("link", "set", outside, "master", self.bridge, "up")
        ip("link", "set", "lo", "up", namespace=host.namespace)
        ip("addr", "add", f"{host.address}/24", "dev", "eth0", namespace=host.namespace)
        ip("link", "set", "eth0", "up", namespace=host.namespace)
        return host

    def close(self) -> None:
        # Again and again: a process killed before its parent may be replaced by it (an
        # nginx master starts a new worker) in the moment before the parent is killed too.
        deadline = time.monotonic() + 20
        while any(h.pids() for h in self.hosts.values()) and time.monotonic() < deadline:
            for host in self.hosts.values():
                host.kill_everything()
            time.sleep(0.1)
        for host in self.hosts.values():
            ip("netns", "del", host.namespace, check=False)
        ip("link", "del", self.bridge, check=False)  # takes the veth ends with it
        self.hosts.clear()

    def leftovers(self) -> list[str]:
        """Namespaces or links of this network still there (for the test's own check)."""
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = ip("-o", "link", "show")
        return [n for n in (*names.split(), *links.split()) if f"kt{self.tag}" in n
                or self.bridge in n]


def namespaces_work() -> None:
    """Fails with a clear message where namespaces cannot be made (not root)."""
    if os.geteuid() != 0:
        raise RuntimeError("the multi-node test makes network namespaces: run it as root")
    Path("/run/netns").mkdir(parents=True, exist_ok=True)
