"""Endpoint URLs chosen by clients, fetched only at public addresses (server-side request forgery).

A Web Push endpoint is a URL the client picks, so it could name our own PostgreSQL, a cloud
metadata service or anything on the private network. It is checked when subscribing (scheme,
host, every address it resolves to), and again at every connection: `GuardedTransport`
resolves the host itself, refuses any non-public address, and connects to the address it
checked, so a name that resolves to a public address at subscription and to 127.0.0.1 at
send time (DNS rebinding) is refused too. TLS still verifies the certificate of the name.

`NUBO_PUSH_ALLOW_PRIVATE_ENDPOINTS=true` (tests, development) lets `http://` and private or
loopback addresses through, for local push services.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx


class EndpointRefused(Exception):
    """The endpoint may not be pushed to; the message says why."""


def endpoint_origin(url: str, allow_private: bool) -> str:
    """`scheme://host[:port]` of an acceptable endpoint URL (the VAPID audience), or EndpointRefused."""
    if not url.isascii() or any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise EndpointRefused("the endpoint must be a URL without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise EndpointRefused("not a URL") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise EndpointRefused("the endpoint must be an https URL")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise EndpointRefused("the endpoint must name a host, without credentials")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def address_allowed(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    if allow_private and (ip.is_loopback or ip.is_private or ip.is_link_local):
        return True
    return ip.is_global


async def public_addresses(host: str, port: int, allow_private: bool) -> list[str]:
    """The addresses host resolves to, all of which must be allowed (else EndpointRefused):
    one private answer among public ones refuses the host, since any of them may be used."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise EndpointRefused(f"the endpoint's host does not resolve ({reason})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses or not all(address_allowed(a, allow_private) for a in addresses):
        raise EndpointRefused("the endpoint's host resolves to a non-public address")
    return addresses


async def check_endpoint(url: str, allow_private: bool) -> str:
    """Check an endpoint URL as given at subscription; returns its origin."""
    origin = endpoint_origin(url, allow_private)
    parts = urlsplit(url)
    await public_addresses(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), allow_private)
    return origin


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses it resolved and allowed itself."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None, socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await public_addresses(host, port, self.allow_private)
        except EndpointRefused as exc:
            raise httpcore.ConnectError(f"refused: {exc}") from exc
        return await self.inner.connect_tcp(addresses[0], port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport on a connection pool whose connections go through `_GuardedBackend`.

    httpx takes no network backend, so the pool it built is replaced by one that has it (the
    one place we lean on httpx's internals; tests/test_push_endpoints.py pins it)."""

    def __init__(self, allow_private: bool, max_connections: int, keepalive_expiry: float = 30.0) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            http2=True,  # push services speak it (over TLS, by ALPN): one connection per service
            network_backend=_GuardedBackend(allow_private),
        )


def refused_by_guard(exc: BaseException) -> bool:
    """Whether a connection error is the guard refusing the address (the endpoint is then dropped)."""
    return isinstance(exc, httpx.ConnectError) and str(exc).startswith("refused:")
