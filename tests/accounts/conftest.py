"""The account recovery tests (#28): a real server that mails a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from nubo_backend.stores import Stores
from tests.accounts.mail_support import MailCatcher
from tests.accounts.support import mail_env, running_server
from tests.support import ServerProcess


@pytest.fixture(scope="module")
def catcher() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="module")
def server_settings() -> dict[str, str]:
    """More NUBO_* settings for a module's mail_server (a module overrides this fixture)."""
    return {}


@pytest.fixture(scope="module")
def mail_server(
    test_env: dict[str, str], session_stores: Stores, catcher: MailCatcher, server_settings: dict[str, str]
) -> Iterator[ServerProcess]:
    """A real `nubo serve` whose mails go to `catcher`, shared by a module's tests."""
    with running_server({**test_env, **mail_env(catcher), **server_settings}) as proc:
        yield proc


@pytest.fixture
async def mail_api(
    mail_server: ServerProcess, stores: Stores, catcher: MailCatcher
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on mail_server, stores emptied and no mail received yet."""
    catcher.clear()
    async with httpx.AsyncClient(base_url=mail_server.url, timeout=10) as client:
        yield client
