import asyncio

import httpx


async def test_unknown_route_is_json_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/no/such/route")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}


async def test_wrong_method_is_json_405(api: httpx.AsyncClient) -> None:
    response = await api.delete("/ping")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_the_seed_token_route_does_not_exist(api: httpx.AsyncClient) -> None:
    response = await api.get("/token")
    assert response.status_code == 404


async def test_errors_never_leak_a_stack_trace(api: httpx.AsyncClient) -> None:
    response = await api.get("/%ff%fe")
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text


async def test_ids_beyond_bigint_are_not_found_not_a_crash(api: httpx.AsyncClient, stores) -> None:
    from tests.factories import make_user

    alice = await make_user(stores)
    response = await api.get("/conversations/99999999999999999999999", headers=alice.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_a_nul_character_in_stored_text_is_a_422_naming_the_field(api: httpx.AsyncClient, stores) -> None:
    from tests.factories import make_user

    alice = await make_user(stores)
    response = await api.post("/posts", json={"body": "a\u0000b"}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert [d["field"] for d in response.json()["details"]] == ["body"]
    response = await api.patch("/me", json={"display_name": "\u0000"}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["details"] == [
        {"field": "display_name", "message": "Must not contain NUL characters (U+0000)"}
    ]
    response = await api.post("/login", json={"username": "alice\u0000", "password": "whatever"})
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "username"


async def test_control_characters_are_refused_in_names_and_kept_to_line_breaks_and_tabs_in_prose(
    api: httpx.AsyncClient, stores
) -> None:
    from tests.factories import make_user

    alice = await make_user(stores)
    refused = [
        ("/me", "patch", {"display_name": "Alice\nAdmin"}, "display_name"),
        ("/me", "patch", {"bio": "ring \u0007"}, "bio"),
        ("/posts", "post", {"body": "escape \u001b[31m"}, "body"),
        ("/conversations", "post", {"title": "tab\tin title", "member_ids": [alice.id]}, "title"),
    ]
    for path, method, body, field in refused:
        response = await api.request(method, path, json=body, headers=alice.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["details"][0] == {"field": field, "message": "Must not contain control characters"}
    bio = await api.patch("/me", json={"bio": "line one\nline two\twith a tab"}, headers=alice.headers)
    assert bio.status_code == 200
    post = await api.post("/posts", json={"body": "first line\r\nsecond line"}, headers=alice.headers)
    assert post.status_code == 201 and post.json()["body"] == "first line\r\nsecond line"


async def test_a_password_may_hold_a_nul_character_it_is_hashed_not_stored(api: httpx.AsyncClient) -> None:
    password = "nul\u0000inside"
    signup = await api.post("/signup", json={"username": "nulpass", "email": "nulpass@example.test",
                                             "password": password})
    assert signup.status_code == 201, signup.text
    login = await api.post("/login", json={"username": "nulpass", "password": password})
    assert login.status_code == 200, login.text


async def test_ids_beyond_bigint_in_a_body_are_a_422_naming_the_field(api: httpx.AsyncClient, stores) -> None:
    from tests.factories import make_user

    alice = await make_user(stores)
    response = await api.post("/conversations", json={"user_id": 2**63}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "user_id"
    response = await api.post("/conversations", json={"title": "t", "member_ids": [2**63]}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "member_ids.0"


async def test_oversized_headers_are_a_413_that_says_headers_not_body(api: httpx.AsyncClient) -> None:
    response = await api.get("/posts", params={"cursor": "x" * 20_000})
    assert response.status_code == 413
    assert response.json() == {"error": "Request URL or headers too large", "code": "headers_too_large"}


async def test_a_postgresql_connection_lost_inside_a_transaction_is_a_503_not_a_500(stores) -> None:
    # What a request sees when PostgreSQL dies mid-transaction: the lost connection, then the
    # rollback on leaving `async with conn.transaction()` failing on the closed connection.
    import asyncpg

    from nubo_backend.edge.errors import to_nubo_error

    conn = await asyncpg.connect(stores.settings.postgres_dsn)
    raised: list[BaseException] = []
    try:
        async with conn.transaction():
            await stores.pg.execute("SELECT pg_terminate_backend($1)", conn.get_server_pid())
            for _ in range(50):  # until the client has seen its connection go
                if conn.is_closed():
                    break
                try:
                    await conn.fetchval("SELECT 1")
                except Exception:  # noqa: BLE001 - whatever asyncpg raises first as it notices
                    await asyncio.sleep(0.05)
            await conn.fetchval("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        raised.append(exc)
    finally:
        conn.terminate()
    assert raised and isinstance(raised[0], asyncpg.InterfaceError), raised
    answer = to_nubo_error(raised[0])
    assert (answer.status, answer.code) == (503, "service_unavailable")
