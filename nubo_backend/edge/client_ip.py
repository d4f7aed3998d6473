"""The client's address: the TCP peer, or, when the peer is a trusted proxy, what it forwarded.

`X-Forwarded-For` is a list every proxy appends its own peer to, and anyone may start it
with anything. Reading it from the right, each hop that is a trusted proxy vouches for the
address on its left; the first address that is not a trusted proxy is the client. With no
trusted proxy configured (the default) the header is never read, so a client cannot choose
the address its rate limits and log lines are keyed by.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sanic import Request

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TrustedProxiesError(ValueError):
    """The NUBO_TRUSTED_PROXIES value is not a list of addresses or networks."""


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d; compare it as IPv4.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> TrustedProxies:
        """From a comma-separated list of addresses and CIDR networks (`172.20.0.0/16, ::1`)."""
        networks = []
        for item in (part.strip() for part in spec.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise TrustedProxiesError(
                    f"NUBO_TRUSTED_PROXIES: {item!r} is not an IP address or CIDR network "
                    "(e.g. 172.31.250.0/24); leave it empty when no proxy sits in front"
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def client_of(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client address of a connection from peer that carried these X-Forwarded-For values."""
        if not self.networks:
            return peer
        current = _address(peer)
        if current is None or not self.trusts(current):
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                break  # garbage where a trusted proxy should have written an address: stop at that proxy
            current = address
            if not self.trusts(address):
                break
        return str(current)


def client_ip(request: Request) -> str:
    """The request's client address, by the app's trusted proxies (app.ctx.trusted_proxies)."""
    trusted: TrustedProxies = request.app.ctx.trusted_proxies
    peer = request.ip
    if not trusted.networks:
        return peer
    return trusted.client_of(peer, request.headers.getall("x-forwarded-for", []))
