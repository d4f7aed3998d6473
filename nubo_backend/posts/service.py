"""Posts, likes and feeds: the rules, the cache around them, and the events they cause.

What is cached is what every viewer shares: one entry per post (`post:<id>`), and the id
lists of the first pages (`posts:recent`, `feed:<user id>`). Pages are id lists hydrated
from the post entries, so a like or an edit touches one key, never every page showing the
post. The viewer's own state (`liked_by_me`, `reposted_by_me`, `bookmarked_by_me`) comes
from three cached sets of post ids (`liked:`, `reposted:`, `bookmarked:<user id>`, each
dropped on the change it follows). A cached page is one Redis round trip (`read_view`: the
ids, the entries and the three sets) and is sent on without decoding. The signed-out front page (`GET /posts`)
is also kept whole (`posts:recent:public`), dropped on any post change.

A new post costs its author's request O(1), whatever the audience: one live-only
`post.created` for the followers (`AudienceEvent`), whose relay walks them in pieces, sending
it to those connected and dropping their cached feed first pages (outbox/audience.py). A
deleted post needs no follower's key at all: pages are id lists hydrated from the post
entries, and a post whose entry is gone is left out of every page at once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from orjson import Fragment

from nubo_backend.blocks.visibility import heard, hidden_from, hidden_key
from nubo_backend.edge.errors import forbidden, not_found
from nubo_backend.edge.pagination import DEFAULT_LIMIT, MAX_LIMIT, MAX_ROW_ID, encode_cursor, page
from nubo_backend.jsonutil import dumps, loads
from nubo_backend.media import service as media
from nubo_backend.outbox import AudienceEvent, Event, announce, notification
from nubo_backend.posts.history import announce_edit, keep_post_version
from nubo_backend.posts.mentions import mention_notifications
from nubo_backend.posts.schemas import check_length
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import (
    View,
    get_many_or_load,
    get_or_load,
    invalidate,
    load_members,
    read_view,
)
from nubo_backend.tags.hashtags import store_post_tags  # tags

log = logging.getLogger("nubo.posts")

# The first pages are cached long enough for any ?limit= (fetching limit + 1).
FIRST_PAGE_IDS = MAX_LIMIT + 1


def post_key(stores: Stores, post_id: int) -> str:
    return stores.keys("post", post_id)


def recent_key(stores: Stores) -> str:
    return stores.keys("posts", "recent")


def public_page_key(stores: Stores) -> str:
    """The whole rendered response of `GET /posts` for anonymous readers (default limit)."""
    return stores.keys("posts", "recent", "public")


def feed_key(stores: Stores, user_id: int) -> str:
    return stores.keys("feed", user_id)


def profile_key(stores: Stores, user_id: int) -> str:
    return stores.keys("profile", user_id)


def liked_key(stores: Stores, user_id: int) -> str:
    """The set of post ids a user liked (the viewer part of every post they read)."""
    return stores.keys("liked", user_id)


def reposted_key(stores: Stores, user_id: int) -> str:
    """The set of post ids a user reposted."""
    return stores.keys("reposted", user_id)


def bookmarked_key(stores: Stores, user_id: int) -> str:
    """The set of post ids a user bookmarked."""
    return stores.keys("bookmarked", user_id)


async def quote_keys(stores: Stores, post_id: int) -> list[str]:
    """The cached entries of the quotes of a post, which embed its summary."""
    return [post_key(stores, r["id"]) async for r in stores.sql.posts.quoting_post_ids(stores.pg, post_id=post_id)]


def public_user(row: Any, id_column: str = "id") -> dict[str, Any]:
    """A user as shown beside what they did (post, comment, like, follow), from a row that
    joined users."""
    return {
        "id": row[id_column],
        "username": row["username"],
        "display_name": row["display_name"],
        "avatar_url": row["avatar_url"],
    }


def public_author(row: Any) -> dict[str, Any]:
    """The author shown with a post or comment."""
    return public_user(row, "author_id")


def public_post(row: Any) -> dict[str, Any]:
    """A post as every viewer sees it (the cached part)."""
    return {
        "id": row["id"],
        "author": public_author(row),
        "body": row["body"],
        "media_urls": list(row["media_urls"]),  # read-only: old rows' client-hosted URLs
        "media": [],  # filled by media.media_for_posts / attach_to_post
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "edited_at": row["edited_at"],
        "like_count": row["like_count"],
        "comment_count": row["comment_count"],
        "tags": list(row.get("tags") or ()),  # tags: insert_post's row has none; create_post sets them
        # social31: reposts, quotes, link preview (insert_post's row has none of them yet)
        "repost_count": row.get("repost_count", 0),
        "quote_of": row.get("quote_of"),
        "quote": quoted(row),
        "preview": loads(row["preview"]) if row.get("preview") else None,
    }


def quoted(row: Any) -> dict[str, Any] | None:
    """What a quote shows of the post it quotes (its q_* columns): a summary, or a tombstone
    once that post is deleted."""
    if row.get("quote_of") is None:
        return None
    if row.get("q_id") is None:
        return {"id": row["quote_of"], "deleted": True, "author": None, "body": None,
                "created_at": None, "edited_at": None}
    return {
        "id": row["q_id"],
        "deleted": False,
        "author": {"id": row["q_author_id"], "username": row["q_username"],
                   "display_name": row["q_display_name"], "avatar_url": row["q_avatar_url"]},
        "body": row["q_body"],
        "created_at": row["q_created_at"],
        "edited_at": row["q_edited_at"],
    }


# --- reads -----------------------------------------------------------------------------


async def _load_posts(stores: Stores, ids: list[int]) -> dict[int, dict[str, Any]]:
    posts = {row["id"]: public_post(row) async for row in stores.sql.posts.posts_by_ids(stores.pg, ids=ids)}
    for post_id, attached in (await media.media_for_posts(stores.pg, stores, list(posts))).items():
        posts[post_id]["media"] = attached
    return posts


# The viewer's flags, each with its cached set of post ids and the query that fills it (in
# the order `read_view` is given the sets).
VIEWER_FLAGS = ("liked_by_me", "reposted_by_me", "bookmarked_by_me")
_VIEWER_SETS = (
    (liked_key, "all_liked_post_ids"),
    (reposted_key, "all_reposted_post_ids"),
    (bookmarked_key, "all_bookmarked_post_ids"),
)


def _closing(absent: int) -> bytes:
    """How a cached post (JSON ending in `}`) is closed with the viewer's flags: flag j is
    false when bit j of `absent` is set (`read_view`'s numbering of closings)."""
    return b"".join(b',"%s":%s' % (name.encode(), b"false" if absent >> j & 1 else b"true")
                    for j, name in enumerate(VIEWER_FLAGS)) + b"}"


VIEWER_CLOSINGS = tuple(_closing(absent) for absent in range(2 ** len(VIEWER_FLAGS)))
# A signed-out reader has liked nothing; the other flags are for signed-in viewers only.
ANONYMOUS_CLOSINGS = (b',"liked_by_me":false}',)


def _viewed(raw: bytes, closing: bytes) -> Fragment:
    """A cached post with the viewer's flags spliced in, undecoded."""
    return Fragment(raw[:-1] + closing)


async def _viewer_closings(stores: Stores, viewer_id: int, ids: list[int], view: View | None) -> list[bytes]:
    """The closing of each of ids for the viewer: from the view's set flags, loading (and
    caching) a set that was not cached; one query per set, never per post."""
    if view is None:  # Redis unreachable: ask PostgreSQL about these ids only
        rows = stores.sql.posts.viewer_post_states(stores.pg, user_id=viewer_id, ids=ids)
        states = {r["post_id"]: (r["liked"], r["reposted"], r["bookmarked"]) async for r in rows}
        flags = [[states.get(i, (False,) * len(VIEWER_FLAGS))[j] for i in ids] for j in range(len(VIEWER_FLAGS))]
    else:
        flags = []
        for (key, query), cached in zip(_VIEWER_SETS, view.members, strict=True):
            if cached is None:
                members = await load_members(stores, key(stores, viewer_id), _set_loader(stores, query, viewer_id))
                cached = [str(i) in members for i in ids]
            flags.append(cached)
    return [VIEWER_CLOSINGS[sum((not f[n]) << j for j, f in enumerate(flags))] for n in range(len(ids))]


def _set_loader(stores: Stores, query: str, viewer_id: int) -> Callable[[], Awaitable[list[int]]]:
    async def load() -> list[int]:
        return [r["post_id"] async for r in getattr(stores.sql.posts, query)(stores.pg, user_id=viewer_id)]

    return load


def _viewer_sets(stores: Stores, viewer_id: int | None) -> dict[str, Any]:
    """What `read_view` reads beside the posts for a viewer: the sets of posts they liked,
    reposted and bookmarked (`set_keys`), the users a block hides from them (`whole_set_key`),
    and how a post is closed for each combination of the sets (`closings`)."""
    if viewer_id is None:
        return {"set_keys": (), "whole_set_key": None, "closings": ANONYMOUS_CLOSINGS}
    return {"set_keys": [key(stores, viewer_id) for key, _ in _VIEWER_SETS],
            "whole_set_key": hidden_key(stores, viewer_id), "closings": VIEWER_CLOSINGS}


def _hidden_by(raw: bytes, hidden: frozenset[int]) -> bool:
    """Whether a post is by, or quotes, someone hidden from the viewer."""
    post = loads(raw)
    quote = post.get("quote") or {}
    return post["author"]["id"] in hidden or (quote.get("author") or {}).get("id") in hidden


async def hydrate(
    stores: Stores, ids: list[int], viewer_id: int | None, view: View | None = None,
    hidden: frozenset[int] | None = None,
) -> list[Fragment]:
    """Posts for ids, in that order, as the viewer sees them; ids deleted meanwhile are skipped,
    and so are posts by anyone a block stands between the viewer and (`hidden`, read here
    unless given).

    One round trip when everything is cached (`view`, or read here): entries, the viewer's
    flags and hidden users."""
    if not ids:
        return []
    if view is None:
        sets = _viewer_sets(stores, viewer_id)
        sets["closings"] = None  # entries come back one by one, to leave out what is hidden
        view = await read_view(stores, post_key(stores, ""), ids=ids, **sets)
    if hidden is None:
        hidden = await hidden_from(stores, viewer_id, view.whole_set if view is not None else None)
    entries = await get_many_or_load(stores, ids, lambda i: post_key(stores, i),
                                     lambda missing: _load_posts(stores, missing),
                                     cached=view.entries if view is not None else None)
    closings = (await _viewer_closings(stores, viewer_id, ids, view) if viewer_id is not None
                else ANONYMOUS_CLOSINGS * len(ids))
    return [_viewed(raw, closing) for raw, closing in zip(entries, closings, strict=True)
            if raw is not None and not (hidden and _hidden_by(raw, hidden))]


async def get_post(stores: Stores, post_id: int, viewer_id: int | None) -> Fragment:
    if viewer_id is None:  # anonymous: one GET, sent on as stored
        async def load() -> dict[str, Any] | None:
            return (await _load_posts(stores, [post_id])).get(post_id)

        raw = await get_or_load(stores, post_key(stores, post_id), load)
        found = [_viewed(raw, ANONYMOUS_CLOSINGS[0])] if raw is not None else []
    else:
        found = await hydrate(stores, [post_id], viewer_id)
    if not found:
        raise not_found("Post not found", "post_not_found")
    return found[0]


IdQuery = Callable[[int, int], AsyncIterator[Any]]


async def _id_page(
    stores: Stores,
    query: IdQuery,
    first_page_key: str | None,
    limit: int,
    before: int | None,
    viewer_id: int | None,
    hidden: frozenset[int] | None = None,
) -> dict[str, Any] | Fragment:
    """One page of posts, newest first: ids by keyset (first page cached), then hydration.

    A cached first page is one round trip that returns the items already joined, the
    viewer's flags spliced in (`read_view` with closings); a partly cached one is hydrated.
    `hidden`: the viewer's hidden users, when the caller has them already."""

    async def ids_from(start: int, count: int) -> list[int]:
        return [r["id"] async for r in query(start, count)]

    view = None
    if before is None and first_page_key is not None:
        # The viewer's hidden users come in the same round trip; a viewer whom a block hides
        # anyone from gets the entries back unjoined, to leave out what is hidden.
        sets = _viewer_sets(stores, viewer_id)
        if hidden is not None:  # known already
            sets["whole_set_key"] = None
            if hidden:
                sets["closings"] = None
        view = await read_view(stores, post_key(stores, ""), list_key=first_page_key,
                               take=limit + 1, read=limit, **sets)
        if view is not None and view.joined is not None:
            more = view.taken > limit
            cursor = dumps(encode_cursor([view.last_id]) if more else None)
            return Fragment(b'{"items":' + view.joined + b',"next_cursor":' + cursor + b"}")
        if hidden is None and view is not None:
            hidden = await hidden_from(stores, viewer_id, view.whole_set)
        if view is not None and view.ids is not None:
            ids = view.ids
        else:
            view = None
            raw = await get_or_load(stores, first_page_key, lambda: ids_from(MAX_ROW_ID, FIRST_PAGE_IDS))
            ids = loads(raw)[: limit + 1] if raw is not None else []
    else:
        ids = await ids_from(before or MAX_ROW_ID, limit + 1)
    result = page(ids, limit, lambda post_id: [post_id])
    result["items"] = await hydrate(stores, result["items"], viewer_id, view, hidden)
    return result


async def recent_posts(
    stores: Stores, limit: int, before: int | None, viewer_id: int | None
) -> dict[str, Any] | Fragment:
    def query(start: int, count: int) -> AsyncIterator[Any]:
        return stores.sql.posts.recent_post_ids(stores.pg, before=start, lim=count)

    if before is None and viewer_id is None and limit == DEFAULT_LIMIT:
        # The front page as everyone sees it signed out: one GET of the finished response.
        async def render() -> dict[str, Any]:
            return await _id_page(stores, query, recent_key(stores), limit, None, None)

        raw = await get_or_load(stores, public_page_key(stores), render)
        return Fragment(raw)
    return await _id_page(stores, query, recent_key(stores), limit, before, viewer_id)


async def feed(stores: Stores, user_id: int, limit: int, before: int | None) -> dict[str, Any] | Fragment:
    def query(start: int, count: int) -> AsyncIterator[Any]:
        return stores.sql.posts.feed_post_ids(stores.pg, user_id=user_id, before=start, lim=count)

    return await _id_page(stores, query, feed_key(stores, user_id), limit, before, user_id)


async def user_posts(
    stores: Stores, author_id: int, limit: int, before: int | None, viewer_id: int | None
) -> dict[str, Any] | Fragment:
    hidden = await hidden_from(stores, viewer_id)
    if author_id in hidden or not await stores.sql.users.user_exists(stores.pg, user_id=author_id):
        raise not_found("User not found", "user_not_found")

    def query(start: int, count: int) -> AsyncIterator[Any]:
        return stores.sql.posts.user_post_ids(stores.pg, author_id=author_id, before=start, lim=count)

    return await _id_page(stores, query, None, limit, before, viewer_id, hidden)


# --- writes ----------------------------------------------------------------------------


async def post_changed(stores: Stores, post_id: int, *extra: str) -> None:
    """A post's content or counts changed: its entry, and the rendered front page showing it."""
    await invalidate(stores, post_key(stores, post_id), public_page_key(stores), *extra)


async def _invalidate_timelines(stores: Stores, author_id: int, *extra: str) -> None:
    """A post appeared or vanished: the pages everyone shares, the author's own, the post
    count. (Followers' feeds: the relay drops them for a new post; a deleted one drops out.)"""
    await invalidate(
        stores, recent_key(stores), public_page_key(stores), profile_key(stores, author_id),
        feed_key(stores, author_id), *extra,
    )


async def create_post(
    stores: Stores, author_id: int, body: str, media_ids: list[int], quote_of: int | None = None
) -> dict[str, Any]:
    check_length("body", body, stores.settings.post_max_length)
    if quote_of is not None:
        await visible_author(stores, quote_of, author_id)  # social31: no quote across a block (404)
    async with stores.pg.acquire() as conn, conn.transaction():  # the post, its media and its events commit together
        row = await stores.sql.posts.insert_post(conn, author_id=author_id, body=body, media_urls=[])
        post = public_post(row)
        post["media"] = await media.attach_to_post(conn, stores, author_id, row["id"], media_ids)
        post["tags"] = await store_post_tags(conn, stores, row["id"], body)  # tags
        mentions = await mention_notifications(conn, stores, author_id, body, {"post_id": post["id"]})
        if quote_of is not None:  # social31: the quoted post's author is told
            mentions.append(await _quote(conn, stores, post, quote_of))
        await announce(conn, stores, AudienceEvent(author_id, "post.created", {"post": post}),
                       *await heard(conn, stores, author_id, *mentions))
    await _invalidate_timelines(stores, author_id)
    post.update(dict.fromkeys(VIEWER_FLAGS, False))
    return post


async def _quote(conn: asyncpg.Connection, stores: Stores, post: dict[str, Any], quote_of: int) -> Event | None:
    """Make the new post a quote of quote_of; the notification for the quoted post's author."""
    row = await stores.sql.posts.set_quote_of(conn, post_id=post["id"], quote_of=quote_of)
    if row is None:  # deleted since visible_author looked
        raise not_found("Post not found", "post_not_found")
    post["quote_of"], post["quote"] = quote_of, quoted({**dict(row), "quote_of": quote_of})
    return notification(row["q_author_id"], "quote.created",
                        {"post_id": quote_of, "quote_id": post["id"], "actor_id": post["author"]["id"]})


async def _own_post(stores: Stores, post_id: int, user_id: int) -> None:
    author_id = await stores.sql.posts.post_author_id(stores.pg, post_id=post_id)
    if author_id is None:
        raise not_found("Post not found", "post_not_found")
    if author_id != user_id:
        raise forbidden("Only the author may change this post", "not_author")


async def update_post(
    stores: Stores, post_id: int, user_id: int, body: str | None, media_urls: list[str] | None
) -> Fragment:
    if body is not None:
        check_length("body", body, stores.settings.post_max_length)
    await _own_post(stores, post_id, user_id)
    async with stores.pg.acquire() as conn, conn.transaction():  # tags: a body and its tags change together
        await keep_post_version(conn, stores, post_id, user_id)  # social31: edit history
        row = await stores.sql.posts.update_post(
            conn, post_id=post_id, author_id=user_id, body=body, media_urls=media_urls
        )
        if row is not None and body is not None:
            await store_post_tags(conn, stores, post_id, body, replace=True)  # tags
        if row is not None:  # social31: reposters and quoters hear of the edit
            await announce_edit(conn, stores, post_id, user_id, public_post(row))
    if row is None:  # deleted between the check and the update
        raise not_found("Post not found", "post_not_found")
    await post_changed(stores, post_id, *await quote_keys(stores, post_id))
    return await get_post(stores, post_id, user_id)


async def delete_post(stores: Stores, post_id: int, user_id: int) -> None:
    await _own_post(stores, post_id, user_id)
    if await stores.sql.posts.delete_post(stores.pg, post_id=post_id, author_id=user_id) is None:
        raise not_found("Post not found", "post_not_found")
    media.collect_later(stores)  # media: the cascade queued the post's files; remove them
    await invalidate(stores, *await quote_keys(stores, post_id))  # social31: quotes show a tombstone
    await _invalidate_timelines(stores, user_id, post_key(stores, post_id))


async def visible_author(stores: Stores, post_id: int, viewer_id: int) -> int:
    """The post's author; 404 when there is no such post, or a block hides it from the viewer."""
    author_id = await stores.sql.posts.post_author_id(stores.pg, post_id=post_id)
    if author_id is None or author_id in await hidden_from(stores, viewer_id):
        raise not_found("Post not found", "post_not_found")
    return author_id


async def like_post(stores: Stores, post_id: int, user_id: int) -> Fragment:
    """Idempotent: liking twice counts once. A post a block hides cannot be liked (404)."""
    await visible_author(stores, post_id, user_id)
    try:
        async with stores.pg.acquire() as conn, conn.transaction():
            author_id = await stores.sql.posts.like_post(conn, post_id=post_id, user_id=user_id)
            if author_id is not None:
                await announce(conn, stores, *await heard(conn, stores, user_id, notification(
                    author_id, "like.created", {"post_id": post_id, "actor_id": user_id})))
    except asyncpg.ForeignKeyViolationError:
        raise not_found("Post not found", "post_not_found") from None
    if author_id is not None:
        # The liker's set is dropped, not edited: a like and an unlike racing would apply
        # their edits in either order, while a reload after both always reads the truth.
        await post_changed(stores, post_id, liked_key(stores, user_id))
    return await get_post(stores, post_id, user_id)


async def unlike_post(stores: Stores, post_id: int, user_id: int) -> Fragment:
    """Idempotent: unliking a post not liked changes nothing."""
    if await stores.sql.posts.unlike_post(stores.pg, post_id=post_id, user_id=user_id) is not None:
        await post_changed(stores, post_id, liked_key(stores, user_id))
    return await get_post(stores, post_id, user_id)
