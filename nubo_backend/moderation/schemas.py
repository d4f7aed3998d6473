"""Inputs of the moderation routes: a report, a resolution, the report list's query."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from nubo_backend.edge.pagination import MAX_ROW_ID, PageQuery
from nubo_backend.edge.replies import Page, Reply
from nubo_backend.edge.validation import Body, MultiLine

# The fixed lists; sql/migrations/0009_moderation.sql checks the same values.
Reason = Literal[
    "spam", "harassment", "hate", "violence", "sexual", "self_harm",
    "misinformation", "impersonation", "illegal", "other",
]
TargetType = Literal["user", "post", "comment", "message"]
Action = Literal["dismiss", "remove", "suspend"]
Role = Literal["user", "moderator"]
REASONS: tuple[str, ...] = Reason.__args__
ROLES: tuple[str, ...] = Role.__args__

NOTE_MAX_LENGTH = 1000

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
Note = Annotated[str, MultiLine, Field(max_length=NOTE_MAX_LENGTH)]


class ReportIn(Body):
    """What is reported (`target_type` and its id), why (`reason`), and an optional note."""

    target_type: TargetType
    target_id: RowId
    reason: Reason
    note: Note = ""


class ResolutionIn(Body):
    """`dismiss` the report, `remove` the reported content, or `suspend` the account behind it."""

    action: Action
    note: Note = ""


class ReportsQuery(PageQuery):
    status: Literal["open", "resolved"] | None = None


# -- replies -------------------------------------------------------------------------------


class ReportTarget(Reply):
    type: TargetType
    id: int
    user_id: int | None  # the account answerable for the content; null once deleted


class ReportOut(Reply):
    id: int
    reporter_id: int | None
    target: ReportTarget
    reason: Reason
    note: str
    snapshot: dict[str, Any] | None  # the content as it was when reported
    status: Literal["open", "resolved"]
    resolution: Action | None
    resolved_by: int | None
    resolved_at: datetime | None
    created_at: datetime


class ReportPage(Page):
    items: list[ReportOut]


class ModeratorRef(Reply):
    id: int
    username: str


class ActionTarget(Reply):
    type: TargetType
    id: int


class ActionOut(Reply):
    id: int
    action: str
    moderator: ModeratorRef | None
    target: ActionTarget
    details: dict[str, Any] | None
    created_at: datetime


class ReportDetail(ReportOut):
    actions: list[ActionOut]


class SuspensionLifted(Reply):
    """The account after DELETE /users/{id}/suspension: `lifted` is false when it was not suspended."""

    user_id: int
    suspended: bool
    lifted: bool
