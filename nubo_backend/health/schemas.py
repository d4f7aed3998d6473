"""Replies of the health routes."""

from __future__ import annotations

from typing import Literal

from nubo_backend.edge.replies import Reply


class Pong(Reply):
    message: Literal["pong"]


class Alive(Reply):
    status: Literal["ok"]


class Instance(Reply):
    """Which process answered: behind a balancer, or to a tool that started it (./scripts/dev
    says "ready" only when the process answering is its own)."""

    host: str
    pid: int


class Ready(Reply):
    """Each store's state (`ok`, or why not) and the schema's."""

    status: Literal["ok"]
    checks: dict[str, str]
    instance: Instance


class NotReady(Reply):
    """The error shape, plus the state of each check (absent while shutting down)."""

    status: Literal["draining", "unavailable"]
    error: str
    code: str
    checks: dict[str, str] | None = None
    instance: Instance
