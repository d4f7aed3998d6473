"""Helpers shared by the auth tests: accounts and logins made through the real HTTP API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from typing import Any

import httpx

from nubo_backend.jsonutil import dumps

PASSWORD = "password123"
_counter = itertools.count(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signup(api: httpx.AsyncClient, username: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
    """Sign up through the API; returns the 201 body (tokens and user)."""
    username = username or f"member{next(_counter)}"
    response = await api.post(
        "/signup", json={"username": username, "email": f"{username}@example.test", "password": password}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def login(api: httpx.AsyncClient, username: str, password: str = PASSWORD, **headers: str) -> dict[str, Any]:
    response = await api.post("/login", json={"username": username, "password": password}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_jwt(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A JWT built by hand, so that tests can sign it with any header and key (or none)."""
    signing_input = f"{_b64(dumps(header))}.{_b64(dumps(claims))}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
