"""Inputs of the messaging routes and WebSocket commands."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from nubo_backend.pagination import MAX_ROW_ID
from nubo_backend.validation import Body, MultiLine, OneLine

# A row id (user, conversation, message): a positive PostgreSQL bigint.
UserId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=100), OneLine]
Text = Annotated[str, MultiLine]

MAX_GROUP_SIZE = 256


class NewConversation(Body):
    """`{user_id}` for a direct conversation, `{title, member_ids}` for a group."""

    user_id: UserId | None = None
    title: Title | None = None
    member_ids: list[UserId] | None = Field(default=None, max_length=MAX_GROUP_SIZE)

    @model_validator(mode="after")
    def one_kind(self) -> NewConversation:
        direct = self.user_id is not None
        group = self.title is not None or self.member_ids is not None
        if direct == group:
            raise ValueError("give either user_id (direct) or title and member_ids (group)")
        if group and self.title is None:
            raise ValueError("a group needs a title")
        return self


class _BodyOrMedia(Body):
    """A message carries words, photos or both (a photo alone needs no caption)."""

    @model_validator(mode="after")
    def _body_or_media(self) -> _BodyOrMedia:
        if not self.body and not self.media_ids:
            raise ValueError("give body or media_ids")
        return self


class NewMessage(_BodyOrMedia):
    body: Text = ""
    client_id: ClientId | None = None
    media_ids: list[UserId] = Field(default_factory=list, max_length=4)  # media: ids from POST /media


class MessageEdit(Body):
    body: Text = Field(min_length=1)


class ReadMarker(Body):
    message_id: UserId


class NewMembers(Body):
    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_GROUP_SIZE)


class SendCommand(_BodyOrMedia):
    """WebSocket `message.send`: same as POST /conversations/{id}/messages."""

    type: str
    conversation_id: UserId
    body: Text = ""
    client_id: ClientId
    media_ids: list[UserId] = Field(default_factory=list, max_length=4)  # media: ids from POST /media


class TypingCommand(Body):
    type: str
    conversation_id: UserId


class ReadCommand(Body):
    type: str
    conversation_id: UserId
    message_id: UserId
