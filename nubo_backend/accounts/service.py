"""Accounts people can get back into: the rules, with no HTTP in sight."""

from __future__ import annotations

import logging
from typing import Any

from asyncpg import UniqueViolationError

from nubo_backend.accounts import links, two_factor
from nubo_backend.accounts.links import CHANGE_EMAIL, RESET_PASSWORD, VERIFY_EMAIL
from nubo_backend.auth import ratelimit
from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.service import (
    Client,
    check_current_password,
    logout_everywhere,
    open_session,
    sessions_available,
)
from nubo_backend.edge.errors import NuboError, conflict, not_found
from nubo_backend.mail.queue import enqueue
from nubo_backend.mail.templates import render
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.accounts")

HOUR = 3600


async def _limit(stores: Stores, action: str, identities: dict[str, str], limit: int, window: int = HOUR) -> None:
    await ratelimit.hit(stores.redis, stores.keys, action, identities, limit, window)


async def _account(stores: Stores, user_id: int) -> Any:
    async with stores.pg.acquire() as conn:
        user = await stores.sql.accounts.account_for_mail(conn, user_id=user_id)
    if user is None:
        raise not_found("Account not found", code="user_not_found")
    return user


# -- e-mail verification -------------------------------------------------------------------


async def verify_email(stores: Stores, token: str) -> dict[str, Any]:
    """Take a mailed link: verify the address it was sent to, or move the account to the new
    address an e-mail change asked for (409 if another account took it meanwhile)."""
    q = stores.sql.accounts
    try:
        async with stores.pg.acquire() as conn, conn.transaction():
            row = await links.take(conn, stores, token, VERIFY_EMAIL, CHANGE_EMAIL)
            if row["purpose"] == CHANGE_EMAIL:
                await q.move_email(conn, user_id=row["user_id"], email=row["email"])
            elif await q.mark_email_verified(conn, user_id=row["user_id"], email=row["email"]) is None:
                raise links.invalid_link()  # the account's address changed since
    except UniqueViolationError:
        raise conflict("This e-mail address is already taken", code="already_exists") from None
    log.info("e-mail verified", extra={"user_id": row["user_id"], "change": row["purpose"] == CHANGE_EMAIL})
    return {"email": row["email"], "email_verified": True}


async def resend_verification(stores: Stores, user_id: int, ip: str) -> None:
    user = await _account(stores, user_id)
    if user["email_verified_at"] is not None:
        raise conflict("This e-mail address is already verified", code="email_already_verified")
    settings = stores.settings
    await _limit(stores, "mail_ip", {"ip": ip}, settings.rate_limit_mail_ip)
    await _limit(stores, "mail", {"account": f"user:{user_id}", "email": user["email"]}, settings.rate_limit_mail)
    async with stores.pg.acquire() as conn, conn.transaction():
        await links.send_verification(conn, stores, user)


# -- password reset ------------------------------------------------------------------------


async def forgot_password(stores: Stores, email: str, ip: str) -> None:
    """Limit per client address and per e-mail (the same whether an account has it), then mail
    the reset link in the background: the answer, and its time, say nothing about the address."""
    settings = stores.settings
    await _limit(stores, "mail_ip", {"ip": ip}, settings.rate_limit_mail_ip)
    await _limit(stores, "mail", {"email": email}, settings.rate_limit_mail)
    stores.run_in_background(_mail_reset_link(stores, email))


