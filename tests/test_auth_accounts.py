import httpx

from nubo_backend.auth.tokens import decode_access_token
from nubo_backend.stores import Stores
from tests.auth_support import PASSWORD, bearer, login, signup
from tests.factories import make_user

PUBLIC_KEYS = {"id", "username", "display_name", "bio", "avatar_url", "created_at"}


async def test_signup_creates_account_and_returns_a_working_token_pair(api: httpx.AsyncClient, stores: Stores) -> None:
    response = await api.post(
        "/signup", json={"username": "Alice_1", "email": "  Alice@Example.COM ", "password": "correct horse"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == stores.settings.access_token_ttl
    assert body["user"]["username"] == "Alice_1"
    assert set(body["user"]) == PUBLIC_KEYS  # the e-mail is shown on /me only
    claims = decode_access_token(stores.settings.jwt_secret, body["access_token"])
    assert claims.user_id == body["user"]["id"]
    assert body["refresh_token"].startswith(f"{claims.session_id}.")
    me = await api.get("/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json() == {**body["user"], "email": "alice@example.com",  # normalised
                         "email_verified": False, "language": "en", "two_factor": False}
    stored = await stores.pg.fetchval("SELECT password_hash FROM users WHERE id = $1", claims.user_id)
    assert stored.startswith("$argon2id$")


async def test_signup_rejects_each_invalid_field_with_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/signup", json={"username": "a!", "email": "not-an-email", "password": "short"})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    assert {d["field"] for d in body["details"]} == {"username", "email", "password"}


async def test_signup_refuses_overlong_password_and_unknown_fields(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/signup", json={"username": "bob", "email": "bob@example.test", "password": "x" * 257, "admin": True}
    )
    assert response.status_code == 422
    assert {d["field"] for d in response.json()["details"]} == {"password", "admin"}


async def test_signup_username_taken_case_insensitively_is_409_naming_username(
    api: httpx.AsyncClient,
) -> None:
    await signup(api, "Carol")
    response = await api.post(
        "/signup", json={"username": "carol", "email": "other@example.test", "password": PASSWORD}
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "already_exists"
    assert [d["field"] for d in body["details"]] == ["username"]


async def test_signup_email_taken_is_409_naming_email(api: httpx.AsyncClient) -> None:
    await signup(api, "dave")
    response = await api.post(
        "/signup", json={"username": "dave2", "email": "DAVE@example.test", "password": PASSWORD}
    )
    assert response.status_code == 409
    assert [d["field"] for d in response.json()["details"]] == ["email"]


async def test_signup_with_malformed_json_is_400_malformed_json(api: httpx.AsyncClient) -> None:
    response = await api.post("/signup", content=b'{"username": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"


async def test_signup_with_body_over_the_limit_is_json_413(start_server) -> None:
    server = start_server({"NUBO_MAX_BODY_BYTES": "1024"})
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.post(
            "/signup", json={"username": "eve", "email": "eve@example.test", "password": "p" * 4000}
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == "payload_too_large"


async def test_signup_with_a_json_array_is_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/signup", json=[{"username": "frank"}])
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "body"


async def test_login_by_username_or_email_returns_tokens_and_user(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores, "Grace")
    by_name = await api.post("/login", json={"username": "grace", "password": PASSWORD})
    by_email = await api.post("/login", json={"email": "GRACE@example.test", "password": PASSWORD})
    for response in (by_name, by_email):
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
        assert body["user"]["id"] == user.id
    # Two logins, two distinct sessions (one per device).
    assert by_name.json()["refresh_token"] != by_email.json()["refresh_token"]


async def test_login_needs_exactly_one_of_username_and_email(api: httpx.AsyncClient) -> None:
    neither = await api.post("/login", json={"password": PASSWORD})
    both = await api.post("/login", json={"username": "a", "email": "a@example.test", "password": PASSWORD})
    assert neither.status_code == both.status_code == 422


async def test_login_wrong_password_and_unknown_user_get_the_same_401(api: httpx.AsyncClient, stores: Stores) -> None:
    await make_user(stores, "heidi")
    wrong_password = await api.post("/login", json={"username": "heidi", "password": "wrong-password"})
    unknown_user = await api.post("/login", json={"username": "nobody_here", "password": "wrong-password"})
    unknown_email = await api.post("/login", json={"email": "nobody@example.test", "password": "wrong-password"})
    assert wrong_password.status_code == unknown_user.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_user.json() == unknown_email.json()
    assert wrong_password.json()["code"] == "invalid_credentials"


async def test_password_is_taken_verbatim_surrounding_spaces_included(api: httpx.AsyncClient) -> None:
    await signup(api, "ivan", password="  spaced pass  ")
    stripped = await api.post("/login", json={"username": "ivan", "password": "spaced pass"})
    verbatim = await api.post("/login", json={"username": "ivan", "password": "  spaced pass  "})
    assert stripped.status_code == 401
    assert verbatim.status_code == 200


async def test_me_requires_the_authorization_header(api: httpx.AsyncClient) -> None:
    response = await api.get("/me")
    assert response.status_code == 401
    assert response.json() == {"error": "Authorization header manquant", "code": "missing_authorization"}


async def test_patch_me_changes_only_given_fields(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    first = await api.patch(
        "/me", headers=user.headers, json={"display_name": "Judy", "avatar_url": "https://img.example/j.png"}
    )
    assert first.status_code == 200
    second = await api.patch("/me", headers=user.headers, json={"bio": "hello", "avatar_url": None})
    body = second.json()
    assert (body["display_name"], body["bio"], body["avatar_url"]) == ("Judy", "hello", None)
    assert (await api.get("/me", headers=user.headers)).json() == body


async def test_patch_me_rejects_bad_fields_and_empty_patches(api: httpx.AsyncClient, stores: Stores) -> None:
    user = await make_user(stores)
    bad = await api.patch(
        "/me", headers=user.headers, json={"display_name": "x" * 51, "avatar_url": "javascript:alert(1)", "bio": None}
    )
    assert bad.status_code == 422
    assert {d["field"] for d in bad.json()["details"]} == {"display_name", "avatar_url", "bio"}
    empty = await api.patch("/me", headers=user.headers, json={})
    assert empty.status_code == 422
    username = await api.patch("/me", headers=user.headers, json={"username": "renamed"})
    assert username.status_code == 422


async def test_password_change_requires_current_password_and_revokes_other_sessions(
    api: httpx.AsyncClient, stores: Stores
) -> None:
    await signup(api, "karl")
    phone = await login(api, "karl")
    laptop = await login(api, "karl")
    wrong = await api.post(
        "/me/password",
        headers=bearer(laptop["access_token"]),
        json={"current_password": "not-it-at-all", "new_password": "brand new pass"},
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "wrong_password"
    changed = await api.post(
        "/me/password",
        headers=bearer(laptop["access_token"]),
        json={"current_password": PASSWORD, "new_password": "brand new pass"},
    )
    assert changed.status_code == 200
    assert changed.json()["revoked_sessions"] == 2  # the signup session and the phone
    assert (await api.get("/me", headers=bearer(laptop["access_token"]))).status_code == 200
    assert (await api.get("/me", headers=bearer(phone["access_token"]))).json()["error"] == "Token invalide"
    refreshed = await api.post("/refresh", json={"refresh_token": phone["refresh_token"]})
    assert refreshed.status_code == 401
    assert (await api.post("/login", json={"username": "karl", "password": PASSWORD})).status_code == 401
    await login(api, "karl", "brand new pass")


async def test_openapi_documents_the_auth_routes(api: httpx.AsyncClient) -> None:
    spec = (await api.get("/docs/openapi.json")).json()
    for path in ("/signup", "/login", "/refresh", "/logout", "/logout/all", "/sessions", "/me", "/me/password"):
        assert path in spec["paths"]
    body = spec["paths"]["/signup"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SignupBody"}
    assert sorted(spec["components"]["schemas"]["SignupBody"]["required"]) == ["email", "password", "username"]
    assert spec["paths"]["/me"]["get"]["security"] == [{"bearer": []}]
