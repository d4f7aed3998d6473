"""The trusted-proxy rule of client_ip.py, on plain values (end to end behind a real Caddy:
tests/deploy/test_proxy_client_ip.py)."""

import pytest

from nubo_backend.edge.client_ip import TrustedProxies, TrustedProxiesError
from nubo_backend.settings import SettingsError

PROXIES = TrustedProxies.parse("172.31.250.0/24, 10.0.0.5, fd00::/8")


def test_without_trusted_proxies_the_header_is_never_read() -> None:
    assert TrustedProxies.parse("").client_of("172.31.250.2", ["203.0.113.9"]) == "172.31.250.2"


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    assert PROXIES.client_of("198.51.100.7", ["203.0.113.9"]) == "198.51.100.7"


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    # The client wrote "1.1.1.1" itself; our proxy appended the address it saw.
    assert PROXIES.client_of("172.31.250.2", ["1.1.1.1, 203.0.113.9"]) == "203.0.113.9"


def test_trusted_hops_are_walked_through_across_repeated_headers() -> None:
    assert PROXIES.client_of("172.31.250.2", ["1.1.1.1, 203.0.113.9", "10.0.0.5"]) == "203.0.113.9"


def test_only_trusted_hops_gives_the_leftmost() -> None:
    assert PROXIES.client_of("172.31.250.2", ["10.0.0.5"]) == "10.0.0.5"


def test_a_trusted_peer_without_the_header_is_the_client() -> None:
    assert PROXIES.client_of("172.31.250.2", []) == "172.31.250.2"


def test_garbage_stops_the_walk_at_the_last_trusted_hop() -> None:
    assert PROXIES.client_of("172.31.250.2", ["203.0.113.9, not-an-ip, 10.0.0.5"]) == "10.0.0.5"


def test_ipv6_and_ipv4_mapped_peers() -> None:
    assert PROXIES.client_of("fd00::1", ["[2001:db8::7]"]) == "2001:db8::7"
    assert PROXIES.client_of("::ffff:172.31.250.2", ["203.0.113.9"]) == "203.0.113.9"


def test_a_malformed_setting_is_refused_naming_the_entry(settings) -> None:
    with pytest.raises(TrustedProxiesError, match="'172.31.250.0/33'"):
        TrustedProxies.parse("172.31.250.0/24, 172.31.250.0/33")
    with pytest.raises(SettingsError, match="NUBO_TRUSTED_PROXIES"):
        settings.replace(trusted_proxies="proxy.local").check()
