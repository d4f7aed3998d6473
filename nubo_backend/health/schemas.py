"""Replies of the health routes."""

from __future__ import annotations

from typing import Literal

from nubo_backend.edge.replies import Reply


class Pong(Reply):
    message: Literal["pong"]


class Alive(Reply):
    status: Literal["ok"]


class Ready(Reply):
    """Each store's state (`ok`, or why not) and the schema's."""

    status: Literal["ok"]
    checks: dict[str, str]


class NotReady(Reply):
    """The error shape, plus the state of each check (absent while shutting down)."""

    status: Literal["draining", "unavailable"]
    error: str
    code: str
    checks: dict[str, str] | None = None
