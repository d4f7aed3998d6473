"""Replies of the media routes: the media object, as posts and messages carry it too."""

from __future__ import annotations

from nubo_backend.replies import Reply


class Thumbnail(Reply):
    width: int
    height: int


class MediaOut(Reply):
    """An uploaded image: `url` and `thumbnail_url` serve it (GET /media/{id}[/thumbnail])."""

    id: int
    type: str
    content_type: str
    width: int
    height: int
    size_bytes: int
    blurhash: str
    url: str
    thumbnail_url: str
    thumbnail: Thumbnail
