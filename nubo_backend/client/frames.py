"""What the WebSocket carries, typed: events and replies from the server, commands to it.

`parse_frame` turns one text frame into one of the classes below. Per-user events have an
`id` (increasing, no gaps); transient ones (`Presence`, `Typing`) and broadcast lines do not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from nubo_backend.client.models import Conversation, Message, Post, build


@dataclass
class Frame:
    """Anything the server sent."""


@dataclass
class Ready(Frame):
    user_id: int
    last_event_id: int | None


@dataclass
class Broadcast(Frame):
    """A broadcast line, as the raw text some client sent."""

    text: str


@dataclass
class Pong(Frame):
    pass


@dataclass
class Ack(Frame):
    client_id: str
    message_id: int
    duplicate: bool = False


@dataclass
class ErrorFrame(Frame):
    code: str
    error: str
    ref: str | None = None


@dataclass
class TokenExpiring(Frame):
    expires_at: int


@dataclass
class Refreshed(Frame):
    expires_at: int


@dataclass
class Event(Frame):
    """A per-user event (`id` set) or a transient one (`id` None). `data` is the raw payload;
    the subclasses give it typed fields."""

    id: int | None
    type: str
    data: dict[str, Any] = field(default_factory=dict, repr=False)
    TYPE: ClassVar[str] = ""


@dataclass
class MessageCreated(Event):
    TYPE: ClassVar[str] = "message.created"

    @property
    def message(self) -> Message:
        return build(Message, self.data)


@dataclass
class MessageUpdated(MessageCreated):
    TYPE: ClassVar[str] = "message.updated"


@dataclass
class MessageDeleted(MessageCreated):
    TYPE: ClassVar[str] = "message.deleted"


@dataclass
class ConversationCreated(Event):
    TYPE: ClassVar[str] = "conversation.created"

    @property
    def conversation(self) -> Conversation:
        return build(Conversation, self.data)


@dataclass
class ConversationRead(Event):
    TYPE: ClassVar[str] = "conversation.read"

    @property
    def conversation_id(self) -> int:
        return self.data["conversation_id"]

    @property
    def user_id(self) -> int:
        return self.data["user_id"]

    @property
    def message_id(self) -> int:
        return self.data["message_id"]


@dataclass
class MembersAdded(Event):
    TYPE: ClassVar[str] = "conversation.members_added"

    @property
    def conversation_id(self) -> int:
        return self.data["conversation_id"]

    @property
    def user_ids(self) -> list[int]:
        return list(self.data.get("user_ids", []))


@dataclass
class MemberRemoved(Event):
    TYPE: ClassVar[str] = "conversation.member_removed"

    @property
    def conversation_id(self) -> int:
        return self.data["conversation_id"]

    @property
    def user_id(self) -> int:
        return self.data["user_id"]


@dataclass
class PostCreated(Event):
    TYPE: ClassVar[str] = "post.created"

    @property
    def post(self) -> Post:
        return build(Post, self.data.get("post", {}))


@dataclass
class NotificationEvent(Event):
    """A notification (like, comment, follow, mention): also listed by GET /notifications."""

    @property
    def notification_id(self) -> str | None:
        return self.data.get("notification_id")

    @property
    def actor_id(self) -> int | None:
        return self.data.get("actor_id")

    @property
    def post_id(self) -> int | None:
        return self.data.get("post_id")


@dataclass
class FollowCreated(NotificationEvent):
    TYPE: ClassVar[str] = "follow.created"


@dataclass
class LikeCreated(NotificationEvent):
    TYPE: ClassVar[str] = "like.created"


@dataclass
class CommentCreated(NotificationEvent):
    TYPE: ClassVar[str] = "comment.created"


@dataclass
class MentionCreated(NotificationEvent):
    TYPE: ClassVar[str] = "mention.created"


@dataclass
class RepostCreated(NotificationEvent):
    TYPE: ClassVar[str] = "repost.created"


@dataclass
class QuoteCreated(NotificationEvent):
    TYPE: ClassVar[str] = "quote.created"

    @property
    def quote_id(self) -> int | None:
        return self.data.get("quote_id")


@dataclass
class PostUpdated(Event):
    """A post you reposted or quoted was edited (`body`, `edited_at`), or a post got its link
    preview (`preview`)."""

    TYPE: ClassVar[str] = "post.updated"

    @property
    def post_id(self) -> int:
        return self.data["post_id"]


@dataclass
class MessageReaction(Event):
    TYPE: ClassVar[str] = "message.reaction"

    @property
    def message_id(self) -> int:
        return self.data["message_id"]

    @property
    def user_id(self) -> int:
        return self.data["user_id"]

    @property
    def emoji(self) -> str:
        return self.data["emoji"]

    @property
    def added(self) -> bool:
        return bool(self.data.get("added"))


@dataclass
class Typing(Event):
    TYPE: ClassVar[str] = "typing"

    @property
    def conversation_id(self) -> int:
        return self.data["conversation_id"]

    @property
    def user_id(self) -> int:
        return self.data["user_id"]


@dataclass
class Presence(Event):
    TYPE: ClassVar[str] = "presence"

    @property
    def user_id(self) -> int:
        return self.data["user_id"]

    @property
    def online(self) -> bool:
        return self.data.get("status") == "online"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (MessageCreated, MessageUpdated, MessageDeleted, ConversationCreated, ConversationRead,
                MembersAdded, MemberRemoved, PostCreated, FollowCreated, LikeCreated, CommentCreated,
                MentionCreated, Typing, Presence, RepostCreated, QuoteCreated, PostUpdated, MessageReaction)
}


@dataclass
class ResyncFrame(Frame):
    """`resync_required`: events() raises ResyncRequired for it; parse_frame returns it."""

    last_event_id: int
    reload: list[str]


def parse_frame(raw: str) -> Frame:
    """One server text frame as a typed frame (a broadcast line when it is not a typed JSON object)."""
    if not raw.lstrip().startswith("{"):
        return Broadcast(raw)
    try:
        frame = json.loads(raw)
    except ValueError:
        return Broadcast(raw)
    kind = frame.get("type") if isinstance(frame, dict) else None
    if not isinstance(kind, str):
        return Broadcast(raw)
    if "id" in frame:  # an event: per-user (int id) or transient (id null)
        return EVENT_TYPES.get(kind, Event)(frame["id"], kind, frame.get("data") or {})
    match kind:
        case "ready":
            return Ready(frame["user_id"], frame.get("last_event_id"))
        case "pong":
            return Pong()
        case "ack":
            return Ack(frame["client_id"], frame["message_id"], bool(frame.get("duplicate")))
        case "error":
            return ErrorFrame(frame.get("code", ""), frame.get("error", ""), frame.get("ref"))
        case "token_expiring":
            return TokenExpiring(frame["expires_at"])
        case "refreshed":
            return Refreshed(frame["expires_at"])
        case "resync_required":
            return ResyncFrame(frame["last_event_id"], list(frame.get("reload", [])))
    return Event(None, kind, frame)


# --- commands ----------------------------------------------------------------------------


@dataclass
class Command:
    """A frame the client sends; `frame()` is its JSON text."""

    TYPE: ClassVar[str] = ""

    def payload(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def frame(self) -> str:
        return json.dumps({"type": self.TYPE, **self.payload()})


@dataclass
class Ping(Command):
    TYPE: ClassVar[str] = "ping"


@dataclass
class Resume(Command):
    TYPE: ClassVar[str] = "resume"
    last_event_id: int


@dataclass
class Refresh(Command):
    TYPE: ClassVar[str] = "refresh"
    access_token: str


@dataclass
class SendMessage(Command):
    """Store a message; the server answers `Ack` (once durable). Retrying with the same
    client_id stores it once."""

    TYPE: ClassVar[str] = "message.send"
    conversation_id: int
    body: str
    client_id: str
    media_ids: list[int] | None = None


@dataclass
class SendTyping(Command):
    TYPE: ClassVar[str] = "typing"
    conversation_id: int


@dataclass
class MarkRead(Command):
    TYPE: ClassVar[str] = "conversation.read"
    conversation_id: int
    message_id: int
