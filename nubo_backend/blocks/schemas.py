"""What the block and mute routes answer, for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime

from nubo_backend.edge.replies import Page, Reply
from nubo_backend.users.schemas import UserSummary


class BlockState(Reply):
    """The caller's block of `user_id`, after the request."""

    user_id: int
    blocked: bool


class MuteState(Reply):
    """The caller's mute of `user_id`, after the request."""

    user_id: int
    muted: bool


class BlockedUser(UserSummary):
    blocked_at: datetime


class MutedUser(UserSummary):
    muted_at: datetime


class BlocksPage(Page):
    items: list[BlockedUser]


class MutesPage(Page):
    items: list[MutedUser]
