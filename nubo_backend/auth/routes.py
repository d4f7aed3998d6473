"""Accounts and sessions over HTTP: signup, login, refresh, logout, sessions, /me."""

from __future__ import annotations

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.auth import ratelimit, service
from nubo_backend.auth.guard import caller_id, require_auth
from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.schemas import (
    Account,
    AccountDeletion,
    LoginBody,
    PasswordChange,
    PasswordChanged,
    ProfilePatch,
    RefreshBody,
    SessionList,
    SignedIn,
    SignupBody,
    Tokens,
)
from nubo_backend.edge.client_ip import client_ip
from nubo_backend.edge.errors import NuboError
from nubo_backend.edge.replies import no_content, refusal, returns
from nubo_backend.edge.validation import parse_body
from nubo_backend.jsonutil import json_response
from nubo_backend.mail.templates import preferred_language
from nubo_backend.observability import metrics
from nubo_backend.stores import Stores

bp = Blueprint("auth")


@bp.before_server_start
async def open_password_hasher(app: Sanic) -> None:
    app.ctx.passwords = await Passwords.open(app.ctx.settings)


@bp.after_server_stop
async def close_password_hasher(app: Sanic) -> None:
    passwords = getattr(app.ctx, "passwords", None)
    if passwords is not None:
        passwords.close()


def _stores(request: Request) -> Stores:
    return request.app.ctx.stores


def _passwords(request: Request) -> Passwords:
    return request.app.ctx.passwords


def _client(request: Request) -> service.Client:
    return service.Client(user_agent=request.headers.get("user-agent", ""), ip=client_ip(request))


async def _limit(request: Request, action: str, limit: int, account: str = "") -> None:
    stores = _stores(request)
    identities = {"ip": _client(request).ip, "account": account}  # (an IPv6 address counts per /64)
    await ratelimit.hit(stores.redis, stores.keys, action, identities, limit, stores.settings.rate_limit_window)


@bp.post("/signup")
@openapi.tag("auth")
@returns(201, SignedIn, "Signed up and signed in")
@refusal(409, "Username or e-mail taken")
@refusal(429, "Too many sign-ups from this address (Retry-After)")
@openapi.body({"application/json": openapi.Component(SignupBody)}, required=True)
async def signup(request: Request) -> HTTPResponse:
    """Create an account; answers the user and a token pair."""
    body = parse_body(request, SignupBody)
    if body.language is None:  # the language of the account's mails
        body.language = preferred_language(request.headers.get("accept-language", ""))
    await _limit(request, "signup", _stores(request).settings.rate_limit_signup, account=body.email)
    result = await service.signup(_stores(request), _passwords(request), body, _client(request))
    return json_response(result, status=201)


@bp.post("/login")
@openapi.tag("auth")
@returns(200, SignedIn, "Signed in; or, when the account has two-factor sign-in on, `{mfa_required: true, "
                       "mfa_token, expires_in}` (MfaRequired): finish with POST /login/2fa")
@refusal(401, "Wrong identifier or password")
@refusal(403, "Account suspended")
@refusal(429, "Too many attempts (Retry-After)")
@openapi.body({"application/json": openapi.Component(LoginBody)}, required=True)
async def login(request: Request) -> HTTPResponse:
    """Log in with username or email and password; answers a token pair and the user."""
    body = parse_body(request, LoginBody)
    try:
        # Per IP here; per account in the service, once the name is resolved to an account.
        await _limit(request, "login", _stores(request).settings.rate_limit_login)
        result = await service.login(_stores(request), _passwords(request), body, _client(request))
    except NuboError as exc:
        metrics.logins.labels(exc.code).inc()
        raise
    metrics.logins.labels("success").inc()
    return json_response(result)


