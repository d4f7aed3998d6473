"""Which addresses a link preview may be fetched from: public ones only.

A URL a user chose is a server-side request forgery vector: it may name (or a DNS record or a
redirect may lead to) the loopback, the private network, the cloud metadata service. Every
address a host name resolves to is checked here, on every hop, and the connection then goes
to an address that was checked (never a second lookup that could answer differently: DNS
rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Not caught by is_global on every Python: the NAT64 prefix embeds an IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The URL leads to an address that is not public (or to none)."""


def _embedded_v4(ip: IP) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, Teredo's client), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def is_public(ip: IP) -> bool:
    """Globally routable unicast: not loopback, private, link-local, CGNAT (100.64/10),
    multicast, reserved, unspecified, IPv6 ULA, nor any of these inside an IPv6 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)  # the IPv4 address itself, written the IPv6 way
    inner = _embedded_v4(ip)
    if inner is not None and not is_public(inner):
        return False
    return ip.is_global and not ip.is_multicast and not ip.is_reserved and not ip.is_unspecified


async def resolve(host: str, port: int) -> list[str]:
    """Every address host resolves to (the system resolver, off the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


async def checked_address(host: str, port: int, allow_private: bool, resolver: Resolver = resolve) -> str:
    """The address to connect to for host: all of its addresses must be public (one private
    answer among public ones refuses it too), unless allow_private (tests, development)."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
        addresses = [str(literal)]
    except ValueError:
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            raise AddressRefused(f"{host} does not resolve") from exc
    if not addresses:
        raise AddressRefused(f"{host} does not resolve")
    if not allow_private:
        for address in addresses:
            if not is_public(ipaddress.ip_address(address.split("%")[0])):
                raise AddressRefused(f"{host} resolves to a non-public address")
    return addresses[0]
