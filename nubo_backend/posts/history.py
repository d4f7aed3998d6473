"""Edit history of posts: every edit keeps the version it replaced, listed newest first, and
those who reposted or quoted the post hear of the edit (`post.updated`), as on Mastodon."""

from __future__ import annotations

from typing import Any

import asyncpg

from nubo_backend.blocks.visibility import hidden_from, without_blocked
from nubo_backend.edge.errors import not_found
from nubo_backend.edge.pagination import MAX_ROW_ID, page
from nubo_backend.outbox import Event, announce
from nubo_backend.stores import Stores


async def keep_post_version(conn: asyncpg.Connection, stores: Stores, post_id: int, author_id: int) -> None:
    """In the editing transaction, before the update: keep the version about to be replaced."""
    await stores.sql.posts.keep_post_version(conn, post_id=post_id, author_id=author_id)


async def announce_edit(
    conn: asyncpg.Connection, stores: Stores, post_id: int, author_id: int, post: dict[str, Any]
) -> None:
    """`post.updated` to everyone who reposted or quoted the post, across no block; the
    transaction's one announce."""
    rows = stores.sql.posts.edit_audience(conn, post_id=post_id, author_id=author_id)
    audience = await without_blocked(conn, stores, author_id, [r["user_id"] async for r in rows])
    audience = [uid for uid in audience if uid != author_id]
    data = {"post_id": post_id, "body": post["body"], "edited_at": post["edited_at"]}
    await announce(conn, stores, Event(audience, "post.updated", data))


def public_version(row: Any) -> dict[str, Any]:
    return {"body": row["body"], "written_at": row["written_at"], "replaced_at": row["replaced_at"]}


async def post_history(
    stores: Stores, post_id: int, limit: int, before: int | None, viewer_id: int | None
) -> dict[str, Any]:
    """The versions a post's edits replaced, newest first; 404 for a post a block hides."""
    author_id = await stores.sql.posts.post_author_id(stores.pg, post_id=post_id)
    if author_id is None or author_id in await hidden_from(stores, viewer_id):
        raise not_found("Post not found", "post_not_found")
    rows = stores.sql.posts.post_versions_page(stores.pg, post_id=post_id, before=before or MAX_ROW_ID,
                                               lim=limit + 1)
    result = page([r async for r in rows], limit, lambda r: [r["id"]])
    result["items"] = [public_version(r) for r in result["items"]]
    return result


