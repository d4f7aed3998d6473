"""Structured logs: JSON lines in production, readable key=value lines in development."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import sys
import time
from typing import Any

from nubo_backend.jsonutil import dumps_str
from nubo_backend.settings import Settings

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RESERVED}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return dumps_str(entry)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line += f"  {extra}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(settings: Settings) -> None:
    # Neither format shows the caller's file and line, the thread or the process, and looking
    # them up is a third of the cost of a log call (one per request): skip it, as the logging
    # docs' "Optimization" section describes.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # While PostgreSQL is down, asyncpg warns with a traceback each time it fails to refill the
    # pool; the error handler and the outbox relay already say so, once per outage.
    logging.getLogger("asyncpg.pool").setLevel(logging.ERROR)
    # Sanic's loggers carry their own handlers; route them through ours instead.
    for name in ("sanic", "sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True


# What JsonFormatter and TextFormatter write for `access_log.info("request", extra={...})`.
_JSON_LINE = ('{"ts":"%s.%03dZ","level":"info","logger":"nubo.access","msg":"request","method":"%s",'
              '"path":%s,"client_ip":"%s","status":%d,"duration_ms":%.2f,"request_id":"%s"}')
_TEXT_LINE = ("%s INFO    nubo.access: request  method=%s path=%s client_ip=%s status=%d duration_ms=%.2f "
              "request_id=%s")
# With tracing on (observability/tracing.py), the request's trace id last.
_JSON_TRACE = ',"trace_id":"%s"}'
_TEXT_TRACE = " trace_id=%s"


class AccessLog:
    """The one line per request, as the formatters above would write it, at a fraction of the cost.

    A `logging` call costs a LogRecord, a scan of its attributes for the extra fields, a
    strftime, a handler lock and a write with a flush: as much CPU as Sanic's whole answer to
    `/ping` (docs/benchmarks.md). This writes the same line (same fields, same format) from a
    template, reuses the timestamp's text within a second, and writes the lines of one event
    loop iteration together, flushed before the loop next waits. It takes this path only when
    the logging set-up is ours (setup_logging's one handler); otherwise it calls `logging`."""

    def __init__(self, logger_name: str = "nubo.access") -> None:
        self.logger = logging.getLogger(logger_name)
        self.enabled = self.logger.isEnabledFor(logging.INFO)
        handlers = logging.getLogger().handlers
        ours = (
            not self.logger.handlers and self.logger.propagate and len(handlers) == 1
            and isinstance(handlers[0], logging.StreamHandler)
            and type(handlers[0].formatter) in (JsonFormatter, TextFormatter)
        )
        self.stream = handlers[0].stream if ours else None  # type: ignore[attr-defined]
        self.json = ours and type(handlers[0].formatter) is JsonFormatter
        self.pending: list[str] = []
        self._second = -1
        self._stamp = ""

    def request(self, method: str, path: str, client_ip: str, status: int, duration_ms: float | None,
                request_id: str, trace_id: str = "") -> None:
        """One line: `duration_ms` in milliseconds (rounded to 0.01 in the line); `trace_id`
        (hex, tracing on) added when given."""
        if not self.enabled:
            return
        if self.stream is None or duration_ms is None:
            duration = None if duration_ms is None else round(duration_ms, 2)
            extra = {"method": method, "path": path, "client_ip": client_ip, "status": status,
                     "duration_ms": duration, "request_id": request_id}
            if trace_id:
                extra["trace_id"] = trace_id
            self.logger.info("request", extra=extra)
            return
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S" if self.json else "%H:%M:%S",
                                        (time.gmtime if self.json else time.localtime)(now))
        # The method is an RFC 9112 token (http_protocol.check_head), the client address an
        # address ipaddress wrote (client_ip.py) or the socket's peer, and the request id is
        # app._SAFE_REQUEST_ID or ours: none needs escaping; the path does.
        if self.json:
            # A printable path without a quote or backslash is its own JSON string's text.
            quoted = f'"{path}"' if path.isprintable() and '"' not in path and "\\" not in path else dumps_str(path)
            line = _JSON_LINE % (self._stamp, int(now * 1000) % 1000, method, quoted, client_ip, status,
                                 duration_ms, request_id)
            if trace_id:
                line = line[:-1] + _JSON_TRACE % trace_id
        else:
            line = _TEXT_LINE % (self._stamp, method, path, client_ip, status, duration_ms, request_id)
            if trace_id:
                line += _TEXT_TRACE % trace_id
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self.pending.append(line)

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        if lines and self.stream is not None:
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed (shutdown) or full: a log line is not worth a crash
                pass


class RequestIds:
    """Request ids made here: 32 hex characters, a random per-process prefix then a counter
    (unique without asking the kernel for randomness on every request, as uuid4 does)."""

    def __init__(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"
