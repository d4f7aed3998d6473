"""Fetching a page (or its image) for a preview: http(s) only, public addresses only (checked
on every hop, connected to as checked), at most `link_preview_max_redirects` redirects, a
byte cap and a time cap for the whole fetch, no compression (a small body cannot inflate
past the cap), a user agent that says who we are, no proxy from the environment."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from nubo_backend import __version__
from nubo_backend.previews.addresses import AddressRefused, Resolver, checked_address, resolve

USER_AGENT = f"NuboLinkPreview/{__version__} (link preview cards; fetches one page per link)"
REDIRECTS = (301, 302, 303, 307, 308)


class FetchRefused(Exception):
    """The URL cannot be previewed: the message says why (logged, never shown to users)."""


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content_type: str  # media type, lower case, without parameters
    charset: str | None
    body: bytes  # at most max_bytes
    truncated: bool


def _pinned(url: str, address: str) -> tuple[str, str, str]:
    """(the URL with its host replaced by the checked address, the Host header, the host)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    ip_host = f"[{address}]" if ":" in address else address
    netloc = ip_host if parts.port is None else f"{ip_host}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, "")), host_header, host


def _check_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"not http(s): {parts.scheme!r}")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise FetchRefused("no host, or credentials in the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused("bad port") from exc
    return parts.hostname, port


async def fetch(
    url: str, *, accept: str, max_bytes: int, time_cap: float, max_redirects: int, allow_private: bool,
    resolver: Resolver = resolve, transport: httpx.AsyncBaseTransport | None = None,
) -> Fetched:
    """GET url under the rules above; FetchRefused when it cannot be had within them.
    `resolver` and `transport` stand in for DNS and the network in tests."""
    try:
        async with asyncio.timeout(time_cap):
            return await _fetch(url, accept, max_bytes, max_redirects, allow_private, resolver, transport)
    except TimeoutError:
        raise FetchRefused(f"took more than {time_cap}s") from None
    except AddressRefused as exc:
        raise FetchRefused(str(exc)) from None
    except httpx.HTTPError as exc:
        raise FetchRefused(f"{type(exc).__name__}: {exc}") from None


async def _fetch(url: str, accept: str, max_bytes: int, max_redirects: int, allow_private: bool,
                 resolver: Resolver, transport: httpx.AsyncBaseTransport | None) -> Fetched:
    async with httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False,
                                 timeout=None) as client:
        for _ in range(max_redirects + 1):
            host, port = _check_url(url)
            address = await checked_address(host, port, allow_private, resolver)
            pinned, host_header, sni = _pinned(url, address)
            headers = {"Host": host_header, "User-Agent": USER_AGENT, "Accept": accept,
                       "Accept-Encoding": "identity"}
            async with client.stream("GET", pinned, headers=headers, extensions={"sni_hostname": sni}) as response:
                if response.status_code in REDIRECTS and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise FetchRefused(f"status {response.status_code}")
                if response.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
                    raise FetchRefused("compressed although asked not to be")
                content_type = response.headers.get("content-type", "")
                media_type = content_type.split(";")[0].strip().lower()
                charset = response.charset_encoding
                body, truncated = bytearray(), False
                async for chunk in response.aiter_raw():
                    body += chunk
                    if len(body) >= max_bytes:
                        truncated = True
                        del body[max_bytes:]
                        break
                return Fetched(url, media_type, charset, bytes(body), truncated)
        raise FetchRefused(f"more than {max_redirects} redirects")
