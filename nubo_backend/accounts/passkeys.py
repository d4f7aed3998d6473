"""Passkeys (WebAuthn) as a second factor: registering one, and finishing a login with one.

py_webauthn (Duo's) checks the ceremonies: the client data, the origin, the RP id, the signature
and the signature counter. This module keeps what it needs between the two halves of each
ceremony, the challenge (in Redis, single use, CHALLENGE_TTL seconds), and the credentials.
The relying party is NUBO_PUBLIC_URL: its host is the RP id (a browser refuses an IP address,
so passkeys need a name, `localhost` included) and its origin is the one the browser reports.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from nubo_backend.accounts import service, two_factor
from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.service import Client, check_current_password, open_session, sessions_available
from nubo_backend.edge.errors import NuboError, conflict, not_found
from nubo_backend.settings import Settings
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.accounts")

RP_NAME = "Nubo"
CHALLENGE_TTL = 300  # seconds between asking for options and answering them
MAX_PASSKEYS = 10


def invalid_passkey() -> NuboError:
    return NuboError(401, "invalid_passkey", "The passkey could not be verified")


def relying_party(settings: Settings) -> tuple[str, str]:
    """(RP id, origin) from NUBO_PUBLIC_URL."""
    parts = urlsplit(settings.public_url)
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def _challenge_key(stores: Stores, purpose: str, owner: str) -> str:
    return stores.keys("passkey", purpose, hashlib.sha256(owner.encode()).hexdigest())


async def _keep_challenge(stores: Stores, key: str, challenge: bytes) -> None:
    with sessions_available():
        await stores.redis.set(key, challenge, ex=CHALLENGE_TTL)


async def _take_challenge(stores: Stores, key: str) -> bytes | None:
    with sessions_available():
        return await stores.redis.getdel(key)


def _descriptors(rows: list[Any]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=bytes(row["credential_id"])) for row in rows]


def _public(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "name": row["name"], "created_at": row["created_at"],
            "last_used_at": row["last_used_at"]}


async def _passkeys(stores: Stores, user_id: int) -> list[Any]:
    async with stores.pg.acquire() as conn:
        return [row async for row in stores.sql.accounts.passkeys_of(conn, user_id=user_id)]


async def list_passkeys(stores: Stores, user_id: int) -> list[dict[str, Any]]:
    return [_public(row) for row in await _passkeys(stores, user_id)]


async def registration_options(stores: Stores, user_id: int) -> dict[str, Any]:
    """The options for navigator.credentials.create(); the answer goes to `register`."""
    async with stores.pg.acquire() as conn:
        user = await stores.sql.auth.get_account(conn, user_id=user_id)
    if user is None:
        raise not_found("Account not found", code="user_not_found")
    existing = await _passkeys(stores, user_id)
    if len(existing) >= MAX_PASSKEYS:
        raise conflict(f"An account has at most {MAX_PASSKEYS} passkeys", code="too_many_passkeys")
    rp_id, _ = relying_party(stores.settings)
    options = generate_registration_options(
        rp_id=rp_id, rp_name=RP_NAME, user_name=user["username"], user_id=str(user_id).encode(),
        exclude_credentials=_descriptors(existing),  # the same authenticator twice would add nothing
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    await _keep_challenge(stores, _challenge_key(stores, "register", str(user_id)), options.challenge)
    return options_to_json_dict(options)


async def register(stores: Stores, user_id: int, credential: dict[str, Any], name: str) -> dict[str, Any]:
    """Keep the passkey the browser created for the last options: from now on login asks for a
    second factor, which it (or a TOTP code, if that is on too) answers."""
    challenge = await _take_challenge(stores, _challenge_key(stores, "register", str(user_id)))
    if challenge is None:
        raise NuboError(409, "passkey_not_started", "Start with POST /me/2fa/passkeys/options")
    rp_id, origin = relying_party(stores.settings)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        log.info("passkey registration refused: %s", type(exc).__name__, extra={"user_id": user_id})
        # 422: well-formed JSON whose attestation does not answer this server's challenge.
        raise NuboError(422, "invalid_passkey", "The passkey could not be verified") from None
    async with stores.pg.acquire() as conn:
        row = await stores.sql.accounts.add_passkey(
            conn, user_id=user_id, credential_id=verified.credential_id,
            public_key=verified.credential_public_key, sign_count=verified.sign_count, name=name,
        )
    if row is None:
        raise conflict("This passkey is already registered", code="already_exists")
    log.info("passkey added", extra={"user_id": user_id})
    return _public(row)


async def remove(stores: Stores, passwords: Passwords, user_id: int, passkey_id: int, password: str,
                 ip: str) -> None:
    await check_current_password(stores, passwords, user_id, password, ip)
    async with stores.pg.acquire() as conn:
        if await stores.sql.accounts.remove_passkey(conn, user_id=user_id, id=passkey_id) is None:
            raise not_found("Passkey not found", code="passkey_not_found")
    log.info("passkey removed", extra={"user_id": user_id})


async def _mfa_user(stores: Stores, mfa_token: str) -> int:
    with sessions_available():
        user_id = await stores.redis.get(two_factor.mfa_key(stores, mfa_token))
    if user_id is None:
        raise service.invalid_mfa_token()
    return int(user_id)


async def login_options(stores: Stores, mfa_token: str) -> dict[str, Any]:
    """The options for navigator.credentials.get() that finish the login mfa_token stands for."""
    user_id = await _mfa_user(stores, mfa_token)
    existing = await _passkeys(stores, user_id)
    if not existing:
        raise NuboError(409, "no_passkey", "This account has no passkey: use a code")
    rp_id, _ = relying_party(stores.settings)
    options = generate_authentication_options(
        rp_id=rp_id, allow_credentials=_descriptors(existing),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    await _keep_challenge(stores, _challenge_key(stores, "login", mfa_token), options.challenge)
    return options_to_json_dict(options)


async def finish_login(stores: Stores, mfa_token: str, credential: dict[str, Any], client: Client) -> dict[str, Any]:
    """The second step of a login, answered by a passkey; what login answers without two-factor."""
    user_id = await _mfa_user(stores, mfa_token)
    await service.limit_codes(stores, user_id, client.ip)  # as codes are: each try is a guess
    challenge = await _take_challenge(stores, _challenge_key(stores, "login", mfa_token))
    if challenge is None:
        raise NuboError(409, "passkey_not_started", "Start with POST /login/2fa/passkey/options")
    try:
        credential_id = base64url_to_bytes(str(credential.get("rawId") or credential.get("id") or ""))
    except (ValueError, TypeError):
        raise invalid_passkey() from None
    async with stores.pg.acquire() as conn:
        passkey = await stores.sql.accounts.passkey_by_credential(conn, user_id=user_id, credential_id=credential_id)
        user = await stores.sql.auth.get_account(conn, user_id=user_id)
    if passkey is None or user is None:
        raise invalid_passkey()
    rp_id, origin = relying_party(stores.settings)
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id, expected_origin=origin,
            credential_public_key=bytes(passkey["public_key"]), credential_current_sign_count=passkey["sign_count"],
        )
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        log.info("passkey sign-in refused: %s", type(exc).__name__, extra={"user_id": user_id})
        raise invalid_passkey() from None
    async with stores.pg.acquire() as conn:
        await stores.sql.accounts.passkey_used(conn, id=passkey["id"], sign_count=verified.new_sign_count)
    with sessions_available():
        if not await stores.redis.delete(two_factor.mfa_key(stores, mfa_token)):  # finished meanwhile
            raise service.invalid_mfa_token()
    return await open_session(stores, user, client)

