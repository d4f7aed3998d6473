"""Accounts people can get back into, over HTTP: e-mail verification, password reset, e-mail
change, two-factor sign-in, and the two small pages mailed links open."""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic_ext import openapi

from nubo_backend.accounts import passkeys, service
from nubo_backend.accounts.schemas import (
    Accepted,
    CodeAndPassword,
    CodeBody,
    EmailChange,
    EmailVerified,
    ForgotPassword,
    MfaTokenBody,
    Passkey,
    PasskeyRegistration,
    Passkeys,
    PasskeySignIn,
    PasswordBody,
    PasswordReset,
    PasswordWasReset,
    RecoveryCodes,
    SecondFactor,
    TokenBody,
    TotpEnrolment,
    WebAuthnOptions,
)
from nubo_backend.auth.guard import caller_id, require_auth
from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.schemas import SignedIn
from nubo_backend.auth.service import Client
from nubo_backend.edge.client_ip import client_ip
from nubo_backend.edge.replies import no_content, refusal, returns
from nubo_backend.edge.validation import parse_body
from nubo_backend.jsonutil import json_response
from nubo_backend.stores import Stores

bp = Blueprint("accounts")

PAGES = Path(__file__).parent / "static"
FORGOT_ANSWER = "If an account uses this address, a link to reset its password is on its way"


def _stores(request: Request) -> Stores:
    return request.app.ctx.stores


def _passwords(request: Request) -> Passwords:
    return request.app.ctx.passwords


# -- e-mail verification -------------------------------------------------------------------


@bp.post("/email/verify")
@openapi.tag("accounts")
@returns(200, EmailVerified, "The address is verified (or, for an e-mail change, now the account's)")
@refusal(401, "Link invalid, used, superseded or expired")
@refusal(409, "E-mail change: another account took the address meanwhile")
@openapi.body({"application/json": openapi.Component(TokenBody)}, required=True)
async def verify_email(request: Request) -> HTTPResponse:
    """Take the token of a mailed verification or e-mail change link (single use)."""
    body = parse_body(request, TokenBody)
    return json_response(await service.verify_email(_stores(request), body.token))


@bp.post("/email/verification")
@openapi.tag("accounts")
@returns(202, Accepted, "A new verification link is on its way")
@refusal(409, "Already verified")
@refusal(429, "Too many mails asked (Retry-After)")
@require_auth
async def resend_verification(request: Request) -> HTTPResponse:
    """Mail a new verification link to the caller's address (the previous link stops working)."""
    await service.resend_verification(_stores(request), caller_id(request), client_ip(request))
    return json_response({"message": "A verification link is on its way"}, status=202)


# -- password reset ------------------------------------------------------------------------


@bp.post("/password/forgot")
@openapi.tag("accounts")
@returns(202, Accepted, "The same answer whether or not an account uses the address")
@refusal(429, "Too many asked from this address or for this e-mail (Retry-After)")
@openapi.body({"application/json": openapi.Component(ForgotPassword)}, required=True)
async def forgot_password(request: Request) -> HTTPResponse:
    """Mail a password reset link (valid 30 minutes, single use) if an account uses the address."""
    body = parse_body(request, ForgotPassword)
    await service.forgot_password(_stores(request), body.email, client_ip(request))
    return json_response({"message": FORGOT_ANSWER}, status=202)


@bp.post("/password/reset")
@openapi.tag("accounts")
@returns(200, PasswordWasReset, "The new password is set; every session is revoked")
@refusal(401, "Link invalid, used, superseded or expired")
@refusal(429, "Too many attempts from this address (Retry-After)")
@openapi.body({"application/json": openapi.Component(PasswordReset)}, required=True)
async def reset_password(request: Request) -> HTTPResponse:
    """Set a new password with the token of a reset link: every session of the account is
    revoked and its sockets closed, and a notice is mailed."""
    body = parse_body(request, PasswordReset)
    revoked = await service.reset_password(_stores(request), _passwords(request), body.token, body.password,
                                           client_ip(request))
    return json_response({"revoked_sessions": revoked})


# -- e-mail change -------------------------------------------------------------------------


@bp.post("/me/email")
@openapi.tag("accounts")
@returns(202, Accepted, "A confirmation link is mailed to the new address, a notice to the current one")
@refusal(403, "Wrong password")
@refusal(409, "Address taken, or already the account's")
@refusal(429, "Too many mails asked (Retry-After)")
@openapi.body({"application/json": openapi.Component(EmailChange)}, required=True)
@require_auth
async def change_email(request: Request) -> HTTPResponse:
    """Move the account to a new address (password required); it takes effect when the link
    mailed there is taken (POST /email/verify)."""
    body = parse_body(request, EmailChange)
    await service.request_email_change(_stores(request), _passwords(request), caller_id(request), body.email,
                                       body.password, client_ip(request))
    return json_response({"message": "Confirm the change from the link mailed to the new address"}, status=202)


