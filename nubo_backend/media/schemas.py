"""Replies of the media routes: the media object, as posts and messages carry it too; and the
rule posts and messages share about their photos."""

from __future__ import annotations

from typing import Any

from nubo_backend.edge.replies import Reply
from nubo_backend.edge.validation import NONBLANK

# A post or a message is words, photos or both: its JSON Schema says "body or media_ids"
# (each model's validator checks the same, after surrounding spaces are stripped).
BODY_OR_MEDIA: dict[str, Any] = {"anyOf": [
    {"required": ["body"], "properties": {"body": {"type": "string", "pattern": NONBLANK}}},
    {"required": ["media_ids"], "properties": {"media_ids": {"type": "array", "minItems": 1}}},
]}


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
