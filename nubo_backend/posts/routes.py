"""HTTP for posts, comments, likes and the feed: parse, authorise, call the service, respond."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.accounts.verified import require_verified_email
from nubo_backend.auth.budgets import budgeted
from nubo_backend.auth.guard import caller_id, optional_auth, require_auth, viewer_id
from nubo_backend.edge.pagination import PageQuery, decode_id_cursor, decode_time_id_cursor, page_parameters
from nubo_backend.edge.replies import no_content, refusal, returns
from nubo_backend.edge.validation import parse_body, parse_query
from nubo_backend.jsonutil import json_response
from nubo_backend.posts import bookmarks, comments, history, likers, reposts, service
from nubo_backend.posts.schemas import (
    CommentIn,
    CommentOut,
    CommentPage,
    LikerPage,
    PostIn,
    PostOut,
    PostPage,
    PostPatch,
    PostVersionPage,
    ReposterPage,
)
from nubo_backend.previews.service import preview_post_later

bp = Blueprint("posts")

# A first page asked for with no query string at all, as most are: PageQuery's defaults, the
# same that parse_query would validate from nothing, without validating them each time
# (3-4 µs of a cached page's ~40, docs/benchmarks.md). Query models are only read.
_FIRST_PAGE = PageQuery()


def _page_query(request: Request) -> PageQuery:
    return parse_query(request, PageQuery) if request.query_string else _FIRST_PAGE


@bp.post("/posts")
@openapi.tag("posts")
@returns(201, PostOut, "The post")
@openapi.body({"application/json": openapi.Component(PostIn)}, required=True)
@require_auth
@budgeted("post")
async def create_post(request: Request) -> HTTPResponse:
    """Publish a post `{body, media_ids?, quote_of?}` (ids from POST /media; `quote_of`: the post it
    quotes, whose author is notified); its author's followers get `post.created`."""
    data = parse_body(request, PostIn)
    await require_verified_email(request.app.ctx.stores, caller_id(request))  # NUBO_EMAIL_VERIFICATION
    post = await service.create_post(request.app.ctx.stores, caller_id(request), data.body, data.media_ids,
                                     data.quote_of)
    preview_post_later(request.app.ctx.stores, post["id"], data.body)  # after the commit, in the background
    return json_response(post, status=201)


@bp.get("/posts")
@openapi.tag("posts")
@returns(200, PostPage)
@page_parameters
@optional_auth
async def list_posts(request: Request) -> HTTPResponse:
    """Every user's posts, newest first (readable without auth)."""
    query = _page_query(request)
    result = await service.recent_posts(request.app.ctx.stores, query.limit, decode_id_cursor(query.cursor),
                                        viewer_id(request))
    return json_response(result)


@bp.get("/posts/<post_id:id>")
@openapi.tag("posts")
@returns(200, PostOut)
@optional_auth
async def get_post(request: Request, post_id: int) -> HTTPResponse:
    """One post (readable without auth); a signed-in viewer also gets `reposted_by_me` and `bookmarked_by_me`."""
    post = await service.get_post(request.app.ctx.stores, post_id, viewer_id(request))
    return json_response(post)


@bp.patch("/posts/<post_id:id>")
@openapi.tag("posts")
@returns(200, PostOut, "The post as edited")
@refusal(403, "Not your post")
@openapi.body({"application/json": openapi.Component(PostPatch)}, required=True)
@require_auth
@budgeted("post")
async def update_post(request: Request, post_id: int) -> HTTPResponse:
    """Edit a post's body (author only); the version it replaces is kept (GET /posts/{id}/history)."""
    data = parse_body(request, PostPatch)
    post = await service.update_post(request.app.ctx.stores, post_id, caller_id(request),
                                     data.body, None)
    preview_post_later(request.app.ctx.stores, post_id, data.body, edited=True)  # the card follows the link
    return json_response(post)


@bp.delete("/posts/<post_id:id>")
@openapi.tag("posts")
@no_content("The post is deleted")
@refusal(403, "Not your post")
@require_auth
async def delete_post(request: Request, post_id: int) -> HTTPResponse:
    """Delete a post with its comments and likes, permanently (author only)."""
    await service.delete_post(request.app.ctx.stores, post_id, caller_id(request))
    return HTTPResponse(status=204)


@bp.put("/posts/<post_id:id>/like")
@openapi.tag("posts")
@returns(200, PostOut, "The post, liked")
@require_auth
@budgeted("like")
async def like_post(request: Request, post_id: int) -> HTTPResponse:
    """Like a post (idempotent); returns the post."""
    post = await service.like_post(request.app.ctx.stores, post_id, caller_id(request))
    return json_response(post)


@bp.delete("/posts/<post_id:id>/like")
@openapi.tag("posts")
@returns(200, PostOut, "The post, not liked")
@require_auth
@budgeted("like")
async def unlike_post(request: Request, post_id: int) -> HTTPResponse:
    """Take a like back (idempotent); returns the post."""
    post = await service.unlike_post(request.app.ctx.stores, post_id, caller_id(request))
    return json_response(post)


@bp.get("/posts/<post_id:id>/likes")
@openapi.tag("posts")
@returns(200, LikerPage)
@page_parameters
@optional_auth
async def list_likers(request: Request, post_id: int) -> HTTPResponse:
    """Who liked a post, most recent like first (readable without auth)."""
    query = parse_query(request, PageQuery)
    result = await likers.likers(request.app.ctx.stores, post_id, query.limit,
                                 decode_time_id_cursor(query.cursor), viewer_id(request))
    return json_response(result)


