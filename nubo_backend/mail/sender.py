"""The sender: delivers the mail queue over SMTP, after the commit, retrying with backoff.

Every instance runs one. A sender claims due mails with a lease (their next attempt pushed
LEASE seconds away, FOR UPDATE SKIP LOCKED), so two instances never send one mail at once and
a sender that dies mid-send leaves its mails to be retried when the lease ends: delivery is
at least once. A delivered mail is deleted; a refused or failed one is retried after
mail_retry_base * 2^(attempts - 1) seconds (at most mail_retry_max), and dropped with an
error log after mail_max_attempts. Without NUBO_SMTP_URL no sender runs and mails wait.

Wake-ups: PostgreSQL's NOTIFY at every committed enqueue (heard by every instance), and
otherwise a sleep until the earliest retry is due (at most POLL_INTERVAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

import aiosmtplib
import asyncpg

from nubo_backend.stores import Stores
from nubo_backend.stores.postgres import listen_forever

log = logging.getLogger("nubo.mail")

CHANNEL = "nubo_mail"
BATCH = 20
POLL_INTERVAL = 30.0
STORE_RETRY = 5.0  # PostgreSQL unreachable: try again this often


@dataclass(frozen=True)
class SmtpServer:
    """Where and how to deliver, read from NUBO_SMTP_URL."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool  # TLS from the first byte (smtps://, usually port 465)
    start_tls: bool | None  # True: STARTTLS required; None: when the server offers it

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        implicit = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname or "localhost",
            port=parts.port or (465 if implicit else 587),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=implicit,
            start_tls=False if implicit else (True if parts.scheme == "smtp+starttls" else None),
        )


def build_message(sender: str, recipient: str, subject: str, text: str, html: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


class MailSender:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.settings = stores.settings
        self.server = SmtpServer.parse(stores.settings.smtp_url)
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._run(), name="nubo-mail-sender"),
            asyncio.create_task(listen_forever(self.settings.postgres_dsn, CHANNEL, self.wake, STORE_RETRY),
                                name="nubo-mail-listener"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def send_batch(self) -> int:
        """Claim and try the due mails (at most BATCH); how many were claimed."""
        q = self.stores.sql.mail
        lease = self.settings.mail_timeout * BATCH + 30  # the whole batch, should every one time out
        async with self.stores.pg.acquire() as conn:
            rows = [row async for row in q.claim_due(conn, lim=BATCH, lease_seconds=lease)]
        for row in rows:
            error = await self._deliver(row)
            async with self.stores.pg.acquire() as conn:
                if error is None:
                    await q.delivered(conn, id=row["id"])
                elif row["attempts"] >= self.settings.mail_max_attempts:
                    log.error("mail %s dropped after %d attempts: %s", row["id"], row["attempts"], error)
                    await q.delivered(conn, id=row["id"])
                else:
                    delay = min(self.settings.mail_retry_base * 2 ** (row["attempts"] - 1),
                                self.settings.mail_retry_max)
                    log.warning("mail %s not delivered (attempt %d), retried in %.0fs: %s",
                                row["id"], row["attempts"], delay, error)
                    await q.retry_later(conn, id=row["id"], delay_seconds=delay, error=error)
        return len(rows)

    async def _deliver(self, row: asyncpg.Record) -> str | None:
        """Send one mail; None when the server took it, else why not (no address, no body:
        those may hold links)."""
        server = self.server
        message = build_message(self.settings.mail_from, row["recipient"], row["subject"],
                                row["text_body"], row["html_body"])
        try:
            await aiosmtplib.send(
                message, hostname=server.hostname, port=server.port, username=server.username,
                password=server.password, use_tls=server.use_tls, start_tls=server.start_tls,
                timeout=self.settings.mail_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:  # its text would name the address
            return f"recipient refused ({len(exc.recipients)})"
        except aiosmtplib.SMTPResponseException as exc:
            return f"{type(exc).__name__}: {exc.code} {exc.message}"[:300]
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]
        log.info("mail %s delivered", row["id"])
        return None

    async def _seconds_to_next(self) -> float:
        async with self.stores.pg.acquire() as conn:
            due = await self.stores.sql.mail.seconds_to_next_due(conn)
        return POLL_INTERVAL if due is None else min(due, POLL_INTERVAL)

    async def _run(self) -> None:
        while True:
            try:
                if await self.send_batch() == BATCH:
                    continue
                self.wake.clear()
                wait = await self._seconds_to_next()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("mail queue unreachable, retrying in %.0fs: %s", STORE_RETRY, exc)
                wait = STORE_RETRY
            except Exception:  # a bug: logged, and the sender goes on (the mail's lease brings it back)
                log.exception("mail sender failed a batch")
                wait = STORE_RETRY
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.05)):
                    await self.wake.wait()