async def _mail_reset_link(stores: Stores, email: str) -> None:
    try:
        async with stores.pg.acquire() as conn:
            user = await stores.sql.accounts.account_by_email(conn, email=email)
        if user is None:
            return
        # Per account as well (an address typed in other cases), silently: a 429 here would
        # tell that the address has an account.
        await _limit(stores, "mail", {"account": f"user:{user['id']}"}, stores.settings.rate_limit_mail)
        ttl = stores.settings.reset_token_ttl
        async with stores.pg.acquire() as conn, conn.transaction():
            token = await links.issue(conn, stores, user["id"], RESET_PASSWORD, user["email"], ttl)
            mail = render(RESET_PASSWORD, user["language"], username=user["username"],
                          link=links.link(stores, "/password/reset", token), minutes=ttl // 60)
            await enqueue(conn, stores, user["email"], mail)
        log.info("password reset link queued", extra={"user_id": user["id"]})
    except NuboError:
        log.info("password reset link not sent: too many asked for this account")
    except Exception:
        log.exception("password reset link not queued")


async def reset_password(stores: Stores, passwords: Passwords, token: str, password: str, ip: str) -> int:
    """Set the password a mailed link allows, revoke every session (sockets close with them) and
    mail a notice; returns how many sessions were revoked."""
    # Per address, as login is: each attempt costs a password hash.
    settings = stores.settings
    await _limit(stores, "reset", {"ip": ip}, settings.rate_limit_login, settings.rate_limit_window)
    password_hash = await passwords.hash(password, who=f"reset:{ip}")  # before the token is spent
    q = stores.sql.accounts
    async with stores.pg.acquire() as conn, conn.transaction():
        row = await links.take(conn, stores, token, RESET_PASSWORD)
        user = await q.account_for_mail(conn, user_id=row["user_id"])
        if user is None or await q.set_password_hash(conn, user_id=user["id"], password_hash=password_hash) is None:
            raise links.invalid_link()
        # The link reached this address: that proves it as well as a verification link does.
        await q.mark_email_verified(conn, user_id=user["id"], email=row["email"])
        await enqueue(conn, stores, user["email"],
                      render("password_reset_done", user["language"], username=user["username"]))
    revoked = await logout_everywhere(stores, user["id"])
    log.info("password reset", extra={"user_id": user["id"], "revoked_sessions": revoked})
    return revoked


# -- e-mail change -------------------------------------------------------------------------


async def request_email_change(stores: Stores, passwords: Passwords, user_id: int, new_email: str,
                               password: str, ip: str) -> None:
    """Mail a confirmation link to the new address and a notice to the current one; the
    account keeps its address until the link is taken (POST /email/verify)."""
    await check_current_password(stores, passwords, user_id, password, ip)
    user = await _account(stores, user_id)
    if new_email.lower() == user["email"].lower():
        raise conflict("This is already the account's address", code="same_email")
    settings = stores.settings
    await _limit(stores, "mail_ip", {"ip": ip}, settings.rate_limit_mail_ip)
    await _limit(stores, "mail", {"account": f"user:{user_id}", "email": new_email}, settings.rate_limit_mail)
    q = stores.sql.accounts
    ttl = settings.verify_token_ttl
    async with stores.pg.acquire() as conn, conn.transaction():
        if await q.email_taken(conn, email=new_email):
            raise conflict("This e-mail address is already taken", code="already_exists",
                           details=[{"field": "email", "message": "This email is already taken"}])
        token = await links.issue(conn, stores, user_id, CHANGE_EMAIL, new_email, ttl)
        language, username = user["language"], user["username"]
        await enqueue(conn, stores, new_email, render(
            CHANGE_EMAIL, language, username=username, email=new_email,
            link=links.link(stores, "/email/verify", token), hours=ttl // 3600))
        await enqueue(conn, stores, user["email"], render(
            "email_change_notice", language, username=username, email=new_email))
    log.info("e-mail change asked", extra={"user_id": user_id})


# -- two-factor sign-in --------------------------------------------------------------------


async def limit_codes(stores: Stores, user_id: int, ip: str) -> None:
    settings = stores.settings
    await _limit(stores, "2fa", {"account": f"user:{user_id}", "ip": ip}, settings.rate_limit_2fa,
                 settings.rate_limit_window)


async def start_totp(stores: Stores, user_id: int) -> dict[str, Any]:
    """A new secret and its otpauth:// URI; two-factor is on once a first code confirms it."""
    user = await _account(stores, user_id)
    secret = two_factor.new_secret()
    async with stores.pg.acquire() as conn:
        if await stores.sql.accounts.start_totp(conn, user_id=user_id, secret=secret) is None:
            raise conflict("Two-factor sign-in is already on", code="two_factor_enabled")
    return {"secret": secret, "otpauth_uri": two_factor.otpauth_uri(secret, user["email"])}


async def confirm_totp(stores: Stores, user_id: int, code: str, ip: str) -> list[str]:
    """Turn two-factor on with a first code from the app; returns the recovery codes (shown once)."""
    await limit_codes(stores, user_id, ip)
    q = stores.sql.accounts
    async with stores.pg.acquire() as conn:
        totp = await q.totp_of(conn, user_id=user_id)
    if totp is None:
        raise NuboError(409, "two_factor_not_started", "Start with POST /me/2fa/totp")
    if totp["enabled"]:
        raise conflict("Two-factor sign-in is already on", code="two_factor_enabled")
    await two_factor.check_code(stores, user_id, totp, code, recovery=False)
    codes = two_factor.new_recovery_codes()
    async with stores.pg.acquire() as conn, conn.transaction():
        await q.enable_totp(conn, user_id=user_id)
        await q.clear_recovery_codes(conn, user_id=user_id)
        await q.add_recovery_codes(conn, user_id=user_id, code_hashes=[two_factor.recovery_code_hash(c)
                                                                        for c in codes])
    log.info("two-factor sign-in on", extra={"user_id": user_id})
    return codes


async def _enabled_totp(stores: Stores, user_id: int) -> Any:
    async with stores.pg.acquire() as conn:
        totp = await stores.sql.accounts.totp_of(conn, user_id=user_id)
    if totp is None or not totp["enabled"]:
        raise NuboError(409, "two_factor_disabled", "Two-factor sign-in is off")
    return totp


async def disable_totp(stores: Stores, passwords: Passwords, user_id: int, password: str, code: str,
                       ip: str) -> None:
    """Turn two-factor off: the password and a code (or a recovery code) are both required."""
    await limit_codes(stores, user_id, ip)
    totp = await _enabled_totp(stores, user_id)
    await check_current_password(stores, passwords, user_id, password, ip)
    await two_factor.check_code(stores, user_id, totp, code)
    q = stores.sql.accounts
    async with stores.pg.acquire() as conn, conn.transaction():
        await q.disable_totp(conn, user_id=user_id)
        await q.clear_recovery_codes(conn, user_id=user_id)
    log.info("two-factor sign-in off", extra={"user_id": user_id})


async def new_recovery_codes(stores: Stores, passwords: Passwords, user_id: int, password: str, code: str,
                             ip: str) -> list[str]:
    """Replace every recovery code (the old ones stop working)."""
    await limit_codes(stores, user_id, ip)
    totp = await _enabled_totp(stores, user_id)
    await check_current_password(stores, passwords, user_id, password, ip)
    await two_factor.check_code(stores, user_id, totp, code, recovery=False)
    codes = two_factor.new_recovery_codes()
    q = stores.sql.accounts
    async with stores.pg.acquire() as conn, conn.transaction():
        await q.clear_recovery_codes(conn, user_id=user_id)
        await q.add_recovery_codes(conn, user_id=user_id, code_hashes=[two_factor.recovery_code_hash(c)
                                                                        for c in codes])
    return codes


def invalid_mfa_token() -> NuboError:
    return NuboError(401, "invalid_mfa_token", "Sign-in expired or already finished, log in again")


async def finish_login(stores: Stores, mfa_token: str, code: str, client: Client) -> dict[str, Any]:
    """The second step of a login: a TOTP or recovery code for the account the mfa_token
    stands for; answers what login answers without two-factor. The token is spent on success."""
    key = two_factor.mfa_key(stores, mfa_token)
    with sessions_available():
        user_id = await stores.redis.get(key)
    if user_id is None:
        raise invalid_mfa_token()
    user_id = int(user_id)
    await limit_codes(stores, user_id, client.ip)
    async with stores.pg.acquire() as conn:
        totp = await stores.sql.accounts.totp_of(conn, user_id=user_id)
        user = await stores.sql.auth.get_account(conn, user_id=user_id)
    if user is None:
        raise invalid_mfa_token()
    if totp is None or not totp["enabled"]:  # passkeys only, or a secret never confirmed: no code counts
        raise two_factor.invalid_code()
    await two_factor.check_code(stores, user_id, totp, code)
    with sessions_available():
        if not await stores.redis.delete(key):  # finished meanwhile by another request
            raise invalid_mfa_token()
    return await open_session(stores, user, client)