# -- two-factor sign-in --------------------------------------------------------------------


@bp.post("/login/2fa")
@openapi.tag("accounts")
@returns(200, SignedIn, "Signed in")
@refusal(401, "Wrong or used code, or mfa_token expired")
@refusal(429, "Too many codes tried (Retry-After)")
@openapi.body({"application/json": openapi.Component(SecondFactor)}, required=True)
async def login_second_factor(request: Request) -> HTTPResponse:
    """Finish a login that answered `mfa_required`: the app's 6-digit code or a recovery code."""
    body = parse_body(request, SecondFactor)
    client = Client(user_agent=request.headers.get("user-agent", ""), ip=client_ip(request))
    return json_response(await service.finish_login(_stores(request), body.mfa_token, body.code, client))


@bp.post("/me/2fa/totp")
@openapi.tag("accounts")
@returns(200, TotpEnrolment, "A secret to add to an authenticator app; confirm it with a first code")
@refusal(409, "Two-factor sign-in is already on")
@require_auth
async def start_totp(request: Request) -> HTTPResponse:
    """Start turning two-factor sign-in on (a secret not yet confirmed is replaced)."""
    return json_response(await service.start_totp(_stores(request), caller_id(request)))


@bp.post("/me/2fa/totp/confirm")
@openapi.tag("accounts")
@returns(200, RecoveryCodes, "Two-factor sign-in is on; the recovery codes are shown this once")
@refusal(401, "Wrong code")
@refusal(409, "Not started, or already on")
@refusal(429, "Too many codes tried (Retry-After)")
@openapi.body({"application/json": openapi.Component(CodeBody)}, required=True)
@require_auth
async def confirm_totp(request: Request) -> HTTPResponse:
    """Turn two-factor sign-in on with a first code from the app."""
    body = parse_body(request, CodeBody)
    codes = await service.confirm_totp(_stores(request), caller_id(request), body.code, client_ip(request))
    return json_response({"recovery_codes": codes})


@bp.delete("/me/2fa/totp")
@openapi.tag("accounts")
@no_content("Two-factor sign-in is off; the recovery codes are gone")
@refusal(401, "Wrong code")
@refusal(403, "Wrong password")
@refusal(409, "Two-factor sign-in is off")
@refusal(429, "Too many codes tried (Retry-After)")
@openapi.body({"application/json": openapi.Component(CodeAndPassword)}, required=True)
@require_auth
async def disable_totp(request: Request) -> HTTPResponse:
    """Turn two-factor sign-in off: the password and a code (or a recovery code)."""
    body = parse_body(request, CodeAndPassword)
    await service.disable_totp(_stores(request), _passwords(request), caller_id(request), body.password,
                               body.code, client_ip(request))
    return HTTPResponse(status=204)


@bp.post("/me/2fa/recovery-codes")
@openapi.tag("accounts")
@returns(200, RecoveryCodes, "New recovery codes; the previous ones stop working")
@refusal(401, "Wrong code")
@refusal(403, "Wrong password")
@refusal(409, "Two-factor sign-in is off")
@refusal(429, "Too many codes tried (Retry-After)")
@openapi.body({"application/json": openapi.Component(CodeAndPassword)}, required=True)
@require_auth
async def renew_recovery_codes(request: Request) -> HTTPResponse:
    """Replace the recovery codes (the password and a code from the app)."""
    body = parse_body(request, CodeAndPassword)
    codes = await service.new_recovery_codes(_stores(request), _passwords(request), caller_id(request),
                                             body.password, body.code, client_ip(request))
    return json_response({"recovery_codes": codes})


# -- passkeys (WebAuthn) as a second factor --------------------------------------------------


@bp.post("/me/2fa/passkeys/options")
@openapi.tag("accounts")
@returns(200, WebAuthnOptions, "Options for navigator.credentials.create(); answer with POST /me/2fa/passkeys")
@refusal(409, "The account has as many passkeys as it may")
@require_auth
async def passkey_registration_options(request: Request) -> HTTPResponse:
    """Start adding a passkey: its options are good for 5 minutes, once."""
    return json_response(await passkeys.registration_options(_stores(request), caller_id(request)))


