"""The API's errors as exceptions: one class per family, each carrying `code`, `status`, `error`.

A REST failure is raised as the class of its status; a WebSocket `error` frame (which has
no status) as the class its code belongs to. Catch the family (`NotFound`), or compare
`exc.code` (`"conversation_not_found"`) when the detail matters.
"""

from __future__ import annotations

from typing import Any


class NuboError(Exception):
    """Any error the API answered with: `{"error": ..., "code": ...}`."""

    status: int | None = None  # the family's HTTP status; None for an unknown family

    def __init__(self, code: str, error: str, status: int | None = None, *, details: Any = None,
                 ref: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {error}")
        self.code = code
        self.error = error
        self.status = status if status is not None else type(self).status
        self.details = details
        self.ref = ref  # on a WebSocket error: the client_id or type of the refused frame
        self.retry_after = retry_after


class BadRequest(NuboError):
    status = 400  # invalid_cursor, invalid_value, malformed_json, unknown_type, unsupported_frame


class Unauthorized(NuboError):
    status = 401  # invalid_token, missing_authorization, invalid_credentials, invalid_refresh_token, ...


class SessionRevoked(Unauthorized):
    """The session is gone (logout elsewhere, password change, reused refresh token): log in again."""


class SecondFactorRequired(Unauthorized):
    """The password was right but the account has two-factor sign-in on: call
    `Nubo.login(..., code=...)`, or `Nubo.finish_login(urls, exc.mfa_token, code)` within
    `exc.expires_in` seconds."""

    def __init__(self, mfa_token: str, expires_in: int) -> None:
        super().__init__("mfa_required", "A second factor is required to finish signing in", 401)
        self.mfa_token = mfa_token
        self.expires_in = expires_in


class Forbidden(NuboError):
    status = 403  # forbidden, not_a_member, not_author, wrong_password, account_suspended, ...


class NotFound(NuboError):
    status = 404  # not_found, user_not_found, post_not_found, conversation_not_found, ...


class Conflict(NuboError):
    status = 409  # already_exists, client_id_reused, message_deleted, not_a_group, ...


class PayloadTooLarge(NuboError):
    status = 413  # payload_too_large, headers_too_large


class UnsupportedMediaType(NuboError):
    status = 415


class ValidationFailed(NuboError):
    status = 422  # validation_error (with `details`), self_follow, own_content, not_an_image, ...


class RateLimited(NuboError):
    status = 429  # rate_limited: `retry_after` seconds


class ServiceUnavailable(NuboError):
    status = 503  # service_unavailable, busy, not_ready, shutting_down


class ServerError(NuboError):
    status = 500  # internal_error and any other 5xx


class ResyncRequired(Exception):
    """The server no longer has the events after the id the client resumed from.

    Reload `reload` (conversations, notifications, feed) through REST, then iterate
    `events()` again: it continues after `last_event_id`, which the client now holds.
    """

    def __init__(self, last_event_id: int, reload: list[str]) -> None:
        super().__init__(f"resync required: reload {', '.join(reload)}; live events continue after {last_event_id}")
        self.last_event_id = last_event_id
        self.reload = reload


class Disconnected(Exception):
    """events() could not reach any instance within its `give_up_after`."""


FAMILIES: dict[int, type[NuboError]] = {
    cls.status: cls  # type: ignore[misc]
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge,
                UnsupportedMediaType, ValidationFailed, RateLimited, ServiceUnavailable, ServerError)
}

# WebSocket error frames carry a code and no status: the codes whose family the name alone
# does not tell (anything ending in `_not_found` is NotFound).
_CODE_FAMILIES: dict[str, type[NuboError]] = {
    "invalid_token": Unauthorized,
    "missing_authorization": Unauthorized,
    "forbidden": Forbidden,
    "not_a_member": Forbidden,
    "not_the_sender": Forbidden,
    "not_author": Forbidden,
    "account_suspended": Forbidden,
    "client_id_reused": Conflict,
    "message_deleted": Conflict,
    "validation_error": ValidationFailed,
    "rate_limited": RateLimited,
    "busy": ServiceUnavailable,
    "service_unavailable": ServiceUnavailable,
    "malformed_json": BadRequest,
    "unknown_type": BadRequest,
    "unsupported_frame": BadRequest,
    "invalid_value": BadRequest,
    "internal_error": ServerError,
}


def error_for_response(status: int, body: Any, *, retry_after: str | None = None) -> NuboError:
    """The exception for a non-2xx REST answer; `retry_after`: its Retry-After header, used
    when the body does not say (a 503 says it only in the header)."""
    body = body if isinstance(body, dict) else {}
    code = str(body.get("code") or f"http_{status}")
    error = str(body.get("error") or f"HTTP {status}")
    cls = FAMILIES.get(status) or (ServerError if status >= 500 else NuboError)
    details = body.get("details")
    seconds = details.get("retry_after") if isinstance(details, dict) else None
    if seconds is None and retry_after is not None:
        try:
            seconds = float(retry_after)
        except ValueError:  # an HTTP date: not sent by this API
            seconds = None
    if code == "refresh_token_reused":
        cls = SessionRevoked
    return cls(code, error, status, details=details, retry_after=seconds)


def error_for_frame(frame: dict[str, Any]) -> NuboError:
    """The exception for a WebSocket `{"type": "error", "code", "error", "ref"}` frame."""
    code = str(frame.get("code", "error"))
    cls = _CODE_FAMILIES.get(code) or (NotFound if code.endswith("_not_found") else NuboError)
    return cls(code, str(frame.get("error", "")), ref=frame.get("ref"), details=frame.get("details"))
