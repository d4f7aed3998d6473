"""Sessions in Redis: one hash per session, one set of session ids per user.

A session outlives its access tokens: revoking it (deleting the hash) makes every
access token that names it fail at once, before their `exp`.

Refresh tokens rotate: each use swaps the stored hash in one Lua script (compare-and-set),
and the hashes already used are kept (a short capped sorted set per session) so that a
replayed one is recognised as theft and kills the session. A wrong secret that was never
valid is only refused: the session id is not secret (it is in every access token), so
treating any wrong secret as theft would let anyone log anyone out.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis

from nubo_backend.stores.redis import Keys

# How many already-rotated refresh hashes a session remembers for reuse detection.
ROTATED_KEEP = 64
# last_used is written at most this often by the guard (seconds): one write per minute, not per request.
TOUCH_INTERVAL = 60

_ROTATE = """
local current = redis.call('HGET', KEYS[1], 'refresh')
if not current then return {0, 0} end
local uid = redis.call('HGET', KEYS[1], 'uid')
if current == ARGV[1] then
  redis.call('HSET', KEYS[1], 'refresh', ARGV[2], 'last_used', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[5]) + 1))
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  return {1, uid}
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {-1, uid}
end
return {0, 0}
"""

# Only touch a live session: HSET on a revoked one would resurrect it as a hash without uid or TTL.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
  return 1
end
return 0
"""


class Rotation(Enum):
    ROTATED = "rotated"
    INVALID = "invalid"  # unknown, expired, revoked or never-valid token
    REUSED = "reused"  # an already-rotated token: the session has been revoked


@dataclass(frozen=True)
class RotateResult:
    outcome: Rotation
    user_id: int | None = None
    refresh_token: str | None = None


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    user_id: int
    created: int
    last_used: int
    user_agent: str
    ip: str


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


async def session_state(redis: Redis, keys: Keys, session_id: str) -> tuple[int | None, int]:
    """(owner, last_used) of a session in one round trip; owner is None once it is gone."""
    uid, last_used = await redis.hmget(keys("sess", session_id), ["uid", "last_used"])
    if uid is None:
        return None, 0
    return int(uid), int(last_used or 0)


async def touch_session(redis: Redis, keys: Keys, session_id: str, now: int | None = None) -> None:
    script = redis.register_script(_TOUCH)
    await script(keys=[keys("sess", session_id)], args=[now or int(time.time())])


def split_refresh_token(token: str) -> tuple[str, str] | None:
    """`<sid>.<secret>` → (sid, secret), or None when it cannot be one of ours."""
    session_id, dot, secret = token.partition(".")
    if not dot or not session_id or not secret or len(token) > 200:
        return None
    return session_id, secret


async def rotate_refresh(redis: Redis, keys: Keys, token: str, ttl: int) -> RotateResult:
    """Exchange a refresh token for a new one, atomically; detect replays of rotated tokens.

    A successful rotation also slides the session's expiry to `ttl` from now and records
    the time as last_used.
    """
    parts = split_refresh_token(token)
    if parts is None:
        return RotateResult(Rotation.INVALID)
    session_id, secret = parts
    new_token, new_hash = new_refresh_token(session_id)
    script = redis.register_script(_ROTATE)
    status, uid = await script(
        keys=[keys("sess", session_id), keys("sess_rotated", session_id)],
        args=[hash_refresh_secret(secret), new_hash, int(time.time()), ttl, ROTATED_KEEP],
    )
    status = int(status)
    if status == 1:
        return RotateResult(Rotation.ROTATED, int(uid), new_token)
    if status == -1:
        await redis.srem(keys("user_sessions", int(uid)), session_id)
        await _announce_revoked(redis, keys, [session_id])
        return RotateResult(Rotation.REUSED, int(uid))
    return RotateResult(Rotation.INVALID)


async def list_sessions(redis: Redis, keys: Keys, user_id: int) -> list[SessionInfo]:
    """The user's live sessions, most recently used first; forgets ids whose session expired."""
    index = keys("user_sessions", user_id)
    session_ids = sorted(s.decode() if isinstance(s, bytes) else s for s in await redis.smembers(index))
    if not session_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for sid in session_ids:
            pipe.hgetall(keys("sess", sid))
        rows = await pipe.execute()
    live: list[SessionInfo] = []
    gone: list[str] = []
    for sid, row in zip(session_ids, rows, strict=True):
        fields = {k.decode(): v.decode() for k, v in row.items()}
        if fields.get("uid") != str(user_id):
            gone.append(sid)
            continue
        live.append(
            SessionInfo(
                session_id=sid,
                user_id=user_id,
                created=int(fields.get("created", 0)),
                last_used=int(fields.get("last_used", 0)),
                user_agent=fields.get("user_agent", ""),
                ip=fields.get("ip", ""),
            )
        )
    if gone:
        await redis.srem(index, *gone)
    live.sort(key=lambda s: (s.last_used, s.created), reverse=True)
    return live


async def _announce_revoked(redis: Redis, keys: Keys, session_ids: list[str]) -> None:
    """Every instance forgets these sessions from its memo of live ones (auth.live_sessions)."""
    if session_ids:
        await redis.publish(keys.revocation_channel, ",".join(session_ids))


async def revoke_session(redis: Redis, keys: Keys, user_id: int, session_id: str) -> bool:
    """Revoke one session of user_id; False when it was not a live session of theirs."""
    if await session_user(redis, keys, session_id) != user_id:
        return False
    # Not MULTI/EXEC: a Redis full under noeviction refuses a whole transaction, though DEL
    # and SREM alone are allowed (they free memory). The DEL is what revokes; the index is
    # tidied by the SREM, or else by list_sessions.
    async with redis.pipeline(transaction=False) as pipe:
        pipe.delete(keys("sess", session_id), keys("sess_rotated", session_id))
        pipe.srem(keys("user_sessions", user_id), session_id)
        deleted, _ = await pipe.execute()
    await _announce_revoked(redis, keys, [session_id])
    return bool(deleted)


async def revoke_all_sessions(
    redis: Redis, keys: Keys, user_id: int, *, keep: str | None = None
) -> list[str]:
    """Revoke every session of user_id except `keep`; returns the ids revoked."""
    index = keys("user_sessions", user_id)
    session_ids = [s.decode() if isinstance(s, bytes) else s for s in await redis.smembers(index)]
    doomed = [sid for sid in session_ids if sid != keep]
    if not doomed:
        return []
    async with redis.pipeline(transaction=False) as pipe:  # (as in revoke_session)
        for sid in doomed:
            pipe.delete(keys("sess", sid), keys("sess_rotated", sid))
        pipe.srem(index, *doomed)
        results = await pipe.execute()
    revoked = [sid for sid, deleted in zip(doomed, results[:-1], strict=True) if deleted]
    await _announce_revoked(redis, keys, revoked)
    return revoked
