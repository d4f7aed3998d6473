"""Input models for posts and comments, and the checks on ids that arrive in paths and cursors."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from nubo_backend.errors import NuboError
from nubo_backend.pagination import MAX_ROW_ID
from nubo_backend.validation import Body, MultiLine

MAX_MEDIA = 4
# media: uploaded ids (POST /media) replace client-hosted media_urls, now read-only for old rows.
MediaId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


class PostIn(Body):
    # A photo post may go without words: body or media_ids, at least one of them.
    body: Annotated[str, MultiLine] = ""
    media_ids: list[MediaId] = Field(default_factory=list, max_length=MAX_MEDIA)

    @model_validator(mode="after")
    def _body_or_media(self) -> PostIn:
        if not self.body and not self.media_ids:
            raise ValueError("give body or media_ids")
        return self


class PostPatch(Body):
    body: Annotated[str, MultiLine] | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _something(self) -> PostPatch:
        if self.body is None:
            raise ValueError("give body")
        return self


class CommentIn(Body):
    body: Annotated[str, MultiLine] = Field(min_length=1)


def check_length(field: str, text: str, limit: int) -> None:
    """Length limits come from settings, so they are checked here rather than in the models."""
    if len(text) > limit:
        raise NuboError(422, "validation_error", f"Invalid input: {field}",
                        details=[{"field": field, "message": f"At most {limit} characters"}])
