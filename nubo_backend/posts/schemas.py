"""Input models for posts and comments, the checks on ids that arrive in paths and cursors, and the
replies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.pagination import MAX_ROW_ID
from nubo_backend.edge.replies import Page, Reply
from nubo_backend.edge.validation import Body, LengthSetting, MultiLine, not_null
from nubo_backend.media.schemas import BODY_OR_MEDIA, MediaOut
from nubo_backend.users.schemas import UserSummary

MAX_MEDIA = 4
# media: uploaded ids (POST /media) replace client-hosted media_urls, now read-only for old rows.
MediaId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class PostIn(Body):
    # A photo post may go without words: body or media_ids, at least one of them.
    model_config = ConfigDict(json_schema_extra=BODY_OR_MEDIA)

    body: Annotated[str, MultiLine, LengthSetting("post_max_length")] = ""
    media_ids: list[MediaId] = Field(
        default_factory=list, max_length=MAX_MEDIA, json_schema_extra={"uniqueItems": True}
    )
    quote_of: MediaId | None = None  # social31: the id of the post this one quotes

    @model_validator(mode="after")
    def _body_or_media(self) -> PostIn:
        if not self.body and not self.media_ids:
            raise ValueError("give body or media_ids")
        return self


class PostPatch(Body):
    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(required=["body"]) or not_null(schema, "body")
    )

    body: Annotated[str, MultiLine, LengthSetting("post_max_length")] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _something(self) -> PostPatch:
        if self.body is None:
            raise ValueError("give body")
        return self


class CommentIn(Body):
    body: Annotated[str, MultiLine, LengthSetting("comment_max_length")] = Field(min_length=1)


def check_length(field: str, text: str, limit: int) -> None:
    """Length limits come from settings, so they are checked here rather than in the models."""
    if len(text) > limit:
        raise NuboError(422, "validation_error", f"Invalid input: {field}",
                        details=[{"field": field, "message": f"At most {limit} characters"}])


# -- replies -------------------------------------------------------------------------------


class QuotedPost(Reply):
    """What a quote shows of the post it quotes; once that post is deleted, a tombstone
    (`deleted` true, the rest null)."""

    id: int
    deleted: bool
    author: UserSummary | None
    body: str | None
    created_at: datetime | None
    edited_at: datetime | None


class LinkCard(Reply):
    """The preview card of the first link in a post (null until fetched, or if none)."""

    url: str
    title: str | None
    description: str | None
    image: str | None  # a URL of ours, never the site's


class PostOut(Reply):
    id: int
    author: UserSummary
    body: str
    media_urls: list[str]  # client-hosted media of old posts (read-only)
    media: list[MediaOut]
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None
    like_count: int
    comment_count: int
    tags: list[str]
    repost_count: int
    quote_of: int | None
    quote: QuotedPost | None
    preview: LinkCard | None
    liked_by_me: bool  # false for an anonymous viewer
    # Sent to a signed-in viewer, on single posts and in every page of posts; absent signed out.
    reposted_by_me: bool | None = None
    bookmarked_by_me: bool | None = None


class PostPage(Page):
    items: list[PostOut]


class Liker(UserSummary):
    liked_at: datetime


class LikerPage(Page):
    items: list[Liker]


class Reposter(UserSummary):
    reposted_at: datetime


class ReposterPage(Page):
    items: list[Reposter]


class PostVersion(Reply):
    """A version an edit replaced: its body, when it was written and when it was replaced."""

    body: str
    written_at: datetime
    replaced_at: datetime


class PostVersionPage(Page):
    items: list[PostVersion]


class CommentOut(Reply):
    id: int
    post_id: int
    author: UserSummary
    body: str
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None


class CommentPage(Page):
    items: list[CommentOut]
