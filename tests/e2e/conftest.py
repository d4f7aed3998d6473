"""End-to-end WebSocket tests: every client a test opened is closed when it ends."""

from collections.abc import AsyncIterator

import pytest

from tests.e2e.ws_support import OPENED


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while OPENED:
        ws = OPENED.pop()
        await ws.close()
