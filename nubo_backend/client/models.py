"""What the REST API answers, as dataclasses. Unknown fields are kept in `extra`, missing
ones take their default, so a server that adds a field does not break an older client."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_convert(item, v) for v in value]
    if dataclasses.is_dataclass(kind) and isinstance(value, dict):
        return build(kind, value)
    return value


def build(cls: type[T], data: dict[str, Any]) -> T:
    """An instance of the dataclass cls from a JSON object (nested dataclasses too)."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    known = {k: _convert(hints[k], v) for k, v in data.items() if k in names and k != "extra"}
    if "extra" in names:
        known["extra"] = {k: v for k, v in data.items() if k not in names}
    return cls(**known)


@dataclass
class User:
    id: int = 0
    username: str = ""
    display_name: str = ""
    bio: str = ""
    avatar_url: str | None = None
    created_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Account(User):
    """Yourself, as /me shows you: with your e-mail."""

    email: str = ""
    email_verified: bool = False
    language: str = "en"  # of your mails
    two_factor: bool = False  # two-factor sign-in is on


@dataclass
class Profile(User):
    followers_count: int = 0
    following_count: int = 0
    posts_count: int = 0
    followed_by_me: bool = False


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int = 0
    token_type: str = "Bearer"
    user: User | None = None


@dataclass
class Media:
    id: int = 0
    type: str = "image"
    content_type: str = ""
    width: int = 0
    height: int = 0
    size_bytes: int = 0
    blurhash: str | None = None
    url: str = ""
    thumbnail_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Post:
    id: int = 0
    body: str = ""
    author: User | None = None
    media: list[Media] = field(default_factory=list)
    like_count: int = 0
    comment_count: int = 0
    liked_by_me: bool | None = None
    created_at: str | None = None
    edited_at: str | None = None
    repost_count: int = 0
    quote_of: int | None = None
    quote: dict[str, Any] | None = None  # the quoted post's summary, or a tombstone (`deleted`)
    preview: dict[str, Any] | None = None  # the first link's card: url, title, description, image
    reposted_by_me: bool | None = None  # signed in only
    bookmarked_by_me: bool | None = None  # signed in only
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Comment:
    id: int = 0
    post_id: int = 0
    body: str = ""
    author: User | None = None
    created_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Member:
    user_id: int = 0
    username: str = ""
    display_name: str = ""
    avatar_url: str | None = None
    role: str = "member"
    joined_at: str | None = None
    last_read_message_id: int | None = None


@dataclass
class Reaction:
    emoji: str = ""
    count: int = 0
    reacted_by_me: bool = False


@dataclass
class Version:
    """A version of a post or message that an edit replaced."""

    body: str = ""
    written_at: str | None = None
    replaced_at: str | None = None


@dataclass
class Message:
    id: int = 0
    conversation_id: int = 0
    sender_id: int | None = None
    client_id: str | None = None
    body: str | None = None
    created_at: str | None = None
    edited_at: str | None = None
    deleted: bool = False
    media: list[Media] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Conversation:
    id: int = 0
    kind: str = "direct"
    title: str | None = None
    created_by: int | None = None
    created_at: str | None = None
    last_activity: str | None = None
    last_message_id: int | None = None
    members: list[Member] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Notification:
    id: str = ""
    type: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    read: bool = False
    created_at: str | None = None


@dataclass
class PushSubscription:
    """The session's Web Push subscription; subscribe the browser with `server_key`."""

    id: int = 0
    endpoint: str = ""
    alerts: dict[str, bool] = field(default_factory=dict)
    policy: str = "all"
    server_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class PushDevice:
    id: int = 0
    platform: str = ""
    token: str = ""
    alerts: dict[str, bool] = field(default_factory=dict)
    policy: str = "all"
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Session:
    id: str = ""
    extra: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class Page(Generic[T]):
    """One page of a list, newest first; pass `next_cursor` back as `cursor` for the next."""

    items: list[T]
    next_cursor: str | None = None


def page(cls: type[T], body: dict[str, Any]) -> Page[T]:
    items = [build(cls, item) if dataclasses.is_dataclass(cls) else item for item in body.get("items", [])]
    return Page(items, body.get("next_cursor"))
