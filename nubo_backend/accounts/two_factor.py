"""TOTP (RFC 6238) and recovery codes: enrolment, checking a code once, and the login challenge."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import pyotp
from asyncpg import Record
from redis.exceptions import RedisError

from nubo_backend.edge.errors import NuboError
from nubo_backend.stores import Stores

ISSUER = "Nubo"
RECOVERY_CODES = 10
# One step either side of now is accepted: a phone's clock a little off, a code typed as it turned.
DRIFT_STEPS = 1
_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def invalid_code() -> NuboError:
    return NuboError(401, "invalid_code", "Invalid or already used code")


def new_secret() -> str:
    return pyotp.random_base32()


def otpauth_uri(secret: str, account_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=ISSUER)


def new_recovery_codes() -> list[str]:
    """RECOVERY_CODES codes of 16 characters (about 78 bits each), shown as xxxx-xxxx-xxxx-xxxx."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
    return codes


def recovery_code_hash(code: str) -> bytes:
    # Typed loosely: any case, with or without the dashes or spaces.
    normal = "".join(c for c in code.lower() if c.isalnum())
    return hashlib.sha256(normal.encode()).digest()


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose TOTP code is `code` (within the drift), or None."""
    if not (len(code) == 6 and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // totp.interval)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def check_code(stores: Stores, user_id: int, totp: Record, code: str, *, recovery: bool = True) -> None:
    """Accept `code` once: a TOTP code whose step is newer than the last accepted one, or (when
    `recovery`) an unused recovery code, which is spent. 401 otherwise."""
    q = stores.sql.accounts
    code = code.strip()
    step = matching_step(totp["secret"], code.replace(" ", ""))
    async with stores.pg.acquire() as conn:
        if step is not None:
            if await q.accept_totp_step(conn, user_id=user_id, step=step) is not None:
                return
        elif recovery and await q.use_recovery_code(conn, user_id=user_id, code_hash=recovery_code_hash(code)):
            return
    raise invalid_code()


async def challenge(stores: Stores, user: Record | dict[str, Any]) -> dict[str, Any] | None:
    """Login's second step: when the account has two-factor on, the answer that asks for a code
    (an `mfa_token` good for mfa_token_ttl seconds) instead of a session; else None.

    Called by auth.service.login once the password is right."""
    async with stores.pg.acquire() as conn:
        if not await stores.sql.accounts.two_factor_on(conn, user_id=user["id"]):
            return None
    token = secrets.token_urlsafe(32)
    ttl = stores.settings.mfa_token_ttl
    try:
        await stores.redis.set(mfa_key(stores, token), str(user["id"]), ex=ttl)
    except (RedisError, OSError) as exc:  # as login answers when it cannot open a session
        raise NuboError(503, "service_unavailable", "Sessions are unavailable, retry shortly") from exc
    return {"mfa_required": True, "mfa_token": token, "expires_in": ttl}


def mfa_key(stores: Stores, token: str) -> str:
    # Hashed: a Redis dump holds no token that finishes a login.
    return stores.keys("mfa", hashlib.sha256(token.encode()).hexdigest())
