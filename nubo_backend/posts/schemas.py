"""Input models for posts and comments, and the checks on ids that arrive in paths and cursors."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from nubo_backend.errors import NuboError
from nubo_backend.validation import Body, MultiLine

MAX_MEDIA = 4
MAX_URL_LENGTH = 2048


def _media_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError("must be an http(s) URL")
    try:
        _ = parts.port  # urlsplit checks the port only when asked: "http://a:99999/", "http://a:b/"
    except ValueError:
        raise ValueError("must be an http(s) URL with a valid port") from None
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    return url


MediaUrl = Annotated[str, AfterValidator(_media_url)]


class PostIn(Body):
    body: Annotated[str, MultiLine] = Field(min_length=1)
    media_urls: list[MediaUrl] = Field(default_factory=list, max_length=MAX_MEDIA)


class PostPatch(Body):
    body: Annotated[str, MultiLine] | None = Field(None, min_length=1)
    media_urls: list[MediaUrl] | None = Field(None, max_length=MAX_MEDIA)

    @model_validator(mode="after")
    def _something(self) -> PostPatch:
        if self.body is None and self.media_urls is None:
            raise ValueError("give body and/or media_urls")
        return self


class CommentIn(Body):
    body: Annotated[str, MultiLine] = Field(min_length=1)


def check_length(field: str, text: str, limit: int) -> None:
    """Length limits come from settings, so they are checked here rather than in the models."""
    if len(text) > limit:
        raise NuboError(422, "validation_error", f"Invalid input: {field}",
                        details=[{"field": field, "message": f"At most {limit} characters"}])
