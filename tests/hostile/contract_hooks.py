"""schemathesis hooks of the contract test (tests/hostile/test_contract.py), loaded by the
`schemathesis run` it starts (SCHEMATHESIS_HOOKS). Every request runs as one real user on a
live session; when a request revokes it (POST /logout, /logout/all, a password change) the next
401 makes schemathesis ask for a new one, minted the way `nubo token` does: through the login
route it would spend the login rate limit and test that instead of the operation at hand."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import schemathesis
from redis.asyncio import Redis

from nubo_backend.auth.sessions import create_session
from nubo_backend.auth.tokens import mint_access_token
from nubo_backend.settings import load_settings
from nubo_backend.stores import Keys


async def _new_session(user_id: int) -> str:
    settings = load_settings()
    redis = Redis.from_url(settings.redis_url)
    try:
        session = await create_session(redis, Keys(settings.redis_namespace), user_id,
                                       settings.refresh_token_ttl, user_agent="contract test")
    finally:
        await redis.aclose()
    token, _ = mint_access_token(settings.jwt_secret, user_id, session.session_id, settings.access_token_ttl)
    return token


@schemathesis.auth()
class LiveSession:
    """A token of NUBO_CONTRACT_USER_ID on a session that exists in Redis."""

    def get(self, case: Any, context: Any) -> str:
        return asyncio.run(_new_session(int(os.environ["NUBO_CONTRACT_USER_ID"])))

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
