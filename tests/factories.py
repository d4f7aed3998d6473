"""Build test data through the real stores: users with live sessions and access tokens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from nubo_backend.auth.sessions import create_session
from nubo_backend.auth.tokens import mint_access_token
from nubo_backend.outbox import Event, announce, notification
from nubo_backend.outbox.relay import Relay
from nubo_backend.stores import Stores

_counter = itertools.count(1)
# A real argon2id hash of "password123" (cheap parameters); tests that log in use that password.
PASSWORD = "password123"
PASSWORD_HASH = "$argon2id$v=19$m=8192,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$PjV3R/py1iiVX84GQuBOk7bWefQPSYBSD8tWVkiDRzo"


@dataclass
class TestUser:
    __test__ = False  # a data holder, not a test class
    id: int
    username: str
    token: str
    session_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_user(stores: Stores, username: str | None = None) -> TestUser:
    username = username or f"user{next(_counter)}"
    user_id = await stores.pg.fetchval(
        "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3) RETURNING id",
        username,
        f"{username.lower()}@example.test",
        PASSWORD_HASH,
    )
    session = await create_session(
        stores.redis, stores.keys, user_id, stores.settings.refresh_token_ttl, user_agent="tests"
    )
    token, _ = mint_access_token(
        stores.settings.jwt_secret, user_id, session.session_id, stores.settings.access_token_ttl
    )
    return TestUser(user_id, username, token, session.session_id)


async def announce_event(
    stores: Stores, user_ids: list[int], event_type: str, data: dict[str, Any]
) -> dict[int, int]:
    """Commit an event as a service does (in an outbox transaction); returns user id -> event id.
    A running server's relay delivers it; `relay_now` does it for tests without one."""
    return await _announce(stores, Event(user_ids, event_type, data))


async def announce_notification(
    stores: Stores, user_id: int, event_type: str, data: dict[str, Any]
) -> dict[int, int]:
    """Commit a notification for user_id as a service does (nothing for their own action)."""
    return await _announce(stores, notification(user_id, event_type, data))


async def _announce(stores: Stores, event: Event | None) -> dict[int, int]:
    async with stores.pg.acquire() as conn, conn.transaction():
        before = await conn.fetchval("SELECT coalesce(max(id), 0) FROM outbox")
        await announce(conn, stores, event)
        rows = await conn.fetch("SELECT recipients, event_ids FROM outbox WHERE id > $1", before)
    return {uid: eid for row in rows for uid, eid in zip(row["recipients"], row["event_ids"], strict=True)}


async def relay_now(stores: Stores) -> int:
    """Journal, store and publish everything committed so far, as the servers' relay does."""
    return await Relay(stores).drain()
