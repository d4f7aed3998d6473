"""Input models of the account recovery routes, and their replies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import StringConstraints

from nubo_backend.auth.schemas import Email, GivenPassword, NewPassword
from nubo_backend.edge.replies import Reply
from nubo_backend.edge.validation import Body

# A mailed token (43 characters today); bounded so nothing long reaches the hash.
Token = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# A 6-digit TOTP code, or a recovery code (xxxx-xxxx-xxxx-xxxx, dashes and spaces optional).
Code = Annotated[str, StringConstraints(min_length=6, max_length=40)]


class TokenBody(Body):
    token: Token


class ForgotPassword(Body):
    email: Email


class PasswordReset(Body):
    nul_allowed = frozenset({"password"})

    token: Token
    password: NewPassword


class EmailChange(Body):
    nul_allowed = frozenset({"password"})

    email: Email
    password: GivenPassword


class CodeBody(Body):
    code: Code


class CodeAndPassword(Body):
    nul_allowed = frozenset({"password"})

    password: GivenPassword
    code: Code


class SecondFactor(Body):
    mfa_token: Token
    code: Code


class PasskeyRegistration(Body):
    """What navigator.credentials.create() answered (PublicKeyCredential.toJSON()), and a name
    to tell the passkey from the account's others."""

    credential: dict[str, Any]
    name: Annotated[str, StringConstraints(min_length=1, max_length=60)] = "Passkey"


class MfaTokenBody(Body):
    mfa_token: Token


class PasskeySignIn(Body):
    """What navigator.credentials.get() answered (PublicKeyCredential.toJSON())."""

    mfa_token: Token
    credential: dict[str, Any]


class PasswordBody(Body):
    nul_allowed = frozenset({"password"})

    password: GivenPassword


# -- replies -------------------------------------------------------------------------------


class Accepted(Reply):
    """Taken: a mail is on its way if it should be."""

    message: str


class EmailVerified(Reply):
    email: str
    email_verified: Literal[True]


class PasswordWasReset(Reply):
    """Every session of the account, revoked (their sockets are closed)."""

    revoked_sessions: int


class MfaRequired(Reply):
    """The password was right; finish with POST /login/2fa within `expires_in` seconds."""

    mfa_required: Literal[True]
    mfa_token: str
    expires_in: int


class TotpEnrolment(Reply):
    """The secret to add to an authenticator app (as text or by scanning the URI as a QR code)."""

    secret: str
    otpauth_uri: str


class RecoveryCodes(Reply):
    """Single-use codes that stand in for the app's code; shown once, keep them safe."""

    recovery_codes: list[str]



class Passkey(Reply):
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


class Passkeys(Reply):
    items: list[Passkey]


class WebAuthnOptions(Reply):
    """Options for navigator.credentials.create() or .get(), binary fields in base64url
    (PublicKeyCredential.parseCreationOptionsFromJSON / parseRequestOptionsFromJSON take them)."""

    challenge: str
    rpId: str | None = None  # noqa: N815 - WebAuthn's own name
