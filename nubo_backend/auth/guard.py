"""The one auth guard, for REST routes and the /ws upgrade alike."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, NamedTuple

from asyncpg.exceptions import InterfaceError, PostgresError
from redis.exceptions import RedisError
from sanic import Request
from sanic_ext import openapi

from nubo_backend.auth.sessions import TOUCH_INTERVAL, session_state, touch_session
from nubo_backend.auth.tokens import InvalidToken
from nubo_backend.edge.errors import NuboError
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.auth")

# The seed's messages, verbatim.
MISSING_HEADER = "Authorization header manquant"
INVALID_TOKEN = "Token invalide"


class Principal(NamedTuple):
    """Who is calling. Immutable, and a tuple because one is made per signed-in request (a
    frozen dataclass costs 1.3 µs to build here, a NamedTuple 0.3)."""

    user_id: int
    session_id: str
    expires_at: int = 0  # the access token's exp: open sockets are held to it too


def _missing() -> NuboError:
    return NuboError(401, "missing_authorization", MISSING_HEADER)


def _invalid() -> NuboError:
    return NuboError(401, "invalid_token", INVALID_TOKEN)


def _token_from(request: Request, allow_query_token: bool) -> str:
    header = request.headers.get("authorization")
    if header is None:
        # Browsers cannot set headers on a WebSocket, so /ws also takes ?access_token=.
        query = request.args.get("access_token") if allow_query_token else None
        if query:
            return query
        raise _missing()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid()
    return token.strip()


async def _account_exists(stores: Stores, user_id: int) -> bool:
    """Whether the token's user still has an account. A signed token and a live session can
    outlast the account (a token minted for any id, a deletion while Redis was down), and a
    request on its behalf would otherwise fail deep inside, on a foreign key. Asked only when
    the session is not in this instance's memo, so at most once per memo lifetime per session.
    PostgreSQL unreachable: the routes that need the account fail on their own; the others
    go on, as they do when Redis is down.
    Moderation: a suspended account counts as gone, so that a session which outlived its
    suspension (opened by a login racing it, or kept while Redis was down) is refused too."""
    try:
        return bool(await stores.sql.auth.account_active(stores.pg, user_id=user_id))
    except (PostgresError, InterfaceError, OSError) as exc:
        log.warning("account check skipped, PostgreSQL unreachable: %s", exc)
        return True


async def authenticate(request: Request, *, allow_query_token: bool = False) -> Principal:
    """Resolve the caller from its access token, or raise the seed's 401."""
    stores = request.app.ctx.stores
    token = _token_from(request, allow_query_token)
    try:
        claims = request.app.ctx.token_verifier.verify(token)
    except InvalidToken:
        raise _invalid() from None
    memo = stores.live_sessions
    known = None
    try:
        known = memo.get(claims.session_id)
        if known is None:
            asked_at = time.monotonic()
            owner, last_used = await session_state(stores.redis, stores.keys, claims.session_id)
            if owner == claims.user_id and not await _account_exists(stores, owner):
                raise _invalid()
            if owner is not None:
                memo.remember(claims.session_id, owner, last_used, asked_at)
        else:
            owner, last_used = known
        if owner == claims.user_id and time.time() - last_used >= TOUCH_INTERVAL:
            asked_at, now = time.monotonic(), int(time.time())
            await touch_session(stores.redis, stores.keys, claims.session_id, now)
            memo.remember(claims.session_id, owner, now, asked_at)
    except (RedisError, OSError) as exc:
        # Redis down: trust the signature for the token's short life rather than take the
        # whole API down with the cache. Revocation resumes as soon as Redis answers.
        log.warning("session check skipped, Redis unreachable: %s", exc)
        owner = claims.user_id
        if known is None and not await _account_exists(stores, owner):
            raise _invalid() from None
    if owner != claims.user_id:
        raise _invalid()  # revoked or expired session: refused now, not at `exp`
    principal = Principal(claims.user_id, claims.session_id, claims.expires_at)
    request.ctx.principal = principal
    return principal


def caller_id(request: Request) -> int:
    """The authenticated caller's user id (in a handler behind the guard)."""
    return request.ctx.principal.user_id


Handler = Callable[..., Awaitable[Any]]


def require_auth(handler: Handler) -> Handler:
    """Route decorator: the handler runs only for an authenticated caller (request.ctx.principal);
    the route is documented as needing a bearer token."""

    @wraps(handler)
    async def guarded(request: Request, *args: Any, **kwargs: Any) -> Any:
        await authenticate(request)
        return await handler(request, *args, **kwargs)

    # The OpenAPI document says so wherever the guard is, so no route can forget it.
    return openapi.secured("bearer")(guarded)


def optional_auth(handler: Handler | None = None, *, allow_query_token: bool = False) -> Any:
    """Route decorator for routes readable without auth: a valid token identifies the viewer
    (`viewer_id`), no token reads as signed out, and a bad token is still a 401.

    `@optional_auth(allow_query_token=True)` also takes the token as `?access_token=`, for
    what a browser fetches without letting a page set headers (an `<img src>`)."""

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        async def viewed(request: Request, *args: Any, **kwargs: Any) -> Any:
            if "authorization" in request.headers or (allow_query_token and "access_token" in request.args):
                await authenticate(request, allow_query_token=allow_query_token)
            else:
                request.ctx.principal = None
            return await handler(request, *args, **kwargs)

        # OpenAPI: either no security requirement at all, or the bearer token.
        return openapi.secured({})(openapi.secured("bearer")(viewed))

    return decorate(handler) if handler is not None else decorate


def viewer_id(request: Request) -> int | None:
    """The caller's user id behind `optional_auth`, or None when signed out."""
    principal = request.ctx.principal
    return principal.user_id if principal is not None else None
