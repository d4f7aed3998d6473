"""Client tests: every Nubo a test made is closed when it ends."""

from collections.abc import AsyncIterator

import pytest

from nubo_backend.client import Nubo
from tests.factories import PASSWORD, TestUser


@pytest.fixture
async def login() -> AsyncIterator:
    """`await login(server_or_urls, user)`: a Nubo client logged in as user (closed after the test)."""
    made: list[Nubo] = []

    async def make(where, user: TestUser, **kwargs) -> Nubo:
        urls = [s.url for s in where] if isinstance(where, list | tuple) else where.url
        client = await Nubo.login(urls, user.username, PASSWORD, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
