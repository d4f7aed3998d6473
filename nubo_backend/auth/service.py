"""Accounts and sessions: the rules, with no HTTP in sight."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asyncpg import Record, UniqueViolationError
from pymongo.errors import PyMongoError
from redis.exceptions import RedisClusterException, RedisError

from nubo_backend.accounts import two_factor
from nubo_backend.accounts.links import send_verification
from nubo_backend.auth import ratelimit
from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.schemas import LoginBody, PasswordChange, ProfilePatch, SignupBody
from nubo_backend.auth.sessions import (
    NewSession,
    Rotation,
    SessionInfo,
    create_session,
    list_sessions,
    revoke_all_sessions,
    revoke_session,
    rotate_refresh,
)
from nubo_backend.auth.tokens import mint_access_token
from nubo_backend.edge.errors import NuboError, conflict, not_found
from nubo_backend.mail.templates import DEFAULT_LANGUAGE
from nubo_backend.push import service as push
from nubo_backend.stores import Stores
from nubo_backend.users.service import erase_user, invalidate_profile

log = logging.getLogger("nubo.auth")

PUBLIC_FIELDS = ("id", "username", "display_name", "bio", "avatar_url", "created_at")


@dataclass(frozen=True)
class Client:
    """Where a login comes from, shown back in the session list."""

    user_agent: str = ""
    ip: str = ""


def public_user(row: Record | dict[str, Any]) -> dict[str, Any]:
    """A user as anyone may see them (no e-mail)."""
    return {name: row[name] for name in PUBLIC_FIELDS}


def own_account(row: Record | dict[str, Any]) -> dict[str, Any]:
    """A user as they see themselves (/me): the public fields, their e-mail and its state, the
    language of their mails and whether two-factor sign-in is on (docs/accounts.md)."""
    return {**public_user(row), "email": row["email"], "email_verified": row["email_verified_at"] is not None,
            "language": row["language"], "two_factor": row["two_factor"]}


def invalid_credentials() -> NuboError:
    # One message and code whatever was wrong: unknown account or wrong password.
    return NuboError(401, "invalid_credentials", "Invalid username/email or password")


def account_suspended() -> NuboError:
    # A moderator suspended the account (nubo_backend/moderation, docs/moderation.md).
    return NuboError(403, "account_suspended", "This account is suspended")


def wrong_password() -> NuboError:
    return NuboError(403, "wrong_password", "Current password is incorrect")


def invalid_refresh_token() -> NuboError:
    return NuboError(401, "invalid_refresh_token", "Invalid or expired refresh token")


@contextmanager
def sessions_available() -> Iterator[None]:
    """Sessions live in Redis: without it nobody can log in, so say so (503) instead of a 500."""
    try:
        yield
    except (RedisError, RedisClusterException, OSError) as exc:
        log.warning("session store unreachable: %s", exc)
        raise NuboError(503, "service_unavailable", "Sessions are unavailable, retry shortly") from exc


def _token_pair(stores: Stores, user_id: int, session_id: str, refresh_token: str) -> dict[str, Any]:
    ttl = stores.settings.access_token_ttl
    access_token, _ = mint_access_token(stores.settings.jwt_secret, user_id, session_id, ttl)
    return {
        "access_token": access_token,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": ttl,
    }


async def _new_session(stores: Stores, user_id: int, client: Client) -> NewSession:
    with sessions_available():
        return await create_session(
            stores.redis,
            stores.keys,
            user_id,
            stores.settings.refresh_token_ttl,
            user_agent=client.user_agent,
            ip=client.ip,
        )


async def open_session(stores: Stores, user: Record, client: Client) -> dict[str, Any]:
    """A new session for user, signed in (the second step of a two-factor login)."""
    return _signed_in(stores, user, await _new_session(stores, user["id"], client))


def _signed_in(stores: Stores, user: Record, session: NewSession) -> dict[str, Any]:
    return {
        **_token_pair(stores, user["id"], session.session_id, session.refresh_token),
        "user": public_user(user),
    }


async def _check_password(
    stores: Stores, passwords: Passwords, attempt: ratelimit.PasswordAttempt, password_hash: str | None,
    password: str,
) -> bool:
    """Check a password within the account's budget of failures (429 once it is spent):
    logins, password changes and account deletions draw on the same budget, so a stolen
    access token is no more of a password oracle than the login form. A right password
    gives its attempt back. No hash (no such account): the time of a check, and False."""
    with sessions_available():  # (no budget without Redis: 503 at once, not after every other wait)
        buckets = await ratelimit.charge_password_check(stores.redis, stores.keys, stores.settings, attempt)
    # Hashing takes turns per account (not per address: people behind one NAT or an
    # untrusted proxy would then hash one at a time).
    if password_hash is None:
        return await passwords.verify_dummy(password, who=attempt.account)
    if not await passwords.verify(password_hash, password, who=attempt.account):
        return False
    await ratelimit.password_check_passed(stores.redis, stores.keys, stores.settings, attempt, buckets)
    return True


async def check_current_password(
    stores: Stores, passwords: Passwords, user_id: int, password: str, ip: str, session_id: str = ""
) -> None:
    """403 wrong_password unless `password` is the account's, within the same budget of
    failures as login (for every other route that asks for the password again)."""
    async with stores.pg.acquire() as conn:
        password_hash = await stores.sql.auth.password_hash(conn, user_id=user_id)
    if password_hash is None:
        raise not_found("Account not found", code="user_not_found")
    attempt = ratelimit.PasswordAttempt(f"user:{user_id}", ip, session_id)
    if not await _check_password(stores, passwords, attempt, password_hash, password):
        raise wrong_password()


async def _duplicate_fields(stores: Stores, username: str, email: str) -> list[dict[str, str]]:
    async with stores.pg.acquire() as conn:
        taken = await stores.sql.auth.taken_fields(conn, username=username, email=email)
    return [
        {"field": name, "message": f"This {name} is already taken"} for name in ("username", "email") if taken[name]
    ]


def _duplicate(details: list[dict[str, str]]) -> NuboError:
    fields = ", ".join(d["field"] for d in details)
    return conflict(f"Already taken: {fields}", code="already_exists", details=details)


async def signup(stores: Stores, passwords: Passwords, body: SignupBody, client: Client) -> dict[str, Any]:
    """Create the account and its first session; 409 naming each field already taken."""
    # Checked before hashing so an obvious duplicate costs no argon2 work; the unique
    # indexes still decide when two signups race.
    if details := await _duplicate_fields(stores, body.username, body.email):
        raise _duplicate(details)
    password_hash = await passwords.hash(body.password, who=f"signup:{body.email}")
    try:
        async with stores.pg.acquire() as conn, conn.transaction():
            user = await stores.sql.auth.create_user(
                conn, username=body.username, email=body.email, password_hash=password_hash,
                language=body.language or DEFAULT_LANGUAGE,
            )
            await send_verification(conn, stores, user)  # queued here, mailed after the commit
    except UniqueViolationError:
        raise _duplicate(await _duplicate_fields(stores, body.username, body.email)) from None
    log.info("account created", extra={"user_id": user["id"]})
    return _signed_in(stores, user, await _new_session(stores, user["id"], client))


async def login(stores: Stores, passwords: Passwords, body: LoginBody, client: Client) -> dict[str, Any]:
    async with stores.pg.acquire() as conn:
        if body.email is not None:
            user = await stores.sql.auth.credentials_by_email(conn, email=body.email)
        else:
            user = await stores.sql.auth.credentials_by_username(conn, username=body.username)
    # One budget per account, whichever name it was typed as ("bob", "bob@example.com"); one
    # per identifier that names no account.
    account = f"user:{user['id']}" if user is not None else f"unknown:{body.identifier}"
    attempt = ratelimit.PasswordAttempt(account, client.ip)
    if user is None:
        await _check_password(stores, passwords, attempt, None, body.password)  # a wrong password's budget and cost
        raise invalid_credentials()
    password_hash = user["password_hash"]
    if not await _check_password(stores, passwords, attempt, password_hash, body.password):
        raise invalid_credentials()
    if user["suspended_at"] is not None:  # moderation: said only to who knows the password
        raise account_suspended()
    if passwords.needs_rehash(password_hash):
        password_hash = await _rehash(stores, passwords, user, body.password)
    if (second_factor := await two_factor.challenge(stores, user)) is not None:
        return second_factor  # no session until POST /login/2fa (nubo_backend/accounts)
    session = await _new_session(stores, user["id"], client)
    # A password change that committed while this login was checking the old password has
    # already revoked every session it could see, but not this one, made after. Read after
    # the session exists, the hash tells: unchanged, and any later change will find and
    # revoke this session; changed, and this login loses the race.
    async with stores.pg.acquire() as conn:
        current_hash = await stores.sql.auth.password_hash(conn, user_id=user["id"])
    if current_hash != password_hash:
        await _drop_session(stores, user["id"], session.session_id)
        raise invalid_credentials()
    return _signed_in(stores, user, session)


async def _drop_session(stores: Stores, user_id: int, session_id: str) -> None:
    with sessions_available():
        await revoke_session(stores.redis, stores.keys, user_id, session_id)
    stores.live_sessions.forget([session_id])  # here at once; elsewhere via the bus


async def _rehash(stores: Stores, passwords: Passwords, user: Record, password: str) -> str:
    """Bring a hash made with older argon2 parameters to the configured ones; returns the
    hash now expected in the row (the old one when a password change got there first)."""
    new_hash = await passwords.hash(password, who=f"user:{user['id']}")
    async with stores.pg.acquire() as conn:
        replaced = await stores.sql.auth.replace_password_hash(
            conn, user_id=user["id"], old_hash=user["password_hash"], new_hash=new_hash
        )
    if replaced is None:
        return user["password_hash"]
    log.info("password rehashed with current parameters", extra={"user_id": user["id"]})
    return new_hash


async def refresh(stores: Stores, refresh_token: str) -> dict[str, Any]:
    """Rotate the refresh token and mint a new access token for the same session."""
    with sessions_available():
        result = await rotate_refresh(stores.redis, stores.keys, refresh_token, stores.settings.refresh_token_ttl)
    if result.outcome is Rotation.REUSED:
        log.warning("rotated refresh token presented again; session revoked", extra={"user_id": result.user_id})
        stores.live_sessions.forget([refresh_token.partition(".")[0]])  # here at once; elsewhere via the bus
        raise NuboError(
            401, "refresh_token_reused", "Refresh token already used: the session has been revoked, log in again"
        )
    if result.outcome is not Rotation.ROTATED or result.user_id is None or result.refresh_token is None:
        raise invalid_refresh_token()
    session_id = refresh_token.partition(".")[0]
    return _token_pair(stores, result.user_id, session_id, result.refresh_token)


async def logout(stores: Stores, user_id: int, session_id: str) -> None:
    with sessions_available():
        await revoke_session(stores.redis, stores.keys, user_id, session_id)
    stores.live_sessions.forget([session_id])  # here at once; elsewhere via the bus
    await push.forget_sessions(stores, [session_id])


async def logout_everywhere(stores: Stores, user_id: int) -> int:
    with sessions_available():
        revoked = await revoke_all_sessions(stores.redis, stores.keys, user_id)
    stores.live_sessions.forget(revoked)  # here at once; elsewhere via the bus
    await push.forget_sessions(stores, revoked)
    return len(revoked)


def _session_view(info: SessionInfo, current_session_id: str) -> dict[str, Any]:
    return {
        "id": info.session_id,
        "user_agent": info.user_agent,
        "ip": info.ip,
        "created_at": datetime.fromtimestamp(info.created, UTC),
        "last_used_at": datetime.fromtimestamp(info.last_used, UTC),
        "current": info.session_id == current_session_id,
    }


async def sessions_of(stores: Stores, user_id: int, current_session_id: str) -> list[dict[str, Any]]:
    with sessions_available():
        sessions = await list_sessions(stores.redis, stores.keys, user_id)
    return [_session_view(s, current_session_id) for s in sessions]


async def revoke_own_session(stores: Stores, user_id: int, session_id: str) -> None:
    """Revoke one of the caller's sessions; 404 for anyone else's (or no such session)."""
    with sessions_available():
        revoked = await revoke_session(stores.redis, stores.keys, user_id, session_id)
    if not revoked:
        raise not_found("Session not found", code="session_not_found")
    stores.live_sessions.forget([session_id])  # here at once; elsewhere via the bus
    await push.forget_sessions(stores, [session_id])


async def account(stores: Stores, user_id: int) -> dict[str, Any]:
    async with stores.pg.acquire() as conn:
        user = await stores.sql.auth.get_account(conn, user_id=user_id)
    if user is None:
        raise not_found("Account not found", code="user_not_found")
    return own_account(user)


async def update_profile(stores: Stores, user_id: int, patch: ProfilePatch) -> dict[str, Any]:
    given = patch.model_fields_set
    async with stores.pg.acquire() as conn:
        user = await stores.sql.auth.update_profile(
            conn,
            user_id=user_id,
            set_display_name="display_name" in given,
            display_name=patch.display_name,
            set_bio="bio" in given,
            bio=patch.bio,
            set_avatar_url="avatar_url" in given,
            avatar_url=patch.avatar_url,
            language=patch.language,
        )
    if user is None:
        raise not_found("Account not found", code="user_not_found")
    await invalidate_profile(stores, user_id)  # the cached public profile must show the edit
    return own_account(user)


async def change_password(
    stores: Stores, passwords: Passwords, user_id: int, session_id: str, body: PasswordChange, client: Client
) -> int:
    """Set a new password (the current one is required) and revoke every other session.

    Returns how many sessions were revoked; the caller's own session stays logged in.
    """
    async with stores.pg.acquire() as conn:
        old_hash = await stores.sql.auth.password_hash(conn, user_id=user_id)
    if old_hash is None:
        raise not_found("Account not found", code="user_not_found")
    attempt = ratelimit.PasswordAttempt(f"user:{user_id}", client.ip, session_id)
    if not await _check_password(stores, passwords, attempt, old_hash, body.current_password):
        raise wrong_password()
    new_hash = await passwords.hash(body.new_password, who=attempt.account)
    async with stores.pg.acquire() as conn:
        changed = await stores.sql.auth.replace_password_hash(
            conn, user_id=user_id, old_hash=old_hash, new_hash=new_hash
        )
    if changed is None:
        raise conflict("The password was changed meanwhile, retry", code="password_changed")
    with sessions_available():
        revoked = await revoke_all_sessions(stores.redis, stores.keys, user_id, keep=session_id)
    stores.live_sessions.forget(revoked)  # here at once; elsewhere via the bus
    log.info("password changed", extra={"user_id": user_id, "revoked_sessions": len(revoked)})
    return len(revoked)


async def delete_account(
    stores: Stores, passwords: Passwords, user_id: int, session_id: str, password: str, client: Client
) -> None:
    """Erase the caller's account (the password is asked again): every session first, so
    nothing else is done in its name meanwhile, then the data, then its 30-day history."""
    async with stores.pg.acquire() as conn:
        password_hash = await stores.sql.auth.password_hash(conn, user_id=user_id)
    if password_hash is None:
        raise not_found("Account not found", code="user_not_found")
    attempt = ratelimit.PasswordAttempt(f"user:{user_id}", client.ip, session_id)
    if not await _check_password(stores, passwords, attempt, password_hash, password):
        raise wrong_password()
    with sessions_available():
        revoked = await revoke_all_sessions(stores.redis, stores.keys, user_id)
    stores.live_sessions.forget(revoked)  # here at once; elsewhere via the bus
    await erase_user(stores, user_id)
    try:
        for collection in ("events", "notifications", "broadcasts"):
            await stores.mongo[collection].delete_many({"user_id": user_id})
    except PyMongoError as exc:  # it expires within 30 days anyway
        log.warning("history of erased user %s kept until expiry: %s", user_id, exc)
    log.info("account deleted", extra={"user_id": user_id})
