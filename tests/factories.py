"""Build test data through the real stores: users with live sessions and access tokens."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from nubo_backend.auth.sessions import create_session
from nubo_backend.auth.tokens import mint_access_token
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
