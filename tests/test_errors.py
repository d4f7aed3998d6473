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
