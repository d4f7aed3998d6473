"""`nubo role USER moderator|user`: sets the role, records it, and fails in one clear line."""

from __future__ import annotations

import httpx

from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.support import free_port
from tests.test_cli import nubo


def one_line_error(result) -> str:
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


async def test_role_by_username_makes_a_moderator_who_may_list_reports(
    test_env, stores: Stores, api: httpx.AsyncClient
) -> None:
    user = await make_user(stores, "Modo_1")
    assert (await api.get("/reports", headers=user.headers)).status_code == 403
    result = nubo(test_env, "role", "modo_1", "moderator")  # usernames match whatever their case
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Modo_1 (id {user.id}): user -> moderator"
    assert (await api.get("/reports", headers=user.headers)).status_code == 200


async def test_role_by_id_back_to_user_is_recorded_in_the_moderation_log(test_env, stores: Stores) -> None:
    user = await make_user(stores)
    assert nubo(test_env, "role", str(user.id), "moderator").returncode == 0
    result = nubo(test_env, "role", str(user.id), "user")
    assert result.returncode == 0, result.stderr
    assert await stores.pg.fetchval("SELECT role FROM users WHERE id = $1", user.id) == "user"
    logged = await stores.pg.fetch(
        "SELECT moderator_id, action, target_type, target_id, details::text FROM moderation_actions ORDER BY id"
    )
    assert [(r["moderator_id"], r["action"], r["target_type"], r["target_id"]) for r in logged] == [
        (None, "set_role", "user", user.id), (None, "set_role", "user", user.id)
    ]
    assert '"to":"user"' in logged[1]["details"].replace(" ", "")


async def test_role_refuses_an_unknown_user_or_role_in_one_line(test_env, stores: Stores) -> None:
    user = await make_user(stores)
    assert "no user 'ghost'" in one_line_error(nubo(test_env, "role", "ghost", "moderator"))
    assert "no user '99999999999999999999'" in one_line_error(nubo(test_env, "role", "99999999999999999999", "user"))
    error = one_line_error(nubo(test_env, "role", user.username, "admin"))
    assert "unknown role 'admin'" in error and "moderator" in error
    assert await stores.pg.fetchval("SELECT role FROM users WHERE id = $1", user.id) == "user"
    assert await stores.pg.fetchval("SELECT count(*) FROM moderation_actions") == 0


def test_role_with_postgres_down_says_so_in_one_line(test_env) -> None:
    env = {**test_env, "NUBO_POSTGRES_DSN": f"postgresql://postgres@127.0.0.1:{free_port()}/nubo"}
    assert "PostgreSQL" in one_line_error(nubo(env, "role", "someone", "moderator"))
