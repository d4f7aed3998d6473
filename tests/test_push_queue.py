"""Which relayed events become push jobs (push/queue.py), against the real stores."""

from __future__ import annotations

from pathlib import Path

from nubo_backend.jsonutil import dumps_str
from nubo_backend.push import queue_pushes
from nubo_backend.push.vapid import VapidSigner, new_private_key_pem
from nubo_backend.settings import load_settings
from tests.factories import make_user


async def _subscribe(stores, user, **columns) -> int:
    return await stores.pg.fetchval(
        "INSERT INTO push_subscriptions (user_id, session_id, kind, endpoint, origin, alerts, policy) "
        "VALUES ($1, $2, 'fcm', $3, 'fcm', $4, $5) RETURNING id",
        user.id, user.session_id, f"token-{user.id}-" + "x" * 20, dumps_str(columns.get("alerts", {})),
        columns.get("policy", "all"),
    )


def _message_row(sender_id: int, recipients: list[int], event_ids: list[int]) -> dict:
    data = {"id": 7, "conversation_id": 3, "sender_id": sender_id, "body": "hi " * 100}
    return {"type": "message.created", "data": dumps_str(data), "recipients": recipients, "event_ids": event_ids,
            "notification": False}


async def test_each_event_and_subscription_gets_one_job_even_when_a_batch_is_redone(stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await _subscribe(stores, bob)
    rows = [_message_row(alice.id, [alice.id, bob.id], [11, 21])]
    for _ in range(2):
        async with stores.pg.acquire() as conn, conn.transaction():
            await queue_pushes(conn, stores, rows)
    jobs = await stores.pg.fetch("SELECT event_id, kind, urgency, topic, payload FROM push_jobs")
    assert [(j["event_id"], j["kind"], j["urgency"], j["topic"]) for j in jobs] == [
        (21, "message", "high", "conversation-3")]  # not the sender's own copy


async def test_payloads_stay_small_and_the_preview_can_be_turned_off(stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await _subscribe(stores, bob)
    rows = [_message_row(alice.id, [bob.id], [5])]
    quiet = type(stores)(**{**stores.__dict__, "settings": stores.settings.replace(push_preview=False)})
    async with stores.pg.acquire() as conn, conn.transaction():
        await queue_pushes(conn, stores, rows)
        await conn.execute("DELETE FROM push_jobs")
        await queue_pushes(conn, quiet, rows)
        payload = await conn.fetchval("SELECT payload FROM push_jobs")
    assert '"body":"New message"' in payload and "hi hi" not in payload and len(payload) < 300


async def test_events_not_pushed_and_users_without_subscriptions_cost_nothing(stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    rows = [{"type": "message.read", "data": "{}", "recipients": [bob.id], "event_ids": [1], "notification": False},
            _message_row(alice.id, [bob.id], [2])]
    async with stores.pg.acquire() as conn, conn.transaction():
        await queue_pushes(conn, stores, rows)
    assert await stores.pg.fetchval("SELECT count(*) FROM push_jobs") == 0


def test_the_vapid_key_is_made_once_in_its_file_and_a_given_key_wins(tmp_path: Path) -> None:
    env = {"NUBO_ENV": "test", "NUBO_ENV_FILE": "/nonexistent", "NUBO_PUSH_VAPID_KEY_FILE": str(tmp_path / "v.pem")}
    first, again = load_settings(environ=env), load_settings(environ=env)
    assert first.push_vapid_private_key.startswith("-----BEGIN")
    assert again.push_vapid_private_key == first.push_vapid_private_key
    assert (tmp_path / "v.pem").stat().st_mode & 0o777 == 0o600
    given = new_private_key_pem()
    assert load_settings(environ={**env, "NUBO_PUSH_VAPID_PRIVATE_KEY": given}).push_vapid_private_key == given.strip()
    assert len(VapidSigner(first.push_vapid_private_key, "mailto:a@b.c").server_key) == 87


def test_allow_private_endpoints_reads_as_a_boolean() -> None:
    env = {"NUBO_ENV": "test", "NUBO_ENV_FILE": "/nonexistent"}
    assert load_settings(environ={**env, "NUBO_PUSH_ALLOW_PRIVATE_ENDPOINTS": "true"}).push_allow_private_endpoints
    assert not load_settings(environ=env).push_allow_private_endpoints
