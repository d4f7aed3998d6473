"""`nubo role USER moderator|user`: set an account's role, straight in PostgreSQL, recorded in
the moderation log (moderator_id NULL: done from the command line)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from nubo_backend.auth.minting import CLI_STORE_WAIT_SECONDS
from nubo_backend.edge.pagination import MAX_ROW_ID
from nubo_backend.jsonutil import dumps_str
from nubo_backend.moderation.schemas import ROLES
from nubo_backend.settings import Settings, mask_url
from nubo_backend.stores.sql import load_queries
from nubo_backend.stores.startup import short_reason


class RoleError(Exception):
    """The role cannot be set; the message says why."""


@dataclass(frozen=True)
class RoleChange:
    user_id: int
    username: str
    before: str
    after: str


async def set_role(settings: Settings, who: str, role: str) -> RoleChange:
    """Give the account named by `who` (username or numeric id) the role `role`."""
    if role not in ROLES:
        raise RoleError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    user_id = int(who) if who.isascii() and who.isdigit() else None
    if user_id is not None and not 0 < user_id <= MAX_ROW_ID:
        raise RoleError(f"no user {who!r}")
    try:  # one attempt, no retries: a person is waiting, and retries would log a line each
        conn = await asyncpg.connect(settings.postgres_dsn, timeout=CLI_STORE_WAIT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any driver error becomes one line
        raise RoleError(
            f"PostgreSQL unreachable at {mask_url(settings.postgres_dsn)} (NUBO_POSTGRES_DSN): {short_reason(exc)}"
        ) from None
    q = load_queries().moderation
    try:
        async with conn.transaction():
            user = await q.find_user(conn, user_id=user_id, username=who)
            if user is None:
                raise RoleError(f"no user {who!r} in {mask_url(settings.postgres_dsn)}")
            changed = await q.set_role(conn, user_id=user["id"], role=role)
            await q.record_action(
                conn, report_id=None, moderator_id=None, action="set_role", target_type="user",
                target_id=user["id"], details=dumps_str({"from": user["role"], "to": role}),
            )
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
        raise RoleError("database not migrated: run `nubo migrate`") from None
    finally:
        await conn.close()
    return RoleChange(changed["id"], changed["username"], user["role"], role)
