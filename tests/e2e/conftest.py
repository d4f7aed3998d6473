"""End-to-end WebSocket tests: every client a test opened is closed when it ends. Tests of
the wire protocol itself (frames, close codes, refusals) use raw sockets (ws_support.py);
tests of delivery drive the server through nubo_backend.client (the `login` fixture)."""

from collections.abc import AsyncIterator

import pytest

from tests.client.conftest import login  # noqa: F401 - the fixture, shared with tests/client/
from tests.e2e.ws_support import OPENED


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while OPENED:
        ws = OPENED.pop()
        await ws.close()
