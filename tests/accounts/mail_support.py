"""A real SMTP server for the mail tests (aiosmtpd, in a thread of the test process, on a port
of its own), and helpers to read what it received."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support import free_port


@dataclass(frozen=True)
class Received:
    recipient: str
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str:
        return self.message.get_body(("html",)).get_content()

    def link_token(self, path: str) -> str:
        """The token of the link to `path` in the plain-text body."""
        match = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_-]+)", self.text)
        assert match, f"no {path} link in:\n{self.text}"
        return match.group(1)


class MailCatcher:
    """aiosmtpd on 127.0.0.1:port; `start` and `stop` may be called again (the mail server down
    and back)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            for recipient in envelope.rcpt_tos:
                self.received.append(Received(recipient, message))
        return "250 OK"

    def start(self) -> MailCatcher:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def to(self, recipient: str) -> list[Received]:
        with self._lock:
            return [m for m in self.received if m.recipient == recipient]

    async def wait_for(self, recipient: str, count: int = 1, within: float = 10.0) -> list[Received]:
        """The first `count` mails to recipient, waiting up to `within` seconds for them."""
        deadline = time.monotonic() + within
        while len(mails := self.to(recipient)) < count:
            assert time.monotonic() < deadline, f"{len(mails)} of {count} mail(s) to {recipient} arrived"
            await asyncio.sleep(0.05)
        return mails[:count]
