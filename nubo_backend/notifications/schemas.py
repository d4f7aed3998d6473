"""Input models of the notification routes."""

from __future__ import annotations

from pydantic import Field

from nubo_backend.validation import Body


class MarkRead(Body):
    """Which notifications to mark read; all of them when `ids` is left out."""

    ids: list[str] | None = Field(None, max_length=100)
