"""Input models of the notification routes, and their replies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, WithJsonSchema

from nubo_backend.edge.replies import Page, Reply
from nubo_backend.edge.validation import Body


class MarkRead(Body):
    """Which notifications to mark read; all of them when `ids` is left out."""

    # Each an `id` of GET /notifications (a MongoDB ObjectId in hex); others are refused.
    ids: list[Annotated[str, WithJsonSchema({"type": "string", "pattern": "^[0-9a-fA-F]{24}$"})]] | None = Field(
        None, max_length=100
    )


# -- replies -------------------------------------------------------------------------------


class NotificationOut(Reply):
    id: str
    type: str  # like.created, comment.created, follow.created, mention.created
    data: dict[str, Any]  # the event's data, as the WebSocket sends it
    read: bool
    created_at: datetime


class NotificationPage(Page):
    items: list[NotificationOut]


class MarkedRead(Reply):
    updated: int  # notifications newly marked read
