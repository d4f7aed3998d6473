"""What the block and mute routes answer, for the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from nubo_backend.validation import OpenAPI30Schema


class Answer(BaseModel):
    """Base of the answers documented here: schemas in the OpenAPI 3.0 dialect."""

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("schema_generator", OpenAPI30Schema)
        return super().model_json_schema(*args, **kwargs)


class BlockState(Answer):
    """The caller's block of `user_id`, after the request."""

    user_id: int
    blocked: bool


class MuteState(Answer):
    """The caller's mute of `user_id`, after the request."""

    user_id: int
    muted: bool


class ListedUser(Answer):
    id: int
    username: str
    display_name: str
    avatar_url: str | None


class BlockedUser(ListedUser):
    blocked_at: datetime


class MutedUser(ListedUser):
    muted_at: datetime


class BlocksPage(Answer):
    items: list[BlockedUser]
    next_cursor: str | None


class MutesPage(Answer):
    items: list[MutedUser]
    next_cursor: str | None
