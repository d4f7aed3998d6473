"""Start-up failures of the stores: which are worth retrying, and one short line for each.

A store that is still starting (connection refused, PostgreSQL "starting up") is retried
until the start-up window closes; a store that answers "no" (database missing, wrong
password, malformed URL) will answer the same in 30 s, so it fails at once with the fix.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
from pymongo.errors import ConfigurationError, OperationFailure
from redis.exceptions import AuthenticationError, AuthenticationWrongNumberOfArgsError, ResponseError

from nubo_backend.settings import mask_url

log = logging.getLogger("nubo.stores")
T = TypeVar("T")

_SETTING = {"PostgreSQL": "NUBO_POSTGRES_DSN", "Redis": "NUBO_REDIS_URL", "MongoDB": "NUBO_MONGO_URL"}
# MongoDB's "authentication failed" and "unauthorized".
_MONGO_AUTH_CODES = {13, 18}


class StartupError(Exception):
    """A store cannot be used: unreachable for the whole start-up window, or refusing us."""

    def __init__(self, service: str, url: str, reason: str, fix: str | None = None) -> None:
        if fix is None:
            message = f"{service} unreachable at {mask_url(url)}: {reason}"
        else:
            message = f"{service} at {mask_url(url)}: {reason}; {fix}"
        super().__init__(message)
        self.service = service
        self.permanent = fix is not None
        self.setting = _SETTING.get(service, "its URL")


def short_reason(exc: BaseException) -> str:
    """The cause in one line: pymongo's server-selection errors append the whole topology."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text.split(", Timeout:", 1)[0]
    text = re.sub(r" \(configured timeouts:[^)]*\)", "", text)
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= 200 else reason[:197] + "..."


def _createdb_command(url: str) -> str:
    parts = urlsplit(url)
    user = f" -U {parts.username}" if parts.username else ""
    port = f" -p {parts.port}" if parts.port else ""
    return f"createdb -h {parts.hostname or 'localhost'}{port}{user} {parts.path.lstrip('/') or 'nubo'}"


def permanent_fix(service: str, url: str, exc: BaseException) -> str | None:
    """What to do about an error that retrying cannot cure; None for a transient one."""
    setting = _SETTING.get(service, "its URL")
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"create it (`{_createdb_command(url)}`) or set {setting}"
    if isinstance(
        exc,
        asyncpg.InvalidPasswordError
        | asyncpg.InvalidAuthorizationSpecificationError
        | AuthenticationError
        | AuthenticationWrongNumberOfArgsError,
    ):
        return f"check the user and password in {setting}"
    if isinstance(exc, ResponseError) and "NOAUTH" in str(exc):
        return f"this Redis needs a password: put it in {setting} (redis://:password@host:port/0)"
    if isinstance(exc, OperationFailure) and exc.code in _MONGO_AUTH_CODES:
        return f"check the user and password in {setting}"
    if isinstance(exc, ConfigurationError | ValueError | asyncpg.ClientConfigurationError):
        return f"fix {setting}"
    return None


async def retry(service: str, url: str, attempt: Callable[[], Awaitable[T]], deadline: float) -> T:
    """Call attempt until it succeeds or the deadline passes, with exponential backoff.
    Errors that retrying cannot cure raise StartupError at once.

    Said once, not once per attempt: that the store does not answer, for how long it is waited
    for and which setting changes that; again only if the reason changes (refused, then
    "starting up"); and how long it took once it answers."""
    delay = 0.2
    began = time.monotonic()
    said = None
    while True:
        try:
            result = await attempt()
        except Exception as exc:  # noqa: BLE001 - classified below, then raised or retried
            reason = short_reason(exc)
            fix = permanent_fix(service, url, exc)
            if fix is not None or time.monotonic() + delay > deadline:
                raise StartupError(service, url, reason, fix) from exc
            if reason != said:
                log.warning("%s not answering at %s (%s); waiting up to %.0fs more for it (NUBO_STARTUP_TIMEOUT)",
                            service, mask_url(url), reason, max(0.0, deadline - time.monotonic()))
                said = reason
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
            continue
        if said is not None:
            log.info("%s answered after %.1fs", service, time.monotonic() - began)
        return result


def construct(service: str, url: str, factory: Callable[[str], T]) -> T:
    """Build a client; a URL the driver rejects is a StartupError naming the setting."""
    try:
        return factory(url)
    except Exception as exc:  # noqa: BLE001 - drivers raise ValueError or their own types
        raise StartupError(service, url, short_reason(exc), f"fix {_SETTING.get(service, 'its URL')}") from exc
