"""Single-use links mailed to an account: made, stored hashed, taken once."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any
from urllib.parse import quote

import asyncpg
from asyncpg import Record

from nubo_backend.edge.errors import NuboError
from nubo_backend.mail.queue import enqueue
from nubo_backend.mail.templates import render
from nubo_backend.stores import Stores

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
CHANGE_EMAIL = "change_email"


def new_token() -> str:
    """256 random bits, 43 URL-safe characters."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def link(stores: Stores, path: str, token: str) -> str:
    return f"{stores.settings.public_url.rstrip('/')}{path}?token={quote(token)}"


def invalid_link() -> NuboError:
    # 401, as /refresh answers a refresh token it does not know: the token is the credential.
    return NuboError(401, "invalid_link", "This link is invalid, used or expired: ask for a new one")


async def issue(conn: asyncpg.Connection, stores: Stores, user_id: int, purpose: str, email: str,
                ttl: int) -> str:
    """A new token for (account, purpose), superseding the previous one; returns the token."""
    token = new_token()
    await stores.sql.accounts.replace_token(conn, token_hash=token_hash(token), user_id=user_id,
                                            purpose=purpose, email=email, ttl_seconds=ttl)
    return token


async def take(conn: asyncpg.Connection, stores: Stores, token: str, *purposes: str) -> Record:
    """The token's row, deleted (single use); 400 when unknown, used, superseded or expired."""
    row = await stores.sql.accounts.take_token(conn, token_hash=token_hash(token), purposes=list(purposes))
    if row is None or not row["live"]:
        raise invalid_link()
    return row


async def send_verification(conn: asyncpg.Connection, stores: Stores, user: Record | dict[str, Any]) -> None:
    """Mail `user` a link verifying their address, in conn's open transaction (signup calls it)."""
    ttl = stores.settings.verify_token_ttl
    token = await issue(conn, stores, user["id"], VERIFY_EMAIL, user["email"], ttl)
    mail = render(VERIFY_EMAIL, user["language"], username=user["username"], email=user["email"],
                  link=link(stores, "/email/verify", token), hours=ttl // 3600)
    await enqueue(conn, stores, user["email"], mail)
