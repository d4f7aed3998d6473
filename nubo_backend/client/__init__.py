"""An async, typed Python client for Nubo's REST API and WebSocket (docs/client.md).

    client = await Nubo.login("http://127.0.0.1:8080", "alice", "correct horse")
    async for event in client.events():
        if isinstance(event, MessageCreated): ...

Needs the `client` extra (httpx, websockets): `pip install nubo-backend[client]`.
"""

from nubo_backend.client.api import Nubo, token_expiry
from nubo_backend.client.errors import (
    BadRequest,
    Conflict,
    Disconnected,
    Forbidden,
    NotFound,
    NuboError,
    PayloadTooLarge,
    RateLimited,
    ResyncRequired,
    SecondFactorRequired,
    ServerError,
    ServiceUnavailable,
    SessionRevoked,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from nubo_backend.client.frames import (
    Ack,
    Broadcast,
    Command,
    CommentCreated,
    ConversationCreated,
    ConversationRead,
    ErrorFrame,
    Event,
    FollowCreated,
    Frame,
    LikeCreated,
    MarkRead,
    MemberRemoved,
    MembersAdded,
    MentionCreated,
    MessageCreated,
    MessageDeleted,
    MessageReaction,
    MessageUpdated,
    NotificationEvent,
    Ping,
    PostCreated,
    PostUpdated,
    Presence,
    QuoteCreated,
    Ready,
    Refresh,
    RepostCreated,
    Resume,
    SendMessage,
    SendTyping,
    Typing,
    parse_frame,
)
from nubo_backend.client.models import (
    Account,
    Comment,
    Conversation,
    Media,
    Member,
    Message,
    Notification,
    Page,
    Post,
    Profile,
    PushDevice,
    PushSubscription,
    Reaction,
    Session,
    Tokens,
    User,
    Version,
)
from nubo_backend.client.stats import EventStats

__all__ = [
    "Nubo", "token_expiry",
    "NuboError", "BadRequest", "Unauthorized", "SessionRevoked", "SecondFactorRequired", "Forbidden", "NotFound",
    "Conflict",
    "PayloadTooLarge", "UnsupportedMediaType", "ValidationFailed", "RateLimited", "ServiceUnavailable",
    "ServerError", "ResyncRequired", "Disconnected", "EventStats",
    "Frame", "Ready", "Broadcast", "Ack", "ErrorFrame", "Event", "MessageCreated", "MessageUpdated",
    "MessageDeleted", "ConversationCreated", "ConversationRead", "MembersAdded", "MemberRemoved", "PostCreated",
    "NotificationEvent", "FollowCreated", "LikeCreated", "CommentCreated", "MentionCreated", "Typing", "Presence",
    "RepostCreated", "QuoteCreated", "PostUpdated", "MessageReaction",
    "parse_frame", "Command", "Ping", "Resume", "Refresh", "SendMessage", "SendTyping", "MarkRead",
    "Account", "User", "Profile", "Tokens", "Post", "Comment", "Media", "Member", "Message", "Conversation",
    "Notification", "Session", "Page", "PushSubscription", "PushDevice", "Reaction", "Version",
]
