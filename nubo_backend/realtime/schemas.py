"""Replies of GET /broadcast."""

from __future__ import annotations

from datetime import datetime

from nubo_backend.edge.replies import Page, Reply


class BroadcastLine(Reply):
    id: str
    user_id: int
    text: str
    created_at: datetime


class BroadcastPage(Page):
    items: list[BroadcastLine]
