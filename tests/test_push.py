"""Push notifications end to end: a real server, and local Web Push, APNs and FCM services
(tests/push_receivers.py) that check what the real ones check."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.asyncio.client import connect

from nubo_backend.client import Nubo
from nubo_backend.push.vapid import b64url, new_private_key_pem
from nubo_backend.realtime.presence import is_online
from nubo_backend.stores import Stores
from tests.factories import TestUser, make_user
from tests.polling import eventually
from tests.push_receivers import APNsReceiver, FCMReceiver, WebPushReceiver
from tests.support import ServerProcess

APNS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-device-token:" + "x" * 40
QUIET = 1.5  # seconds without a push that count as "none coming" (grace 0.2 s, pushes take ~0.1 s)


@dataclass
class Receivers:
    webpush: WebPushReceiver
    apns: APNsReceiver
    fcm: FCMReceiver


@pytest.fixture(scope="module")
async def receivers() -> AsyncIterator[Receivers]:
    started = []
    try:
        for receiver in (WebPushReceiver(), APNsReceiver(), FCMReceiver()):
            started.append(await receiver.start())
        yield Receivers(*started)
    finally:
        for receiver in started:
            await receiver.stop()


@pytest.fixture(scope="module")
def push_server_process(test_env: dict[str, str], session_stores: Stores, receivers: Receivers,
                        tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("push")
    (folder / "apns.p8").write_text(receivers.apns.key_pem())
    (folder / "fcm.json").write_text(json.dumps(receivers.fcm.service_account()))
    env = {
        **test_env,
        "NUBO_PUSH_VAPID_PRIVATE_KEY": new_private_key_pem(),
        "NUBO_PUSH_ALLOW_PRIVATE_ENDPOINTS": "true",
        "NUBO_PUSH_GRACE": "0.2",
        "NUBO_PUSH_RETRY_BASE": "0.3",
        "NUBO_PUSH_RETRY_MAX": "2",  # (a service back from an outage is tried again within 2.4 s)
        "NUBO_PUSH_TIMEOUT": "3",
        "NUBO_PUSH_ORIGIN_CONCURRENCY": "4",  # (the hanging push service test fills it)
        "NUBO_PUSH_APNS_URL": receivers.apns.origin,
        "NUBO_PUSH_APNS_KEY_FILE": str(folder / "apns.p8"),
        "NUBO_PUSH_APNS_KEY_ID": receivers.apns.key_id,
        "NUBO_PUSH_APNS_TEAM_ID": receivers.apns.team_id,
        "NUBO_PUSH_APNS_TOPIC": receivers.apns.topic,
        "NUBO_PUSH_FCM_URL": receivers.fcm.origin,
        "NUBO_PUSH_FCM_SERVICE_ACCOUNT_FILE": str(folder / "fcm.json"),
    }
    proc = ServerProcess(env)
    try:  # stopped even when it fails to start (a loaded machine: up to a minute)
        proc.start(wait=False)
        proc.wait_ready(timeout=60)
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def push(push_server_process: ServerProcess, stores: Stores, receivers: Receivers
               ) -> AsyncIterator[Receivers]:
    for receiver in (receivers.webpush, receivers.apns, receivers.fcm):
        receiver.reset()
        receiver.release()
    receivers.apns.unregistered.clear()
    receivers.fcm.unregistered.clear()
    yield receivers
    for receiver in (receivers.webpush, receivers.apns, receivers.fcm):
        receiver.release()


@pytest.fixture
async def api(push_server_process: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=push_server_process.url, timeout=10) as client:
        yield client


async def subscribe(api: httpx.AsyncClient, push: Receivers, user: TestUser, **data: object) -> dict:
    agent = push.webpush.new_subscription()
    response = await api.post("/push/subscription", headers=user.headers,
                              json={"subscription": agent.json(), "data": data})
    assert response.status_code == 200, response.text
    push.webpush.server_key = response.json()["server_key"]
    return response.json()


async def direct(api: httpx.AsyncClient, sender: TestUser, recipient: TestUser) -> int:
    response = await api.post("/conversations", headers=sender.headers, json={"user_id": recipient.id})
    assert response.status_code in (200, 201), response.text
    return response.json()["id"]


async def say(api: httpx.AsyncClient, sender: TestUser, conversation_id: int, body: str) -> dict:
    response = await api.post(f"/conversations/{conversation_id}/messages", headers=sender.headers,
                              json={"body": body})
    assert response.status_code == 201, response.text
    return response.json()


async def jobs_left(stores: Stores) -> int:
    return await stores.pg.fetchval("SELECT count(*) FROM push_jobs")


async def subscriptions(stores: Stores) -> int:
    return await stores.pg.fetchval("SELECT count(*) FROM push_subscriptions")


# -- subscriptions -----------------------------------------------------------------------


async def test_subscription_is_mastodon_shaped_with_alerts_policy_and_server_key(api, push, stores) -> None:
    bob = await make_user(stores)
    created = await subscribe(api, push, bob, alerts={"like": False, "poll": True}, policy="followed")
    assert created["alerts"] == {"message": True, "mention": True, "comment": True, "like": False, "follow": True}
    assert created["policy"] == "followed" and len(created["server_key"]) == 87  # 65 bytes, base64url
    shown = (await api.get("/push/subscription", headers=bob.headers)).json()
    assert shown == created
    changed = await api.put("/push/subscription", headers=bob.headers, json={"data": {"alerts": {"follow": False}}})
    assert changed.json()["alerts"] == {**created["alerts"], "follow": False}
    assert changed.json()["policy"] == "followed"
    assert (await api.delete("/push/subscription", headers=bob.headers)).status_code == 204
    missing = await api.get("/push/subscription", headers=bob.headers)
    assert missing.status_code == 404 and missing.json()["code"] == "push_subscription_not_found"


async def test_a_new_subscription_replaces_the_sessions_previous_one(api, push, stores) -> None:
    bob = await make_user(stores)
    await subscribe(api, push, bob)
    second = await subscribe(api, push, bob)
    assert await subscriptions(stores) == 1
    assert (await api.get("/push/subscription", headers=bob.headers)).json()["endpoint"] == second["endpoint"]


@pytest.mark.parametrize("endpoint", ["file:///etc/passwd", "ftp://127.0.0.1/x", "https://user:pw@127.0.0.1/x",
                                      "http://no-such-host.invalid/push"])
async def test_an_endpoint_that_is_not_a_reachable_url_is_refused(api, push, stores, endpoint) -> None:
    bob = await make_user(stores)
    agent = push.webpush.new_subscription()
    body = {"subscription": {**agent.json(), "endpoint": endpoint}}
    response = await api.post("/push/subscription", headers=bob.headers, json=body)
    assert response.status_code == 422 and response.json()["code"] == "invalid_subscription"


async def test_bad_subscription_keys_are_refused(api, push, stores) -> None:
    bob = await make_user(stores)
    agent = push.webpush.new_subscription()
    body = agent.json()
    body["keys"]["p256dh"] = body["keys"]["p256dh"][:20]
    response = await api.post("/push/subscription", headers=bob.headers, json={"subscription": body})
    assert response.status_code == 422


async def test_device_tokens_are_checked_per_platform(api, push, stores) -> None:
    bob = await make_user(stores)
    path = await api.post("/push/devices", headers=bob.headers, json={"platform": "apns", "token": "../../x"})
    assert path.status_code == 422 and path.json()["code"] == "validation_error"
    bad = await api.post("/push/devices", headers=bob.headers, json={"platform": "apns", "token": "not_hex_" * 10})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_device_token"
    good = await api.post("/push/devices", headers=bob.headers, json={"platform": "apns", "token": APNS_TOKEN})
    assert good.status_code == 201 and good.json()["platform"] == "apns"
    gone = await api.delete("/push/devices", headers=bob.headers, params={"platform": "apns", "token": APNS_TOKEN})
    assert gone.status_code == 204 and await subscriptions(stores) == 0


# -- Web Push delivery -------------------------------------------------------------------


async def test_dm_to_recipient_without_socket_arrives_as_web_push_within_2s(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await subscribe(api, push, bob)
    conversation = await direct(api, alice, bob)
    started = time.monotonic()
    message = await say(api, alice, conversation, "hello bob, are you there?")
    [received] = await push.webpush.wait_for(1, within=5)
    assert received.at - started < 2.0, f"push after {received.at - started:.2f}s"
    assert received.error == "" and push.webpush.errors == []
    assert received.payload == {
        "kind": "message", "event_id": received.payload["event_id"], "actor_id": alice.id,
        "conversation_id": conversation, "message_id": message["id"],
        "title": "New message", "body": "hello bob, are you there?",
    }
    assert received.headers["urgency"] == "high"
    assert received.headers["topic"] == f"conversation-{conversation}"
    assert 86000 < int(received.headers["ttl"]) <= 86400
    assert await eventually(lambda: jobs_left(stores), 0) == 0


async def test_recipient_with_a_live_socket_gets_no_push(api, push, stores, push_server_process) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await subscribe(api, push, bob)
    conversation = await direct(api, alice, bob)
    async with connect(push_server_process.ws_url, additional_headers=bob.headers, open_timeout=5) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
        assert await eventually(lambda: is_online(stores, bob.id), True)
        await say(api, alice, conversation, "you are online")
        while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "message.created":
            pass
        await asyncio.sleep(QUIET)
        assert push.webpush.received == []
        assert await eventually(lambda: jobs_left(stores), 0) == 0
    assert await eventually(lambda: is_online(stores, bob.id), False) is False
    await say(api, alice, conversation, "now you are not")
    assert len(await push.webpush.wait_for(1)) == 1


async def test_alerts_and_policy_decide_what_is_pushed(api, push, stores) -> None:
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    await subscribe(api, push, bob, alerts={"like": False}, policy="followed")
    assert (await api.post(f"/users/{alice.id}/follow", headers=bob.headers)).status_code == 200
    post = (await api.post("/posts", headers=bob.headers, json={"body": "my post"})).json()
    await say(api, carol, await direct(api, carol, bob), "from a stranger")  # policy: not followed
    await api.put(f"/posts/{post['id']}/like", headers=alice.headers)  # alert off
    await api.post(f"/posts/{post['id']}/comments", headers=alice.headers, json={"body": "nice"})
    await say(api, alice, await direct(api, alice, bob), "from a friend")
    received = await push.webpush.wait_for(2)
    await asyncio.sleep(QUIET)
    kinds = sorted((r.payload["kind"], r.payload["actor_id"]) for r in push.webpush.received)
    assert kinds == [("comment", alice.id), ("message", alice.id)], received


async def test_a_blocked_or_muted_sender_pushes_nothing(api, push, stores) -> None:
    alice, bob, carol, dave = [await make_user(stores) for _ in range(4)]
    await subscribe(api, push, bob)
    group = await api.post("/conversations", headers=alice.headers,
                           json={"title": "four", "member_ids": [bob.id, carol.id, dave.id]})
    assert group.status_code in (200, 201), group.text
    group_id = group.json()["id"]
    assert (await api.put(f"/users/{carol.id}/mute", headers=bob.headers)).status_code == 200
    assert (await api.put(f"/users/{dave.id}/block", headers=bob.headers)).status_code == 200
    post = (await api.post("/posts", headers=bob.headers, json={"body": "post"})).json()
    await say(api, carol, group_id, "muted voice")
    await say(api, dave, group_id, "blocked voice")
    await api.post(f"/posts/{post['id']}/comments", headers=carol.headers, json={"body": "muted comment"})
    await say(api, alice, group_id, "a voice bob hears")
    await push.webpush.wait_for(1)
    await asyncio.sleep(QUIET)
    assert [(r.payload["actor_id"], r.payload["body"]) for r in push.webpush.received] == [
        (alice.id, "a voice bob hears")]


async def test_a_subscription_answered_410_is_deleted(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await subscribe(api, push, bob)
    push.webpush.script = [(410, {}, b"")]
    await say(api, alice, await direct(api, alice, bob), "anyone?")
    assert await eventually(lambda: subscriptions(stores), 0) == 0
    assert await jobs_left(stores) == 0


async def test_a_push_service_down_for_10s_gets_the_push_once_when_back(api, push, stores) -> None:
    """The test's own push service stops for 10 s (its port closed: every attempt is refused);
    the sender keeps backing off, and once the service is back the push arrives, exactly once."""
    alice, bob = await make_user(stores), await make_user(stores)
    endpoint = (await subscribe(api, push, bob))["endpoint"]
    conversation = await direct(api, alice, bob)
    await push.webpush.stop()
    try:
        await say(api, alice, conversation, "while you were away")
        await asyncio.sleep(10.0)
        attempts = await stores.pg.fetchval(
            "SELECT j.attempts FROM push_jobs j JOIN push_subscriptions s ON s.id = j.subscription_id"
            " WHERE s.endpoint = $1", endpoint)
        assert attempts is not None and attempts >= 4  # refused again and again, the job kept
    finally:
        await push.webpush.start()
    back = time.monotonic()
    [received] = await push.webpush.wait_for(1, within=5)  # (the next try: at most 2 s x 1.2 away)
    assert received.payload["body"] == "while you were away"
    assert received.at - back < 5
    assert await eventually(lambda: jobs_left(stores), 0) == 0
    await asyncio.sleep(QUIET)
    assert len(push.webpush.received) == 1 and push.webpush.requests == 1  # once: no second try reached it
    assert await subscriptions(stores) == 1


async def test_a_logged_out_sessions_subscription_is_removed_not_pushed(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await subscribe(api, push, bob)
    conversation = await direct(api, alice, bob)
    assert (await api.post("/logout", headers=bob.headers)).status_code == 204
    await say(api, alice, conversation, "after logout")
    assert await eventually(lambda: subscriptions(stores), 0) == 0
    assert push.webpush.received == []


async def test_a_hanging_push_service_does_not_delay_socket_delivery(
    api, push, stores, push_server_process
) -> None:
    """Carol's socket delivery, measured before and while every push to bob hangs at his push
    service: the same. (Medians and p90: the relay's own poll can add up to 1 s to any one
    message, with or without push.)"""
    alice, bob, carol = await make_user(stores), await make_user(stores), await make_user(stores)
    await subscribe(api, push, bob)
    to_bob, to_carol = await direct(api, alice, bob), await direct(api, alice, carol)

    async def socket_latencies(ws: object, rounds: int) -> list[float]:
        latencies = []
        for i in range(rounds):
            started = time.monotonic()
            await say(api, alice, to_carol, f"to carol {i}")
            while json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] != "message.created":
                pass
            latencies.append(time.monotonic() - started)
        return sorted(latencies)

    async def hanging() -> bool:
        return push.webpush.requests >= 4  # (the sender's limit per push service)

    async with connect(push_server_process.ws_url, additional_headers=carol.headers, open_timeout=5) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
        before = await socket_latencies(ws, 20)
        push.webpush.hang = True
        for i in range(10):
            await say(api, alice, to_bob, f"to bob {i}")  # each a push that hangs
        await eventually(hanging, True)
        during = await socket_latencies(ws, 20)
    assert push.webpush.requests >= 4 and push.webpush.received == []  # the pushes really hang
    print(f"socket delivery, median/p90 ms: {before[10] * 1000:.0f}/{before[18] * 1000:.0f} before, "
          f"{during[10] * 1000:.0f}/{during[18] * 1000:.0f} with a hanging push service")
    assert during[10] < before[10] + 0.1 and during[18] < 0.5, (before, during)


# -- APNs and FCM ------------------------------------------------------------------------


async def register(api: httpx.AsyncClient, user: TestUser, platform: str, token: str) -> None:
    response = await api.post("/push/devices", headers=user.headers, json={"platform": platform, "token": token})
    assert response.status_code == 201, response.text


async def test_apns_gets_the_dm_with_a_valid_provider_token_over_http2(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await register(api, bob, "apns", APNS_TOKEN)
    conversation = await direct(api, alice, bob)
    await say(api, alice, conversation, "to your iphone")
    [received] = await push.apns.wait_for(1)
    assert push.apns.errors == []
    assert received.path == f"/3/device/{APNS_TOKEN}"
    assert received.headers["apns-priority"] == "10" and received.headers["apns-push-type"] == "alert"
    assert received.headers["apns-collapse-id"] == f"conversation-{conversation}"
    assert received.payload["aps"]["alert"]["body"] == "to your iphone"
    assert received.payload["nubo"]["conversation_id"] == conversation


async def test_apns_410_unregistered_deletes_the_device(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await register(api, bob, "apns", APNS_TOKEN)
    push.apns.unregistered.add(APNS_TOKEN)
    await say(api, alice, await direct(api, alice, bob), "gone phone")
    assert await eventually(lambda: subscriptions(stores), 0) == 0
    assert push.apns.received == [] and push.apns.errors == []


async def test_fcm_gets_the_dm_with_an_oauth_token_from_the_service_account(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await register(api, bob, "fcm", FCM_TOKEN)
    conversation = await direct(api, alice, bob)
    await say(api, alice, conversation, "to your android")
    await say(api, alice, conversation, "and again")
    received = await push.fcm.wait_for(2)
    assert push.fcm.errors == []
    assert [json.loads(r.payload["data"]["nubo"])["body"] for r in received] == ["to your android", "and again"]
    assert received[0].payload["android"]["priority"] == "high"
    assert received[0].payload["android"]["collapse_key"] == f"conversation-{conversation}"
    assert push.fcm.token_requests <= 1  # the access token is kept (at most one made in this test)


async def test_fcm_404_unregistered_deletes_the_device(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await register(api, bob, "fcm", FCM_TOKEN)
    push.fcm.unregistered.add(FCM_TOKEN)
    await say(api, alice, await direct(api, alice, bob), "gone phone")
    assert await eventually(lambda: subscriptions(stores), 0) == 0


@pytest.mark.parametrize("status", [429, 503])
async def test_fcm_429_and_5xx_are_retried_after_retry_after(api, push, stores, status) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await register(api, bob, "fcm", FCM_TOKEN)
    await push.fcm.wait_for(0)
    push.fcm.script = [(status, {"retry-after": "1", "content-type": "application/json"},
                        b'{"error": {"code": %d, "status": "UNAVAILABLE"}}' % status)]
    started = time.monotonic()
    await say(api, alice, await direct(api, alice, bob), "try again")
    [received] = await push.fcm.wait_for(1, within=6)
    assert received.at - started >= 1.0  # Retry-After: 1 beat the 0.3 s backoff
    assert push.fcm.requests >= 2
    assert await eventually(lambda: jobs_left(stores), 0) == 0
    assert await subscriptions(stores) == 1


async def test_apns_503_with_retry_after_is_retried_then_delivered_once(api, push, stores) -> None:
    alice, bob = await make_user(stores), await make_user(stores)
    await register(api, bob, "apns", APNS_TOKEN)
    push.apns.script = [(503, {"retry-after": "1"}, b'{"reason": "ServiceUnavailable"}')]
    await say(api, alice, await direct(api, alice, bob), "try again")
    assert len(await push.apns.wait_for(1, within=6)) == 1
    await asyncio.sleep(QUIET)
    assert len(push.apns.received) == 1


async def test_the_typed_client_subscribes_updates_and_registers_devices(push_server_process, push, stores) -> None:
    bob = await make_user(stores)
    agent = push.webpush.new_subscription()
    async with Nubo.with_token(push_server_process.url, bob.token) as client:
        sub = await client.push_subscribe(agent.endpoint, agent.p256dh, b64url(agent.auth), alerts={"like": False})
        assert sub.alerts["like"] is False and sub.policy == "all" and len(sub.server_key) == 87
        assert (await client.update_push_subscription(policy="follower")).policy == "follower"
        assert (await client.push_subscription()).id == sub.id
        device = await client.register_push_device("fcm", FCM_TOKEN, alerts={"follow": False})
        assert device.platform == "fcm" and device.alerts["follow"] is False
        assert await subscriptions(stores) == 2
        await client.unregister_push_device("fcm", FCM_TOKEN)
        await client.push_unsubscribe()
    assert await subscriptions(stores) == 0
