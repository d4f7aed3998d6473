"""`nubo token USER`: a token for an existing account (or a new test account), backed by a
real session in the same Redis, under the same namespace, as the server's."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import asyncpg
from redis.exceptions import RedisError

from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.sessions import create_session
from nubo_backend.auth.tokens import mint_access_token
from nubo_backend.settings import Settings, mask_url
from nubo_backend.stores import redis as redis_store
from nubo_backend.stores.startup import StartupError, retry, short_reason

# A CLI waits for a store a few seconds, not the server's whole start-up window.
CLI_STORE_WAIT_SECONDS = 3.0


class MintError(Exception):
    """No token can be minted; the message says why and what to do."""


@dataclass(frozen=True)
class Minted:
    token: str
    user_id: int
    username: str
    password: str | None  # set when the account was created now


async def _find_user(conn: asyncpg.Connection, who: str) -> asyncpg.Record | None:
    if who.isdigit():
        return await conn.fetchrow("SELECT id, username FROM users WHERE id = $1", int(who))
    return await conn.fetchrow("SELECT id, username FROM users WHERE lower(username) = lower($1)", who)


async def _create_user(conn: asyncpg.Connection, settings: Settings, username: str) -> tuple[asyncpg.Record, str]:
    password = secrets.token_urlsafe(12)
    passwords = Passwords(settings, workers=1)
    try:
        password_hash = await passwords.hash(password, who="cli")
    finally:
        passwords.close()
    try:
        row = await conn.fetchrow(
            "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3) RETURNING id, username",
            username,
            f"{username.lower()}@example.invalid",
            password_hash,
        )
    except asyncpg.CheckViolationError:
        raise MintError(f"{username!r} is not a valid username: 3-30 letters, digits or _") from None
    return row, password


async def _user(settings: Settings, who: str, create: bool) -> tuple[asyncpg.Record, str | None]:
    deadline = time.monotonic() + CLI_STORE_WAIT_SECONDS
    conn = await retry("PostgreSQL", settings.postgres_dsn, lambda: asyncpg.connect(settings.postgres_dsn), deadline)
    try:
        try:
            user = await _find_user(conn, who)
        except asyncpg.UndefinedTableError:
            raise MintError("database not migrated: run `nubo migrate`") from None
        if user is not None:
            return user, None
        if not create or who.isdigit():
            hint = "" if who.isdigit() else f", or `nubo token {who} --create` for a test account"
            raise MintError(f"no user {who!r} in {mask_url(settings.postgres_dsn)}: sign up first{hint}")
        return await _create_user(conn, settings, who)
    finally:
        await conn.close()


def check_lifetime(settings: Settings, ttl: int) -> None:
    """In production a minted token lives no longer than a login's (NUBO_ACCESS_TOKEN_TTL): a
    long-lived bearer token copied out of a terminal outlives any revocation it escapes (a
    session revoked while Redis was away, a secret not yet rotated). Elsewhere, any length."""
    if ttl < 1:
        raise MintError(f"--ttl must be at least 1 second, not {ttl}")
    if settings.is_production and ttl > settings.access_token_ttl:
        raise MintError(f"--ttl {ttl} refused in production: at most NUBO_ACCESS_TOKEN_TTL "
                        f"({settings.access_token_ttl} s), as a login's token")


async def mint_token(settings: Settings, who: str, ttl: int, *, create: bool = False) -> Minted:
    check_lifetime(settings, ttl)  # before anything is created
    client = redis_store.open_client(settings.redis_url)
    try:
        # Redis first: a --create must not leave an account behind a failed mint.
        await client.ping()
        try:
            user, password = await _user(settings, who, create)
        except StartupError as exc:
            raise MintError(str(exc)) from None
        session = await create_session(
            client,
            redis_store.keys_for(settings.redis_url, settings.redis_namespace),
            user["id"],
            max(ttl, settings.refresh_token_ttl),
            user_agent="nubo token",
        )
    except (RedisError, OSError) as exc:
        raise MintError(
            f"Redis unreachable at {mask_url(settings.redis_url)} (NUBO_REDIS_URL): {short_reason(exc)}; "
            "start it, or give this command the server's NUBO_REDIS_URL"
        ) from None
    finally:
        await client.aclose()
    token, _ = mint_access_token(settings.jwt_secret, user["id"], session.session_id, ttl)
    return Minted(token, user["id"], user["username"], password)
