"""Access tokens: short-lived JWTs, HS256 only, bound to a revocable session (`sid`)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"  # pinned: the verifier accepts nothing else, `none` included
REQUIRED_CLAIMS = ["sub", "sid", "iat", "exp", "jti"]
# Instances' clocks disagree (an NTP step pending, a VM resumed): a token minted on one running
# ahead has an `iat` in the others' future. Accept that much skew for `iat`/`nbf`, which say
# nothing about the token's life; `exp` gets none, so a token lives no longer than minted for.
CLOCK_LEEWAY = 180


class InvalidToken(Exception):
    """Malformed, expired, wrongly signed or otherwise unacceptable token."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    session_id: str
    issued_at: int
    expires_at: int
    token_id: str


def mint_access_token(
    secret: str, user_id: int, session_id: str, ttl: int, now: float | None = None
) -> tuple[str, int]:
    """Return the token and its expiry (Unix seconds)."""
    issued = int(now if now is not None else time.time())
    expires = issued + ttl
    claims = {
        "sub": str(user_id),
        "sid": session_id,
        "iat": issued,
        "exp": expires,
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def decode_access_token(secret: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS, "verify_iat": False, "verify_nbf": False},
        )
        _not_before(claims)
        return AccessClaims(
            user_id=int(claims["sub"]),
            session_id=str(claims["sid"]),
            issued_at=int(claims["iat"]),
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def _not_before(claims: dict) -> None:
    """PyJWT's iat/nbf checks, with CLOCK_LEEWAY (its `leeway` would stretch exp as much)."""
    latest = time.time() + CLOCK_LEEWAY
    for claim in ("iat", "nbf"):
        value = claims.get(claim)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidToken(f"{claim} must be a number")
        if value > latest:
            raise InvalidToken(f"The token is not yet valid ({claim})")


class TokenVerifier:
    """decode_access_token with a bounded memo of tokens already verified.

    A client sends the same access token with every request for its whole life, and
    verifying it (base64, JSON, HMAC) is a sizeable part of a cached read. The result is
    a pure function of the token and the secret, so it is remembered until the token's
    `exp`; revocation is unaffected, since the guard still checks the session every time.
    """

    def __init__(self, secret: str, max_entries: int = 50_000) -> None:
        self._secret = secret
        self._max_entries = max_entries
        self._verified: dict[str, AccessClaims] = {}

    def verify(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = decode_access_token(self._secret, token)
            if len(self._verified) >= self._max_entries:
                del self._verified[next(iter(self._verified))]  # oldest first
            self._verified[token] = claims
        elif claims.expires_at <= time.time():
            del self._verified[token]
            raise InvalidToken("token expired")
        return claims
