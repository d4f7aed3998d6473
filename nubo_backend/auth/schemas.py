"""Input models of the auth routes, and their replies."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, ConfigDict, StringConstraints, WithJsonSchema, field_validator, model_validator

from nubo_backend.edge.replies import Reply
from nubo_backend.edge.validation import Body, MultiLine, OneLine, given, not_null

USERNAME_PATTERN = r"^[A-Za-z0-9_]{3,30}$"
PASSWORD_MIN = 8
# Bounds the cost of hashing what a client sends (argon2 reads the whole input).
PASSWORD_MAX = 256
# The WHATWG HTML "valid e-mail address" grammar, with a dot required in the domain
# (nobody signs up from a bare host name). Not RFC 5322 in full, on purpose: quoted local
# parts and IP literals are refused.
EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
EMAIL_MAX = 254


def normalise_email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > EMAIL_MAX or not EMAIL_RE.fullmatch(value):
        raise ValueError("Not a valid e-mail address")
    return value


def _not_an_id(value: str) -> str:
    # /users/<ref> reads a ref made of digits as a user id: such a name could never be looked up.
    if value.isdigit():
        raise ValueError("Cannot be only digits")
    return value


# Published as one pattern: the allowed characters, with at least one that is not a digit.
USERNAME_SCHEMA = {
    "type": "string", "minLength": 3, "maxLength": 30, "pattern": r"^[A-Za-z0-9_]*[A-Za-z_][A-Za-z0-9_]*$"
}
Username = Annotated[
    str, StringConstraints(pattern=USERNAME_PATTERN), AfterValidator(_not_an_id), WithJsonSchema(USERNAME_SCHEMA)
]
Email = Annotated[
    str, AfterValidator(normalise_email),
    WithJsonSchema({"type": "string", "maxLength": EMAIL_MAX, "pattern": EMAIL_RE.pattern}),
]
# Passwords are taken byte for byte: no stripping of surrounding spaces.
NewPassword = Annotated[
    str, StringConstraints(strip_whitespace=False, min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
]
GivenPassword = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=PASSWORD_MAX)]
DisplayName = Annotated[str, StringConstraints(max_length=50), OneLine]
Bio = Annotated[str, StringConstraints(max_length=300), MultiLine]
AvatarUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=500)]


# The language of the account's mails (nubo_backend/mail): English or French.
Language = Literal["en", "fr"]


class SignupBody(Body):
    model_config = ConfigDict(json_schema_extra=lambda schema: not_null(schema, "language"))
    nul_allowed = frozenset({"password"})

    username: Username
    email: Email
    password: NewPassword
    language: Language | None = None  # absent: from Accept-Language, else English

    @field_validator("language")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("Cannot be null (leave it out)")
        return value


class LoginBody(Body):
    """Either `username` or `email`, with the password."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [given("username", "string"), given("email", "string")]})
    nul_allowed = frozenset({"password"})

    username: Annotated[str, StringConstraints(min_length=1, max_length=EMAIL_MAX)] | None = None
    email: Annotated[str, StringConstraints(min_length=1, max_length=EMAIL_MAX)] | None = None
    password: GivenPassword

    @model_validator(mode="after")
    def _one_identifier(self) -> Self:
        if (self.username is None) == (self.email is None):
            raise ValueError("Give either username or email")
        return self

    @property
    def identifier(self) -> str:
        """The account named, normalised the way it is stored and compared (lowercase)."""
        return (self.username or self.email or "").lower()


class RefreshBody(Body):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ProfilePatch(Body):
    """Fields to change; absent fields stay as they are, `avatar_url: null` removes the avatar."""

    model_config = ConfigDict(
        json_schema_extra=lambda schema: schema.update(minProperties=1)
        or not_null(schema, "display_name", "bio", "language")
    )

    display_name: DisplayName | None = None
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None
    language: Language | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("Give at least one of display_name, bio, avatar_url, language")
        return self

    @field_validator("display_name", "bio", "language")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("Cannot be null (use an empty string)")
        return value


class AccountDeletion(Body):
    nul_allowed = frozenset({"password"})

    password: GivenPassword


class PasswordChange(Body):
    nul_allowed = frozenset({"current_password", "new_password"})

    current_password: GivenPassword
    new_password: NewPassword


# -- replies -------------------------------------------------------------------------------


class PublicAccount(Reply):
    id: int
    username: str
    display_name: str
    bio: str
    avatar_url: str | None
    created_at: datetime


class Account(PublicAccount):
    """The caller's own account (GET /me)."""

    email: str
    email_verified: bool
    language: Language  # of the account's mails
    two_factor: bool  # two-factor sign-in is on


class Tokens(Reply):
    """A new access token (`expires_in` seconds) and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class SignedIn(Tokens):
    user: PublicAccount


class SessionOut(Reply):
    id: str
    user_agent: str
    ip: str
    created_at: datetime
    last_used_at: datetime
    current: bool


class SessionList(Reply):
    items: list[SessionOut]


class PasswordChanged(Reply):
    """The other sessions, revoked (the current one stays)."""

    revoked_sessions: int
