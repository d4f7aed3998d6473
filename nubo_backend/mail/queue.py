"""Putting a mail in the queue, inside the caller's transaction."""

from __future__ import annotations

import asyncpg

from nubo_backend.mail.templates import Mail
from nubo_backend.stores import Stores


async def enqueue(conn: asyncpg.Connection, stores: Stores, recipient: str, mail: Mail) -> None:
    """Queue `mail` for `recipient` in conn's open transaction: it leaves after the commit
    (the insert trigger wakes every sender), and not at all if the transaction rolls back."""
    await stores.sql.mail.enqueue(conn, recipient=recipient, subject=mail.subject,
                                  text_body=mail.text, html_body=mail.html)
