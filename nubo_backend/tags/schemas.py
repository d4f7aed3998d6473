"""Replies of the tag routes (a tag's posts are a posts.schemas.PostPage)."""

from __future__ import annotations

from nubo_backend.edge.replies import Reply


class TrendingTag(Reply):
    tag: str
    uses: int  # posts using it lately


class Trending(Reply):
    items: list[TrendingTag]
