"""Inputs of the messaging routes and WebSocket commands, and the routes' replies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from nubo_backend.edge.pagination import MAX_ROW_ID
from nubo_backend.edge.replies import Page, Reply
from nubo_backend.edge.validation import Body, LengthSetting, MultiLine, OneLine, given
from nubo_backend.media.schemas import BODY_OR_MEDIA, MediaOut
from nubo_backend.posts.schemas import LinkCard

# A row id (user, conversation, message): a positive PostgreSQL bigint.
UserId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
ClientId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=100), OneLine]
Text = Annotated[str, MultiLine]

MAX_GROUP_SIZE = 256


class NewConversation(Body):
    """`{user_id}` for a direct conversation, `{title, member_ids}` for a group."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [
        {**given("user_id", "integer"), "not": {"anyOf": [given("title", "string"), given("member_ids", "array")]}},
        {**given("title", "string"), "not": given("user_id", "integer")},
    ]})

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

    model_config = ConfigDict(json_schema_extra=BODY_OR_MEDIA)

    @model_validator(mode="after")
    def _body_or_media(self) -> _BodyOrMedia:
        if not self.body and not self.media_ids:
            raise ValueError("give body or media_ids")
        return self


class NewMessage(_BodyOrMedia):
    body: Annotated[Text, LengthSetting("message_max_length")] = ""
    client_id: ClientId | None = None
    media_ids: list[UserId] = Field(default_factory=list, max_length=4,  # media: ids from POST /media
                                    json_schema_extra={"uniqueItems": True})


class MessageEdit(Body):
    body: Annotated[Text, LengthSetting("message_max_length")] = Field(min_length=1)


class ReadMarker(Body):
    message_id: UserId


class NewMembers(Body):
    user_ids: list[UserId] = Field(min_length=1, max_length=MAX_GROUP_SIZE)


class SendCommand(_BodyOrMedia):
    """WebSocket `message.send`: same as POST /conversations/{id}/messages."""

    type: str
    conversation_id: UserId
    body: Annotated[Text, LengthSetting("message_max_length")] = ""
    client_id: ClientId
    media_ids: list[UserId] = Field(default_factory=list, max_length=4,  # media: ids from POST /media
                                    json_schema_extra={"uniqueItems": True})


class TypingCommand(Body):
    type: str
    conversation_id: UserId


class ReadCommand(Body):
    type: str
    conversation_id: UserId
    message_id: UserId


# -- replies -------------------------------------------------------------------------------


class MemberOut(Reply):
    user_id: int
    username: str
    display_name: str
    avatar_url: str | None
    role: str
    joined_at: datetime
    last_read_message_id: int | None


class ConversationOut(Reply):
    id: int
    kind: Literal["direct", "group"]
    title: str | None
    created_by: int | None  # null once the creator's account is deleted
    created_at: datetime
    last_activity: datetime
    last_message_id: int | None
    members: list[MemberOut]


class LastMessage(Reply):
    id: int
    sender_id: int | None
    body: str | None  # null once deleted
    created_at: datetime
    edited_at: datetime | None
    deleted: bool


class ConversationSummary(Reply):
    id: int
    kind: Literal["direct", "group"]
    title: str | None
    member_ids: list[int]
    created_at: datetime
    last_activity: datetime
    last_message: LastMessage | None
    last_read_message_id: int | None
    unread_count: int


class ConversationPage(Page):
    items: list[ConversationSummary]


class ReactionCount(Reply):
    emoji: str
    count: int
    reacted_by_me: bool  # on message.updated events: the sender's


class MessageOut(Reply):
    id: int
    conversation_id: int
    sender_id: int | None  # null once the sender's account is deleted
    client_id: str | None
    body: str | None  # null once deleted
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    media: list[MediaOut]
    reactions: list[ReactionCount]  # social31: per emoji, first reaction first
    preview: LinkCard | None  # social31: its first link's card, once fetched


class MessagePage(Page):
    items: list[MessageOut]


class ReadReceipt(Reply):
    conversation_id: int
    user_id: int
    message_id: int


class MessageReactions(Reply):
    """A message's reactions as the caller sees them, after their change."""

    message_id: int
    reactions: list[ReactionCount]