@bp.put("/posts/<post_id:id>/repost")
@openapi.tag("posts")
@returns(200, PostOut, "The post, reposted")
@require_auth
async def repost(request: Request, post_id: int) -> HTTPResponse:
    """Repost a post to the caller's followers' feeds (idempotent); its author is notified."""
    post = await reposts.repost(request.app.ctx.stores, post_id, caller_id(request))
    return json_response(post)


@bp.delete("/posts/<post_id:id>/repost")
@openapi.tag("posts")
@returns(200, PostOut, "The post, not reposted")
@require_auth
async def unrepost(request: Request, post_id: int) -> HTTPResponse:
    """Take a repost back (idempotent); returns the post."""
    post = await reposts.unrepost(request.app.ctx.stores, post_id, caller_id(request))
    return json_response(post)


@bp.get("/posts/<post_id:id>/reposts")
@openapi.tag("posts")
@returns(200, ReposterPage)
@page_parameters
@optional_auth
async def list_reposters(request: Request, post_id: int) -> HTTPResponse:
    """Who reposted a post, most recent repost first (readable without auth)."""
    query = parse_query(request, PageQuery)
    result = await reposts.reposters(request.app.ctx.stores, post_id, query.limit,
                                     decode_id_cursor(query.cursor), viewer_id(request))
    return json_response(result)


@bp.put("/posts/<post_id:id>/bookmark")
@openapi.tag("bookmarks")
@returns(200, PostOut, "The post, bookmarked")
@require_auth
async def bookmark(request: Request, post_id: int) -> HTTPResponse:
    """Bookmark a post (idempotent, private to the caller); returns the post."""
    post = await bookmarks.bookmark(request.app.ctx.stores, post_id, caller_id(request))
    return json_response(post)


@bp.delete("/posts/<post_id:id>/bookmark")
@openapi.tag("bookmarks")
@returns(200, PostOut, "The post, not bookmarked")
@require_auth
async def unbookmark(request: Request, post_id: int) -> HTTPResponse:
    """Remove a bookmark (idempotent); returns the post."""
    post = await bookmarks.unbookmark(request.app.ctx.stores, post_id, caller_id(request))
    return json_response(post)


@bp.get("/me/bookmarks")
@openapi.tag("bookmarks")
@returns(200, PostPage)
@page_parameters
@require_auth
async def list_bookmarks(request: Request) -> HTTPResponse:
    """The caller's bookmarked posts, most recent bookmark first."""
    query = parse_query(request, PageQuery)
    result = await bookmarks.bookmarks(request.app.ctx.stores, caller_id(request), query.limit,
                                       decode_id_cursor(query.cursor))
    return json_response(result)


@bp.get("/posts/<post_id:id>/history")
@openapi.tag("posts")
@returns(200, PostVersionPage)
@page_parameters
@optional_auth
async def post_history(request: Request, post_id: int) -> HTTPResponse:
    """The versions a post's edits replaced, newest first (readable without auth)."""
    query = parse_query(request, PageQuery)
    result = await history.post_history(request.app.ctx.stores, post_id, query.limit,
                                        decode_id_cursor(query.cursor), viewer_id(request))
    return json_response(result)


@bp.get("/feed")
@openapi.tag("posts")
@returns(200, PostPage)
@page_parameters
@require_auth
async def feed(request: Request) -> HTTPResponse:
    """Posts of the people the caller follows, and the caller's own, newest first; a post they
    reposted shows once, at its newest repost."""
    query = _page_query(request)
    before = decode_id_cursor(query.cursor)
    result = await service.feed(request.app.ctx.stores, caller_id(request), query.limit, before)
    return json_response(result)


@bp.post("/posts/<post_id:id>/comments")
@openapi.tag("comments")
@returns(201, CommentOut, "The comment")
@openapi.body({"application/json": openapi.Component(CommentIn)}, required=True)
@require_auth
@budgeted("comment")
async def add_comment(request: Request, post_id: int) -> HTTPResponse:
    """Comment on a post `{body}`; the post's author is notified."""
    data = parse_body(request, CommentIn)
    await require_verified_email(request.app.ctx.stores, caller_id(request))  # NUBO_EMAIL_VERIFICATION
    comment = await comments.add_comment(request.app.ctx.stores, post_id, caller_id(request), data.body)
    return json_response(comment, status=201)


@bp.get("/posts/<post_id:id>/comments")
@openapi.tag("comments")
@returns(200, CommentPage)
@page_parameters
@optional_auth
async def list_comments(request: Request, post_id: int) -> HTTPResponse:
    """A post's comments, oldest first (readable without auth)."""
    query = parse_query(request, PageQuery)
    result = await comments.list_comments(request.app.ctx.stores, post_id, query.limit,
                                          decode_id_cursor(query.cursor), viewer_id(request))
    return json_response(result)


@bp.patch("/comments/<comment_id:id>")
@openapi.tag("comments")
@returns(200, CommentOut, "The comment as edited")
@refusal(403, "Not your comment")
@openapi.body({"application/json": openapi.Component(CommentIn)}, required=True)
@require_auth
@budgeted("comment")
async def update_comment(request: Request, comment_id: int) -> HTTPResponse:
    """Edit a comment (its author only)."""
    data = parse_body(request, CommentIn)
    comment = await comments.update_comment(request.app.ctx.stores, comment_id, caller_id(request),
                                            data.body)
    return json_response(comment)


@bp.delete("/comments/<comment_id:id>")
@openapi.tag("comments")
@no_content("The comment is deleted")
@refusal(403, "Not your comment or post")
@require_auth
async def delete_comment(request: Request, comment_id: int) -> HTTPResponse:
    """Delete a comment (its author, or the post's author)."""
    await comments.delete_comment(request.app.ctx.stores, comment_id, caller_id(request))
    return HTTPResponse(status=204)
