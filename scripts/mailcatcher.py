"""A mail catcher for development: an SMTP server (aiosmtpd, from the dev extra) that keeps what
it receives in memory and shows it over HTTP, so that a signup's verification link or a reset
link can be opened without a real mail account.

./scripts/dev runs one in its own process, in two threads: it cannot outlive the script, even
one killed with -9. Alone: `.venv/bin/python scripts/mailcatcher.py [--smtp-port 1025] [--http-port 8025]`.

    GET /            the mails, newest first, as a page
    GET /mails.json  the same as JSON: id, received_at, from, to, subject, text, html
    GET /mails/<id>  one mail's HTML body (sandboxed: no scripts, no requests out)
    GET /mails/<id>.txt  its plain-text body
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

KEEP = 500  # mails kept, the oldest forgotten first: a long dev session must not grow without bound


@dataclass(frozen=True)
class CaughtMail:
    id: int
    received_at: str
    sender: str
    to: list[str]
    subject: str
    text: str
    html: str


def _body(message: EmailMessage, kind: str) -> str:
    part = message.get_body((kind,))
    return part.get_content() if part is not None else ""


def _port_or_any(host: str, preferred: int) -> int:
    """preferred when it is free on host, else one the system chooses: on a machine other
    developers share, a second catcher must not fail because the first holds 1025."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError(f"no free port on {host}")


class DevMailCatcher:
    def __init__(self, host: str = "127.0.0.1", smtp_port: int = 1025, http_port: int = 8025,
                 on_mail: Callable[[CaughtMail], None] | None = None) -> None:
        self.host = host
        self.smtp_port = _port_or_any(host, smtp_port)
        self.on_mail = on_mail
        self._mails: deque[CaughtMail] = deque(maxlen=KEEP)
        self._lock = threading.Lock()
        self._next_id = 1
        self._smtp = Controller(self, hostname=host, port=self.smtp_port, ready_timeout=10)
        self._http = ThreadingHTTPServer((host, _port_or_any(host, http_port)), _handler_for(self))
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="mail-catcher-http", daemon=True)

    @property
    def smtp_url(self) -> str:
        return f"smtp://{self.host}:{self.smtp_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self._http.server_address[1]}"

    def start(self) -> DevMailCatcher:
        self._smtp.start()
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()

    def mails(self) -> list[CaughtMail]:
        with self._lock:
            return list(reversed(self._mails))

    def mail(self, mail_id: int) -> CaughtMail | None:
        return next((m for m in self.mails() if m.id == mail_id), None)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            mail = CaughtMail(
                id=self._next_id, received_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                sender=str(message.get("From", envelope.mail_from)), to=list(envelope.rcpt_tos),
                subject=str(message.get("Subject", "")), text=_body(message, "plain"), html=_body(message, "html"),
            )
            self._next_id += 1
            self._mails.append(mail)
        if self.on_mail is not None:
            self.on_mail(mail)
        return "250 OK"


def _index(mails: list[CaughtMail]) -> str:
    rows = "\n".join(
        f'<tr><td>{m.received_at}</td><td>{escape(", ".join(m.to))}</td>'
        f'<td><a href="/mails/{m.id}">{escape(m.subject)}</a> (<a href="/mails/{m.id}.txt">text</a>)</td></tr>'
        for m in mails
    ) or '<tr><td colspan="3">No mail yet.</td></tr>'
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Nubo dev mails</title></head>'
        '<body style="font-family: sans-serif"><h1>Mails sent by the dev server</h1>'
        f'<table cellpadding="6"><tr><th>Received (UTC)</th><th>To</th><th>Subject</th></tr>{rows}</table>'
        "</body></html>"
    )


def _handler_for(catcher: DevMailCatcher) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?")[0]
            if path == "/":
                self._reply(200, "text/html; charset=utf-8", _index(catcher.mails()))
            elif path == "/mails.json":
                self._reply(200, "application/json", json.dumps([asdict(m) for m in catcher.mails()]))
            elif path.startswith("/mails/") and (mail := self._mail(path)) is not None:
                if path.endswith(".txt"):
                    self._reply(200, "text/plain; charset=utf-8", mail.text)
                else:
                    self._reply(200, "text/html; charset=utf-8", mail.html)
            else:
                self._reply(404, "text/plain; charset=utf-8", "no such mail\n")

        def _mail(self, path: str) -> CaughtMail | None:
            name = path.removeprefix("/mails/").removesuffix(".txt")
            return catcher.mail(int(name)) if name.isdigit() else None

        def _reply(self, status: int, content_type: str, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            # A mail's HTML is shown as a mail client would: no scripts, nothing fetched.
            self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
            pass  # the dev script's terminal is for the server's lines

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Catch the mails of a development server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    options = parser.parse_args()
    catcher = DevMailCatcher(options.host, options.smtp_port, options.http_port,
                             on_mail=lambda m: print(f"mail to {', '.join(m.to)}: {m.subject}", flush=True))
    catcher.start()
    print(f"NUBO_SMTP_URL={catcher.smtp_url}; read the mails at {catcher.http_url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        catcher.stop()


if __name__ == "__main__":
    main()
