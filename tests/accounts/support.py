"""Helpers of the account recovery tests: the mail settings of a server, accounts through the API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.accounts.mail_support import MailCatcher
from tests.auth_support import PASSWORD, bearer
from tests.support import ServerProcess

# Starting a server on a loaded 2-core machine takes its time (imports, stores, image workers).
READY_WITHIN = 60.0

PUBLIC_URL = "https://nubo.example.test"


def mail_env(catcher: MailCatcher, **extra: str) -> dict[str, str]:
    return {
        "NUBO_SMTP_URL": catcher.url,
        "NUBO_PUBLIC_URL": PUBLIC_URL,
        "NUBO_MAIL_FROM": "Nubo <no-reply@nubo.example.test>",
        "NUBO_MAIL_RETRY_BASE": "0.2",
        "NUBO_MAIL_RETRY_MAX": "0.5",
        "NUBO_RATE_LIMIT_MAIL": "1000",
        **extra,
    }


async def signup(api: httpx.AsyncClient, username: str, **extra: Any) -> dict[str, Any]:
    headers = extra.pop("headers", {})
    body = {"username": username, "email": f"{username}@example.test", "password": PASSWORD, **extra}
    response = await api.post("/signup", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def me(api: httpx.AsyncClient, access_token: str) -> dict[str, Any]:
    response = await api.get("/me", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    return response.json()


@contextmanager
def running_server(env: dict[str, str]) -> Iterator[ServerProcess]:
    """A real server of the test's own (env over the test environment), stopped after it."""
    proc = ServerProcess(env).start(wait=False)
    try:
        proc.wait_ready(timeout=READY_WITHIN)
        yield proc
    finally:
        proc.stop()
