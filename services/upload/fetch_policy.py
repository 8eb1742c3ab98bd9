"""Which addresses an upload from a link may reach: public ones, and the ranges the operator
opened with ``KITTEH_FETCH_ALLOW_NETWORKS``. Everything else (loopback, private, link-local
such as the cloud metadata address 169.254.169.254, multicast, reserved, unique-local, and the
same disguised as an IPv4-mapped, NAT64 or 6to4 IPv6 address) is refused with the reason in
words.

``VettingResolver`` is the aiohttp resolver of the fetch session: it looks the name up once,
checks every address it got, and hands aiohttp exactly those addresses, so the connection goes
to an address that was checked (no second lookup a rebinding DNS server could answer
differently). IP literals never reach a resolver in aiohttp: ``check_literal`` vets them before
the request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.abc import AbstractResolver

from shared.config import IPNetwork

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Looks a name up: (host, port) -> the addresses it resolves to, as text. Injectable, so tests
# resolve names without DNS.
NameLookup = Callable[[str, int], Awaitable[list[str]]]

UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT


class RefusedAddress(OSError):
    """An address Kitteh will not fetch from. An OSError, so that aiohttp passes it on from
    the resolver (as ``ClientConnectorError.os_error``)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Unresolvable(OSError):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


async def system_lookup(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _kind(address: IPAddress) -> str | None:
    """Why ``address`` is not public, or None when it is."""
    if address.is_loopback:
        return "a loopback address (this server itself)"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address (such as the cloud metadata service)"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv6Address) and address in UNIQUE_LOCAL:
        return "a unique-local address (a private IPv6 network)"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address (a local network)"
    if address in SHARED:
        return "a shared address (carrier-grade NAT)"
    if not address.is_global:
        return "not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.teredo is not None:
        return address.teredo[1]
    return None


class FetchPolicy:
    def __init__(self, allowed: tuple[IPNetwork, ...] = ()):
        self.allowed = allowed

    def refusal(self, text: str) -> str | None:
        """Why this address is refused, or None when Kitteh may connect to it."""
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return f"{text!r} is not an IP address"
        if isinstance(address, ipaddress.IPv6Address):
            address = address if address.scope_id is None else \
                ipaddress.IPv6Address(text.split("%", 1)[0])
            inner = _embedded_ipv4(address)
            if inner is not None:  # judged as the IPv4 address it stands for
                why = self.refusal(str(inner))
                return None if why is None else f"{address} wraps {inner}: {why}"
        if any(address.version == net.version and address in net for net in self.allowed):
            return None
        kind = _kind(address)
        return None if kind is None else f"{address} is {kind}"

    def check(self, host: str, text: str) -> None:
        why = self.refusal(text)
        if why is not None:
            named = "" if host == text else f"{host} resolves to "
            raise RefusedAddress(f"Refused to fetch: {named}{why}. Kitteh fetches links from "
                                 "public addresses only.")


def literal_address(host: str) -> str | None:
    """The host as an IP address, when it is one (``[::1]`` is given as ``::1``)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


class VettingResolver(AbstractResolver):
    def __init__(self, lookup: NameLookup, policy: FetchPolicy):
        self.lookup = lookup
        self.policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[Any]:
        try:
            addresses = await self.lookup(host, port)
        except (OSError, UnicodeError) as error:
            raise Unresolvable(f"The name {host} does not resolve ({error}).") from None
        if not addresses:
            raise Unresolvable(f"The name {host} does not resolve.")
        for address in addresses:  # every one: a name must not mix public and private ones
            self.policy.check(host, address)
        return [{"hostname": host, "host": address, "port": port,
                 "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}
                for address in addresses]

    async def close(self) -> None:
        pass
