"""One error type and one handler: every failure leaves as {"error": "...", "code": "..."}."""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
from asyncpg.exceptions import DataError
from pymongo.errors import ConnectionFailure as MongoConnectionFailure
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError as RedisOutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic import Request
from sanic.constants import HTTP_METHODS
from sanic.errorpages import BaseRenderer
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse

from nubo_backend.jsonutil import json_response
from nubo_backend.observability import metrics

log = logging.getLogger("nubo.errors")


class NuboError(Exception):
    """A failure the client can act on. Services raise it; the handler renders it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(message: str = "Not found", code: str = "not_found") -> NuboError:
    return NuboError(404, code, message)


def forbidden(message: str = "Forbidden", code: str = "forbidden") -> NuboError:
    return NuboError(403, code, message)


def conflict(message: str, code: str = "conflict", details: Any = None) -> NuboError:
    return NuboError(409, code, message, details=details)


def unprocessable(details: list[dict[str, str]], message: str = "Invalid input") -> NuboError:
    return NuboError(422, "validation_error", message, details=details)


# Sanic's own exceptions, by status, with a stable code and a message a client can show.
_SANIC_CODES = {
    400: ("bad_request", None),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    408: ("request_timeout", "Request timeout"),
    413: ("payload_too_large", "Request body too large"),
    416: ("range_not_satisfiable", None),
    503: ("service_unavailable", None),
}


RETRY_AFTER_SECONDS = 2
OUTAGE_LOG_INTERVAL = 30.0  # seconds between two log lines about the same store being down

# A store out of reach (down, restarting, too busy to accept a connection): the request is
# fine and may be sent again. asyncpg's classes 08 (connection) and 57 (shutdown) included.
_STORE_UNAVAILABLE: dict[str, tuple[type[BaseException], ...]] = {
    "PostgreSQL": (
        asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError,
        asyncpg.TooManyConnectionsError, asyncpg.exceptions.OperatorInterventionError,
    ),
    # OutOfMemoryError: full under noeviction, Redis refuses writes until memory is freed.
    "Redis": (RedisConnectionError, RedisTimeoutError, RedisOutOfMemoryError),
    "MongoDB": (MongoConnectionFailure,),
}


def unavailable_store(exception: BaseException) -> str | None:
    """The store an exception says is out of reach, or None."""
    for store, kinds in _STORE_UNAVAILABLE.items():
        if isinstance(exception, kinds):
            return store
    if isinstance(exception, (OSError, TimeoutError)):
        # A refused connection, or a pool or connect timeout. redis-py and PyMongo wrap theirs in
        # their own types (above), so a bare one comes from asyncpg.
        return "PostgreSQL"
    if type(exception) is asyncpg.InterfaceError and str(exception).endswith("connection is closed"):
        # asyncpg's words for an operation on a connection that died under it ("connection is
        # closed"; "cannot call Transaction.rollback(): the underlying connection is closed",
        # which is what a connection lost inside `async with conn.transaction()` raises); it
        # has no class of its own.
        return "PostgreSQL"
    return None


def service_unavailable() -> NuboError:
    return NuboError(
        503, "service_unavailable", "Service temporarily unavailable, try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


# nginx's status for a client that went away before its answer: the client's doing, not ours,
# so neither a 5xx that alerts count nor an ERROR line. Nobody reads the body.
CLIENT_CLOSED = 499


def to_nubo_error(exception: BaseException) -> NuboError:
    if isinstance(exception, NuboError):
        return exception
    if isinstance(exception, RequestCancelled):
        return NuboError(CLIENT_CLOSED, "client_closed_request", "Client closed the connection")
    if isinstance(exception, SanicException):
        status = exception.status_code or 500
        code, message = _SANIC_CODES.get(status, ("error", None))
        text = str(exception.message or "")
        if status == 400 and "json" in text.lower():
            code, message = "malformed_json", "Request body is not valid JSON"
        elif status == 413 and "header" in text.lower():
            # Sanic's limit on the request line and headers: shrinking the body would not help.
            code, message = "headers_too_large", "Request URL or headers too large"
        headers = dict(getattr(exception, "headers", None) or {})
        if status >= 500:
            return NuboError(status, code, message or "Service unavailable", headers=headers)
        return NuboError(status, code, message or text or "Bad request", headers=headers)
    if isinstance(exception, DataError):
        # A client value the database cannot take (e.g. a number beyond bigint): the input is bad.
        return NuboError(400, "invalid_value", "A value in the request is out of range")
    if unavailable_store(exception) is not None:
        return service_unavailable()
    return NuboError(500, "internal_error", "Internal server error")


class NuboErrorHandler(ErrorHandler):
    """Renders every exception as JSON; never a stack trace, whatever the debug setting."""

    def __init__(self) -> None:
        super().__init__(base=BaseRenderer)
        self._outage_logged: dict[str, float] = {}  # store -> when its outage was last logged

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        error = to_nubo_error(exception)
        store = None
        if error.status == 503:
            # (a service's own 503 names the store error it stands for as its cause)
            store = unavailable_store(exception) or unavailable_store(exception.__cause__ or exception)
        if store is not None:
            metrics.store_errors_by_name[store].inc()
            self._log_outage(store, exception)
        elif error.status >= 500:
            log.error(
                "unhandled error on %s %s",
                getattr(request, "method", "?"),
                getattr(request, "path", "?"),
                exc_info=exception,
            )
        headers = error.headers
        if error.status == 405 and "Allow" not in headers:
            headers = {**headers, "Allow": ", ".join(_allowed_methods(request))}
        return json_response(error.body(), status=error.status, headers=headers)

    def _log_outage(self, store: str, exception: BaseException) -> None:
        """One line per outage window, not a traceback per request."""
        now = time.monotonic()
        if now - self._outage_logged.get(store, -OUTAGE_LOG_INTERVAL) >= OUTAGE_LOG_INTERVAL:
            self._outage_logged[store] = now
            log.warning("%s unavailable, answering 503 (%s: %s)", store, type(exception).__name__,
                        str(exception)[:200])


def _allowed_methods(request: Request) -> list[str]:
    """The methods the request's path answers to. Sanic names them for some routes only (not
    when its compiled router refuses the method), and RFC 9110 requires them on every 405."""
    allowed = []
    for method in HTTP_METHODS:
        try:
            request.app.router.resolve(request.path, method=method)
        except Exception:  # noqa: BLE001 - NotFound or NoMethod: not this one
            continue
        allowed.append(str(method))
    return allowed