@bp.post("/me/2fa/passkeys")
@openapi.tag("accounts")
@returns(201, Passkey, "The passkey is kept: login now asks for a second factor")
@refusal(422, "The browser's answer could not be verified")
@refusal(409, "No options asked (or they expired), or the passkey is already registered")
@openapi.body({"application/json": openapi.Component(PasskeyRegistration)}, required=True)
@require_auth
async def add_passkey(request: Request) -> HTTPResponse:
    """Keep the passkey navigator.credentials.create() made (its `toJSON()`)."""
    body = parse_body(request, PasskeyRegistration)
    added = await passkeys.register(_stores(request), caller_id(request), body.credential, body.name)
    return json_response(added, status=201)


@bp.get("/me/2fa/passkeys")
@openapi.tag("accounts")
@returns(200, Passkeys, "The account's passkeys")
@require_auth
async def list_passkeys(request: Request) -> HTTPResponse:
    return json_response({"items": await passkeys.list_passkeys(_stores(request), caller_id(request))})


@bp.delete("/me/2fa/passkeys/<passkey_id:int>")
@openapi.tag("accounts")
@no_content("The passkey no longer signs in")
@refusal(403, "Wrong password")
@refusal(404, "No such passkey on this account")
@openapi.body({"application/json": openapi.Component(PasswordBody)}, required=True)
@require_auth
async def remove_passkey(request: Request, passkey_id: int) -> HTTPResponse:
    """Remove a passkey (the password is required)."""
    body = parse_body(request, PasswordBody)
    await passkeys.remove(_stores(request), _passwords(request), caller_id(request), passkey_id, body.password,
                          client_ip(request))
    return HTTPResponse(status=204)


@bp.post("/login/2fa/passkey/options")
@openapi.tag("accounts")
@returns(200, WebAuthnOptions, "Options for navigator.credentials.get(); answer with POST /login/2fa/passkey")
@refusal(401, "mfa_token expired or already used")
@refusal(409, "The account has no passkey")
@openapi.body({"application/json": openapi.Component(MfaTokenBody)}, required=True)
async def passkey_login_options(request: Request) -> HTTPResponse:
    """Finish a login that answered `mfa_required` with a passkey: first, its options."""
    body = parse_body(request, MfaTokenBody)
    return json_response(await passkeys.login_options(_stores(request), body.mfa_token))


@bp.post("/login/2fa/passkey")
@openapi.tag("accounts")
@returns(200, SignedIn, "Signed in")
@refusal(401, "The passkey could not be verified, or mfa_token expired")
@refusal(409, "No options asked (or they expired)")
@refusal(429, "Too many tries (Retry-After)")
@openapi.body({"application/json": openapi.Component(PasskeySignIn)}, required=True)
async def login_with_passkey(request: Request) -> HTTPResponse:
    """Finish a login with what navigator.credentials.get() answered (its `toJSON()`)."""
    body = parse_body(request, PasskeySignIn)
    client = Client(user_agent=request.headers.get("user-agent", ""), ip=client_ip(request))
    return json_response(await passkeys.finish_login(_stores(request), body.mfa_token, body.credential, client))


# -- the pages mailed links open -----------------------------------------------------------


def _page(name: str, content_type: str) -> HTTPResponse:
    # The token stays in the page's address and goes nowhere else: no referrer, no framing,
    # no script but ours, requests to this origin only.
    return HTTPResponse((PAGES / name).read_bytes(), content_type=content_type, headers={
        "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
                                    "connect-src 'self'; base-uri 'none'; form-action 'none'; "
                                    "frame-ancestors 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    })


@bp.get("/password/reset")
@openapi.tag("accounts")
@openapi.parameter("token", str, "query")
@openapi.response(200, {"text/html": str}, "The page")
async def reset_page(request: Request) -> HTTPResponse:
    """The page a reset link opens: asks for the new password, then POSTs /password/reset."""
    return _page("reset.html", "text/html; charset=utf-8")


@bp.get("/email/verify")
@openapi.tag("accounts")
@openapi.parameter("token", str, "query")
@openapi.response(200, {"text/html": str}, "The page")
async def verify_page(request: Request) -> HTTPResponse:
    """The page a verification link opens: POSTs /email/verify and says how it went."""
    return _page("verify.html", "text/html; charset=utf-8")


@bp.get("/accounts/links.js")
@openapi.exclude()
async def pages_script(request: Request) -> HTTPResponse:
    return _page("links.js", "text/javascript; charset=utf-8")