@bp.post("/refresh")
@openapi.tag("auth")
@returns(200, Tokens, "A new token pair; the refresh token given is spent")
@refusal(401, "Refresh token invalid, expired or reused")
@refusal(429, "Too many refreshes (Retry-After)")
@openapi.body({"application/json": openapi.Component(RefreshBody)}, required=True)
async def refresh(request: Request) -> HTTPResponse:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    body = parse_body(request, RefreshBody)
    session_id = body.refresh_token.partition(".")[0]
    await _limit(request, "refresh", _stores(request).settings.rate_limit_refresh, account=session_id)
    return json_response(await service.refresh(_stores(request), body.refresh_token))


@bp.post("/logout")
@openapi.tag("auth")
@no_content("This session is revoked")
@require_auth
async def logout(request: Request) -> HTTPResponse:
    """Revoke the current session: its access and refresh tokens stop working at once."""
    principal = request.ctx.principal
    await service.logout(_stores(request), principal.user_id, principal.session_id)
    return HTTPResponse(status=204)


@bp.post("/logout/all")
@openapi.tag("auth")
@no_content("Every session of the account is revoked")
@require_auth
async def logout_all(request: Request) -> HTTPResponse:
    """Revoke every session of the caller, the current one included."""
    await service.logout_everywhere(_stores(request), caller_id(request))
    return HTTPResponse(status=204)


@bp.get("/sessions")
@openapi.tag("auth")
@returns(200, SessionList)
@require_auth
async def sessions(request: Request) -> HTTPResponse:
    """The caller's live sessions (device, IP, created, last used), most recent first."""
    principal = request.ctx.principal
    items = await service.sessions_of(_stores(request), principal.user_id, principal.session_id)
    return json_response({"items": items})


@bp.delete("/sessions/<session_id:str>")
@openapi.tag("auth")
@no_content("The session is revoked")
@require_auth
async def revoke_session(request: Request, session_id: str) -> HTTPResponse:
    """Revoke one of the caller's sessions (404 if it is not theirs)."""
    await service.revoke_own_session(_stores(request), caller_id(request), session_id)
    return HTTPResponse(status=204)


@bp.get("/me")
@openapi.tag("auth")
@returns(200, Account)
@require_auth
async def me(request: Request) -> HTTPResponse:
    """The caller's own account, e-mail included."""
    return json_response(await service.account(_stores(request), caller_id(request)))


@bp.patch("/me")
@openapi.tag("auth")
@returns(200, Account, "The account as changed")
@openapi.body({"application/json": openapi.Component(ProfilePatch)}, required=True)
@require_auth
async def update_me(request: Request) -> HTTPResponse:
    """Change display name, bio or avatar URL (`avatar_url: null` removes it)."""
    patch = parse_body(request, ProfilePatch)
    return json_response(await service.update_profile(_stores(request), caller_id(request), patch))


@bp.delete("/me")
@openapi.tag("auth")
@no_content("The account and its content are deleted")
@refusal(403, "Wrong password")
@refusal(429, "Too many wrong passwords: the login budget (Retry-After)")
@openapi.body({"application/json": openapi.Component(AccountDeletion)}, required=True)
@require_auth
async def delete_account(request: Request) -> HTTPResponse:
    """Delete your account for good (`{password}` required): posts, comments, likes, follows and
    sessions go; messages stay in their conversations without a sender."""
    body = parse_body(request, AccountDeletion)
    principal = request.ctx.principal
    await service.delete_account(
        _stores(request), _passwords(request), principal.user_id, principal.session_id, body.password,
        _client(request),
    )
    return HTTPResponse(status=204)


@bp.post("/me/password")
@openapi.tag("auth")
@returns(200, PasswordChanged)
@refusal(403, "Wrong current password")
@refusal(409, "Changed meanwhile, retry")
@refusal(429, "Too many wrong passwords: the login budget (Retry-After)")
@openapi.body({"application/json": openapi.Component(PasswordChange)}, required=True)
@require_auth
async def change_password(request: Request) -> HTTPResponse:
    """Change the password (current one required); every other session is revoked."""
    body = parse_body(request, PasswordChange)
    principal = request.ctx.principal
    revoked = await service.change_password(
        _stores(request), _passwords(request), principal.user_id, principal.session_id, body, _client(request)
    )
    return json_response({"revoked_sessions": revoked})
