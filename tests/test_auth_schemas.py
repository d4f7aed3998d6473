"""The input rules of the auth routes, checked on the models themselves (no server needed)."""

import pytest
from pydantic import ValidationError

from nubo_backend.auth.schemas import LoginBody, SignupBody


def _signup(**changes: str) -> SignupBody:
    fields = {"username": "valid_name", "email": "a@example.com", "password": "p" * 8, **changes}
    return SignupBody.model_validate(fields)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("user@example.com", "user@example.com"),
        ("  User.Name+tag@Example.COM ", "user.name+tag@example.com"),
        ("o'hara@mail.example.org", "o'hara@mail.example.org"),
        ("x@a-b.co", "x@a-b.co"),
        ("1234@sub.domain.example", "1234@sub.domain.example"),
    ],
)
def test_valid_emails_are_normalised(given: str, stored: str) -> None:
    assert _signup(email=given).email == stored


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "@example.com",
        "user@",
        "user@localhost",  # no dot in the domain
        "user@@example.com",
        "user name@example.com",
        "user@exa mple.com",
        "user@-example.com",
        "user@example-.com",
        "user@example..com",
        '"quoted"@example.com',
        "user@[127.0.0.1]",
        "user@exam\nple.com",
        "a" * 250 + "@example.com",
    ],
)
def test_invalid_emails_are_refused(email: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _signup(email=email)
    assert [e["loc"] for e in caught.value.errors()] == [("email",)]


@pytest.mark.parametrize("username", ["ab", "a" * 31, "has-dash", "has space", "é_accent", "semi;colon"])
def test_invalid_usernames_are_refused(username: str) -> None:
    with pytest.raises(ValidationError):
        _signup(username=username)


@pytest.mark.parametrize("username", ["abc", "a" * 30, "Under_score_9", "007_bond", "1_2"])
def test_valid_usernames_are_accepted(username: str) -> None:
    assert _signup(username=username).username == username


@pytest.mark.parametrize("username", ["123", "0042", "9223372036854775808"])
def test_usernames_of_only_digits_are_refused_they_would_read_as_user_ids(username: str) -> None:
    # GET /users/<ref> takes digits for an id: "123" could never be found by name.
    with pytest.raises(ValidationError) as caught:
        _signup(username=username)
    assert [e["loc"] for e in caught.value.errors()] == [("username",)]


def test_password_bounds_are_8_to_256_characters() -> None:
    assert _signup(password="p" * 256).password == "p" * 256
    for bad in ("p" * 7, "p" * 257):
        with pytest.raises(ValidationError):
            _signup(password=bad)


def test_login_identifier_is_lowercased_for_lookup_and_limits() -> None:
    assert LoginBody.model_validate({"email": "Bob@Example.com", "password": "x"}).identifier == "bob@example.com"
    assert LoginBody.model_validate({"username": "BoB", "password": "x"}).identifier == "bob"
