"""Comments: oldest first, changed by their author, deletable by the post's author too."""

from __future__ import annotations

from typing import Any

import asyncpg

from nubo_backend.blocks.visibility import heard, hidden_from
from nubo_backend.edge.errors import forbidden, not_found
from nubo_backend.edge.pagination import page
from nubo_backend.outbox import announce, notification
from nubo_backend.posts.mentions import mention_notifications
from nubo_backend.posts.schemas import check_length
from nubo_backend.posts.service import post_changed, public_author, visible_author
from nubo_backend.stores import Stores


def public_comment(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "post_id": row["post_id"],
        "author": public_author(row),
        "body": row["body"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "edited_at": row["edited_at"],
    }


def _post_not_found() -> Exception:
    return not_found("Post not found", "post_not_found")


def _comment_not_found() -> Exception:
    return not_found("Comment not found", "comment_not_found")


async def add_comment(stores: Stores, post_id: int, user_id: int, body: str) -> dict[str, Any]:
    check_length("body", body, stores.settings.comment_max_length)
    await visible_author(stores, post_id, user_id)  # no comment crosses a block (404)
    try:
        async with stores.pg.acquire() as conn, conn.transaction():
            row = await stores.sql.posts.insert_comment(conn, post_id=post_id, author_id=user_id, body=body)
            comment = public_comment(row)
            about = {"post_id": post_id, "comment_id": comment["id"]}
            await announce(conn, stores, *await heard(
                conn, stores, user_id,
                notification(row["post_author_id"], "comment.created", {**about, "actor_id": user_id}),
                *await mention_notifications(conn, stores, user_id, body, about),
            ))
    except asyncpg.ForeignKeyViolationError:
        raise _post_not_found() from None
    await post_changed(stores, post_id)
    return comment


async def list_comments(
    stores: Stores, post_id: int, limit: int, after: int | None, viewer_id: int | None = None
) -> dict[str, Any]:
    """Oldest first. A post a block hides from the viewer is 404; comments by people a block
    stands between the viewer and are left out of the page (the cursor still moves past them)."""
    hidden = await hidden_from(stores, viewer_id)
    author_id = await stores.sql.posts.post_author_id(stores.pg, post_id=post_id)
    if author_id is None or author_id in hidden:
        raise _post_not_found()
    rows = stores.sql.posts.comments_page(stores.pg, post_id=post_id, after=after or 0, lim=limit + 1)
    result = page([public_comment(r) async for r in rows], limit, lambda c: [c["id"]])
    result["items"] = [c for c in result["items"] if c["author"]["id"] not in hidden]
    return result


async def _owners(stores: Stores, comment_id: int) -> Any:
    owners = await stores.sql.posts.comment_owners(stores.pg, comment_id=comment_id)
    if owners is None:
        raise _comment_not_found()
    return owners


async def update_comment(stores: Stores, comment_id: int, user_id: int, body: str) -> dict[str, Any]:
    check_length("body", body, stores.settings.comment_max_length)
    if (await _owners(stores, comment_id))["author_id"] != user_id:
        raise forbidden("Only the author may edit this comment", "not_author")
    row = await stores.sql.posts.update_comment(
        stores.pg, comment_id=comment_id, author_id=user_id, body=body
    )
    if row is None:
        raise _comment_not_found()
    return public_comment(row)


async def delete_comment(stores: Stores, comment_id: int, user_id: int) -> None:
    owners = await _owners(stores, comment_id)
    if user_id not in (owners["author_id"], owners["post_author_id"]):
        raise forbidden("Only the comment's or the post's author may delete it", "not_author")
    if await stores.sql.posts.delete_comment(stores.pg, comment_id=comment_id) is None:
        raise _comment_not_found()
    await post_changed(stores, owners["post_id"])
