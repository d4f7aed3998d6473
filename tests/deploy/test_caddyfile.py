"""deploy/Caddyfile checked by Caddy itself: `caddy validate` with the production
environment, and the JSON `caddy adapt` makes of it (what Caddy will actually run)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.caddy_support import CADDYFILE, caddy_binary, caddy_env

PRODUCTION = {"NUBO_DOMAIN": "nubo.example.com", "NUBO_ACME_EMAIL": "ops@example.com"}


def caddy(tmp_path: Path, command: str, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([caddy_binary(), command, "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                          env=caddy_env(tmp_path, **values), capture_output=True, text=True, timeout=60)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    done = caddy(tmp_path_factory.mktemp("caddy"), "adapt", **PRODUCTION)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_caddy_validates_the_production_caddyfile_without_a_warning(tmp_path) -> None:
    done = caddy(tmp_path, "validate", **PRODUCTION)
    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout + done.stderr
    assert '"level":"warn"' not in done.stderr, done.stderr


def test_the_site_is_the_domain_over_https(adapted) -> None:
    (server,) = adapted["apps"]["http"]["servers"].values()
    assert server["listen"] == [":443"]  # automatic HTTPS: certificates for the host below, :80 redirects
    hosts = [h for node in _walk(server["routes"]) for h in node.get("host", [])]
    assert hosts == ["nubo.example.com"]


def test_every_proxy_route_spreads_over_both_replicas_and_health_checks_ready(adapted) -> None:
    proxies = [node for node in _walk(adapted) if node.get("handler") == "reverse_proxy"]
    assert len(proxies) == 2  # the WebSocket route and the rest
    for proxy in proxies:
        assert [u["dial"] for u in proxy["upstreams"]] == ["api:8080", "api-2:8080"]
        assert proxy["health_checks"]["active"]["uri"] == "/ready"
        assert proxy["load_balancing"]["try_duration"] > 0  # a draining replica's requests go elsewhere


def test_websockets_get_their_own_route_without_deadlines(adapted) -> None:
    (server,) = adapted["apps"]["http"]["servers"].values()
    ws_routes = [node for node in _walk(server["routes"])
                 if any(m.get("path") == ["/ws"] for m in node.get("match", []))]
    assert len(ws_routes) == 1
    (proxy,) = [n for n in _walk(ws_routes[0]["handle"]) if n.get("handler") == "reverse_proxy"]
    assert proxy["load_balancing"]["selection_policy"]["policy"] == "least_conn"
    assert "read_timeout" not in proxy["transport"] and "write_timeout" not in proxy["transport"]
    assert "write_timeout" not in server and "read_timeout" not in server
    assert server["read_header_timeout"] > 0


def test_bodies_are_capped_at_the_largest_upload(adapted) -> None:
    from nubo_backend.settings import Settings

    (limit,) = [node["max_size"] for node in _walk(adapted) if node.get("handler") == "request_body"]
    assert Settings().media_max_upload_bytes < limit < 2 * Settings().media_max_upload_bytes
