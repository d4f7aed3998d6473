"""The endpoint guard: client-chosen push endpoints reach public addresses only."""

from __future__ import annotations

import httpx
import pytest

from nubo_backend.push.endpoints import (
    EndpointRefused,
    GuardedTransport,
    address_allowed,
    check_endpoint,
    endpoint_origin,
    refused_by_guard,
)
from tests.push_receivers import WebPushReceiver


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "::1", "fe80::1", "fc00::1", "0.0.0.0", "224.0.0.1", "::ffff:127.0.0.1",
                                     "100.64.0.1"])
def test_private_loopback_and_link_local_addresses_are_not_public(address: str) -> None:
    assert not address_allowed(address, allow_private=False)


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_allowed(address, allow_private=False)


def test_the_setting_lets_loopback_and_private_through_for_local_receivers() -> None:
    assert address_allowed("127.0.0.1", allow_private=True) and address_allowed("10.0.0.1", allow_private=True)
    assert not address_allowed("224.0.0.1", allow_private=True)


@pytest.mark.parametrize("url", ["http://push.example.com/x", "ftp://push.example.com/x", "file:///etc/passwd",
                                 "https://user:pw@push.example.com/x", "https:///x", "https://[::1/x"])
def test_only_https_urls_naming_a_host_are_endpoints(url: str) -> None:
    with pytest.raises(EndpointRefused):
        endpoint_origin(url, allow_private=False)


def test_the_origin_is_the_vapid_audience() -> None:
    assert endpoint_origin("https://fcm.googleapis.com/fcm/send/abc", False) == "https://fcm.googleapis.com"
    assert endpoint_origin("http://127.0.0.1:8123/wp/1", True) == "http://127.0.0.1:8123"


@pytest.mark.parametrize("url", ["https://127.0.0.1/x", "https://localhost/x", "https://[::1]:8443/x",
                                 "https://169.254.169.254/latest/meta-data"])
async def test_an_endpoint_resolving_to_a_private_address_is_refused_at_subscription(url: str) -> None:
    with pytest.raises(EndpointRefused):
        await check_endpoint(url, allow_private=False)


async def test_the_transport_refuses_a_private_address_at_connection_time() -> None:
    """DNS rebinding: a host that passed the check and now resolves to 127.0.0.1 is refused when
    connecting (also pins the transport's reliance on httpx building its pool as we expect)."""
    receiver = await WebPushReceiver().start()
    try:
        for allow_private, refused in ((False, True), (True, False)):
            async with httpx.AsyncClient(transport=GuardedTransport(allow_private, 4), timeout=5) as client:
                try:
                    response = await client.post(f"http://localhost:{receiver.port}/wp/unknown", content=b"x")
                except httpx.ConnectError as exc:
                    assert refused and refused_by_guard(exc)
                else:
                    assert not refused and response.status_code == 404
    finally:
        await receiver.stop()
