"""Blocking and muting: the actions (idempotent) and the caller's own lists.

A block undoes follows both ways (counters included) and drops every cached page it changes
before it answers; what it then hides is decided by `visibility.py` wherever content is read
or sent. A mute touches the muter's feed only, and tells nobody.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from nubo_backend.blocks.visibility import hidden_key
from nubo_backend.edge.errors import NuboError, not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, page
from nubo_backend.posts.service import feed_key, profile_key, public_user
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import invalidate


def _user_not_found() -> NuboError:
    return not_found("User not found", "user_not_found")


def _not_yourself(user_id: int, other_id: int, verb: str) -> None:
    if user_id == other_id:
        raise NuboError(
            422,
            f"self_{verb}",
            f"You cannot {verb} yourself",
            details=[{"field": "id", "message": f"Cannot {verb} yourself"}],
        )


async def _require_user(stores: Stores, user_id: int) -> None:
    if not await stores.sql.users.user_exists(stores.pg, user_id=user_id):
        raise _user_not_found()


async def block(stores: Stores, blocker_id: int, blocked_id: int) -> dict[str, Any]:
    """Block a user (idempotent): follows both ways go, and neither sees the other from now on."""
    _not_yourself(blocker_id, blocked_id, "block")
    q = stores.sql
    try:
        async with stores.pg.acquire() as conn, conn.transaction():
            [_ async for _ in q.users.lock_user_pair(conn, user_id=blocker_id, other_id=blocked_id)]
            created = await q.blocks.insert_block(conn, blocker_id=blocker_id, blocked_id=blocked_id)
            unfollowed = False
            if created:
                for follower, followed in ((blocker_id, blocked_id), (blocked_id, blocker_id)):
                    unfollowed |= bool(await q.users.unfollow(conn, follower_id=follower, followed_id=followed))
    except asyncpg.ForeignKeyViolationError:
        raise _user_not_found() from None
    if created:
        await _after_block_change(stores, blocker_id, blocked_id, counts_changed=unfollowed)
    return {"user_id": blocked_id, "blocked": True}


async def unblock(stores: Stores, blocker_id: int, blocked_id: int) -> dict[str, Any]:
    """Lift a block (idempotent). Follows it removed are not restored."""
    _not_yourself(blocker_id, blocked_id, "block")
    await _require_user(stores, blocked_id)
    if await stores.sql.blocks.delete_block(stores.pg, blocker_id=blocker_id, blocked_id=blocked_id):
        await _after_block_change(stores, blocker_id, blocked_id, counts_changed=False)
    return {"user_id": blocked_id, "blocked": False}


async def _after_block_change(stores: Stores, a: int, b: int, *, counts_changed: bool) -> None:
    # Both hidden sets change; both feeds may gain or lose the other's posts; the profiles'
    # follower counts moved if follows went.
    keys = [hidden_key(stores, a), hidden_key(stores, b), feed_key(stores, a), feed_key(stores, b)]
    if counts_changed:
        keys += [profile_key(stores, a), profile_key(stores, b)]
    await invalidate(stores, *keys)


async def mute(stores: Stores, muter_id: int, muted_id: int) -> dict[str, Any]:
    """Mute a user (idempotent, silent): their posts leave the muter's feed, their
    notifications stop reaching the muter."""
    _not_yourself(muter_id, muted_id, "mute")
    try:
        created = await stores.sql.blocks.insert_mute(stores.pg, muter_id=muter_id, muted_id=muted_id)
    except asyncpg.ForeignKeyViolationError:
        raise _user_not_found() from None
    if created:
        await invalidate(stores, feed_key(stores, muter_id))
    return {"user_id": muted_id, "muted": True}


async def unmute(stores: Stores, muter_id: int, muted_id: int) -> dict[str, Any]:
    _not_yourself(muter_id, muted_id, "mute")
    await _require_user(stores, muted_id)
    if await stores.sql.blocks.delete_mute(stores.pg, muter_id=muter_id, muted_id=muted_id):
        await invalidate(stores, feed_key(stores, muter_id))
    return {"user_id": muted_id, "muted": False}


async def list_blocks(stores: Stores, user_id: int, limit: int, before: int | None) -> dict[str, Any]:
    """The people the caller blocked, most recent block first."""
    rows = stores.sql.blocks.blocks_page(stores.pg, user_id=user_id, before=before or MAX_ROW_ID, lim=limit + 1)
    result = page([r async for r in rows], limit, lambda r: [r["block_id"]])
    result["items"] = [{**public_user(r), "blocked_at": r["blocked_at"]} for r in result["items"]]
    return result


async def list_mutes(stores: Stores, user_id: int, limit: int, before: int | None) -> dict[str, Any]:
    """The people the caller muted, most recent mute first."""
    rows = stores.sql.blocks.mutes_page(stores.pg, user_id=user_id, before=before or MAX_ROW_ID, lim=limit + 1)
    result = page([r async for r in rows], limit, lambda r: [r["mute_id"]])
    result["items"] = [{**public_user(r), "muted_at": r["muted_at"]} for r in result["items"]]
    return result
