"""Sessions in Redis: one hash per session, one set of session ids per user.

A session outlives its access tokens: revoking it (deleting the hash) makes every
access token that names it fail at once, before their `exp`.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from nubo_backend.stores.redis import Keys


@dataclass(frozen=True)
class NewSession:
    session_id: str
    refresh_token: str


def hash_refresh_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_refresh_token(session_id: str) -> tuple[str, str]:
    """An opaque refresh token `<sid>.<random>` and the hash stored for it."""
    secret = secrets.token_urlsafe(32)
    return f"{session_id}.{secret}", hash_refresh_secret(secret)


async def create_session(
    redis: Redis, keys: Keys, user_id: int, ttl: int, *, user_agent: str = "", ip: str = ""
) -> NewSession:
    session_id = secrets.token_urlsafe(16)
    refresh_token, refresh_hash = new_refresh_token(session_id)
    now = int(time.time())
    key = keys("sess", session_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "uid": user_id,
                "refresh": refresh_hash,
                "created": now,
                "last_used": now,
                "user_agent": user_agent[:200],
                "ip": ip,
            },
        )
        pipe.expire(key, ttl)
        pipe.sadd(keys("user_sessions", user_id), session_id)
        await pipe.execute()
    return NewSession(session_id, refresh_token)


async def session_user(redis: Redis, keys: Keys, session_id: str) -> int | None:
    """The user a live session belongs to, or None once it is revoked or expired."""
    uid = await redis.hget(keys("sess", session_id), "uid")
    return int(uid) if uid is not None else None


async def revoke_session(redis: Redis, keys: Keys, user_id: int, session_id: str) -> bool:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys("sess", session_id))
        pipe.srem(keys("user_sessions", user_id), session_id)
        deleted, _ = await pipe.execute()
    return bool(deleted)
