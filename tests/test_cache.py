"""The read-through cache: hits, invalidation across instances, no stale refill, Redis down."""

from __future__ import annotations

import dataclasses
import time

import httpx
from redis.asyncio import Redis

from nubo_backend.jsonutil import dumps, loads
from nubo_backend.stores import Stores
from nubo_backend.stores.cache import (
    get_many_or_load,
    get_or_load,
    invalidate,
    load_members,
    read_view,
)
from tests.factories import make_user
from tests.support import PrivateRedis


async def test_value_is_loaded_once_then_served_from_redis(stores: Stores):
    calls = []

    async def load():
        calls.append(1)
        return {"n": len(calls)}

    key = stores.keys("test", "once")
    assert loads(await get_or_load(stores, key, load)) == {"n": 1}
    assert loads(await get_or_load(stores, key, load)) == {"n": 1}
    assert len(calls) == 1
    await invalidate(stores, key)
    assert loads(await get_or_load(stores, key, load)) == {"n": 2}


async def test_absent_values_are_not_cached(stores: Stores):
    calls = []

    async def load():
        calls.append(1)

    key = stores.keys("test", "absent")
    assert await get_or_load(stores, key, load) is None
    assert await get_or_load(stores, key, load) is None
    assert len(calls) == 2


async def test_reader_that_loaded_before_a_write_does_not_refill_the_old_value(stores: Stores):
    key = stores.keys("test", "race")

    async def slow_load_overtaken_by_a_write():
        value = {"body": "old"}  # read from PostgreSQL before the write commits...
        await invalidate(stores, key)  # ...and the writer invalidates after its commit
        return value

    assert loads(await get_or_load(stores, key, slow_load_overtaken_by_a_write)) == {"body": "old"}
    assert await stores.redis.get(key) is None  # the old value was not put back

    async def fresh():
        return {"body": "new"}

    assert loads(await get_or_load(stores, key, fresh)) == {"body": "new"}
    assert await stores.redis.get(key) is not None


async def test_invalidating_keys_nobody_read_leaves_nothing_behind(stores: Stores):
    # A post's walk drops every follower's feed, nearly none of them cached: no counter per key.
    keys = [stores.keys("test", "never-read", str(n)) for n in range(3000)]
    await invalidate(stores, *keys)
    assert await stores.redis.exists(*keys, *(k + "#gen" for k in keys)) == 0


async def test_many_values_are_read_in_one_go_and_only_missing_ones_loaded(stores: Stores):
    loaded = []

    async def load(ids):
        loaded.append(list(ids))
        return {i: {"id": i} for i in ids if i != 3}

    def key_of(i):
        return stores.keys("test", "many", i)

    first = await get_many_or_load(stores, [1, 2, 3], key_of, load)
    assert first == [dumps({"id": 1}), dumps({"id": 2}), None]
    again = await get_many_or_load(stores, [2, 1, 4], key_of, load)
    assert again == [dumps({"id": 2}), dumps({"id": 1}), dumps({"id": 4})]
    assert loaded == [[1, 2, 3], [4]]


async def test_view_reads_list_entries_and_membership_in_one_go(stores: Stores):
    prefix, list_key, set_key = stores.keys("test", "e", ""), stores.keys("test", "list"), stores.keys("test", "set")
    await stores.redis.set(list_key, dumps([30, 20, 10]))
    await stores.redis.set(prefix + "30", b'{"id":30}')
    await stores.redis.set(prefix + "10", b'{"id":10}')

    view = await read_view(stores, prefix, list_key=list_key, take=3, read=2, set_keys=[set_key])
    assert (view.ids, view.entries, view.members) == ([30, 20, 10], [b'{"id":30}', None], [None])

    async def load():
        return [20, 99]

    assert await load_members(stores, set_key, load) == {"20", "99"}
    view = await read_view(stores, prefix, ids=[10, 20], set_keys=[set_key])
    assert (view.ids, view.members) == ([10, 20], [[False, True]])
    missing = await read_view(stores, prefix, list_key=stores.keys("test", "nolist"), take=3, read=3)
    assert missing.ids is None


async def test_fully_cached_view_comes_back_joined_with_each_entry_closed_by_its_membership(stores: Stores):
    prefix, list_key, set_key = stores.keys("test", "j", ""), stores.keys("test", "jlist"), stores.keys("test", "jset")
    closings = (b',"in":true}', b',"in":false}')
    await stores.redis.set(list_key, dumps([30, 20, 10]))
    await stores.redis.set(prefix + "30", b'{"id":30}')

    def view(read: int, set_key: str | None = set_key):
        sets = [set_key] if set_key else []
        return read_view(stores, prefix, list_key=list_key, take=3, read=read, set_keys=sets,
                         closings=closings if set_key else closings[1:])

    partly = await view(2)  # entry 20 is missing: the caller must load it
    assert (partly.joined, partly.ids, partly.entries) == (None, [30, 20, 10], [b'{"id":30}', None])
    await stores.redis.set(prefix + "20", b'{"id":20}')
    assert (await view(2)).joined is None  # the viewer's set is not cached yet

    async def load():
        return [20]

    await load_members(stores, set_key, load)
    joined = await view(2)
    assert loads(joined.joined) == [{"id": 30, "in": False}, {"id": 20, "in": True}]
    assert (joined.taken, joined.last_id) == (3, 20)
    anonymous = await view(1, set_key=None)
    assert (anonymous.joined, anonymous.taken, anonymous.last_id) == (b'[{"id":30,"in":false}]', 3, 30)
    await stores.redis.set(list_key, dumps([]))
    assert (await view(2)).joined == b"[]"


async def test_view_closes_each_entry_by_its_membership_of_several_sets(stores: Stores):
    prefix, list_key = stores.keys("test", "m", ""), stores.keys("test", "mlist")
    first, second = stores.keys("test", "mfirst"), stores.keys("test", "msecond")
    # Closing i is for an entry absent from the sets whose bits are set in i.
    closings = (b',"a":1,"b":1}', b',"a":0,"b":1}', b',"a":1,"b":0}', b',"a":0,"b":0}')
    await stores.redis.set(list_key, dumps([40, 30, 20, 10]))
    for n in (40, 30, 20, 10):
        await stores.redis.set(prefix + str(n), b'{"id":%d}' % n)

    def view():
        return read_view(stores, prefix, list_key=list_key, take=4, read=4, set_keys=[first, second],
                         closings=closings)

    async def in_first():
        return [40, 30]

    async def in_second():
        return [40, 20]

    await load_members(stores, first, in_first)
    unjoined = await view()  # the second set is not cached: flags per set, the caller loads it
    assert (unjoined.joined, unjoined.members) == (None, [[True, True, False, False], None])
    await load_members(stores, second, in_second)
    assert loads((await view()).joined) == [
        {"id": 40, "a": 1, "b": 1}, {"id": 30, "a": 1, "b": 0}, {"id": 20, "a": 0, "b": 1}, {"id": 10, "a": 0, "b": 0}]


async def test_view_brings_a_whole_set_along_and_joins_only_when_it_is_cached_and_empty(stores: Stores):
    prefix, list_key = stores.keys("test", "w", ""), stores.keys("test", "wlist")
    set_key, whole_key = stores.keys("test", "wliked"), stores.keys("test", "whidden")
    closings = (b',"in":true}', b',"in":false}')
    await stores.redis.set(list_key, dumps([30]))
    await stores.redis.set(prefix + "30", b'{"id":30}')

    async def liked():
        return []

    await load_members(stores, set_key, liked)

    def view():
        return read_view(stores, prefix, list_key=list_key, take=1, read=1, set_keys=[set_key],
                         whole_set_key=whole_key, closings=closings)

    uncached = await view()  # the whole set is not cached: the caller loads it, and rules out
    assert (uncached.joined, uncached.whole_set, uncached.entries) == (None, [], [b'{"id":30}'])

    async def nobody():
        return []

    await load_members(stores, whole_key, nobody)
    empty = await view()  # cached and empty: nothing to rule out, the page comes joined
    assert (loads(empty.joined), empty.whole_set) == ([{"id": 30, "in": False}], [b"0"])

    async def someone():
        return [7]

    await invalidate(stores, whole_key)
    await load_members(stores, whole_key, someone)
    hiding = await view()  # someone is hidden: the entries come back to be filtered
    assert (hiding.joined, sorted(hiding.whole_set), hiding.ids) == (None, [b"0", b"7"], [30])
    missing_list = await read_view(stores, prefix, list_key=stores.keys("test", "wnolist"), take=1, read=1,
                                   whole_set_key=whole_key)
    assert (missing_list.ids, sorted(missing_list.whole_set)) == (None, [b"0", b"7"])


async def test_set_loaded_before_a_write_is_not_cached(stores: Stores):
    set_key = stores.keys("test", "members")

    async def load_then_write_races():
        snapshot = [1]  # read from PostgreSQL, then a like of post 2 commits and invalidates
        await invalidate(stores, set_key)
        return snapshot

    await load_members(stores, set_key, load_then_write_races)
    assert not await stores.redis.exists(set_key)

    async def load():
        return [1, 2]

    await load_members(stores, set_key, load)
    assert await stores.redis.smembers(set_key) == {b"0", b"1", b"2"}


async def test_edit_and_delete_are_seen_at_once_by_another_instance(
    api: httpx.AsyncClient, stores: Stores, start_server
):
    alice, bob = await make_user(stores), await make_user(stores)
    other = start_server()
    post = (await api.post("/posts", json={"body": "v1"}, headers=alice.headers)).json()
    async with httpx.AsyncClient(base_url=other.url, timeout=10) as api2:
        for client in (api, api2):  # both instances warm the shared cache
            assert (await client.get(f"/posts/{post['id']}")).json()["body"] == "v1"
            await client.get("/posts")
            await client.get(f"/users/{alice.id}")
        await api.patch(f"/posts/{post['id']}", json={"body": "v2"}, headers=alice.headers)
        assert (await api2.get(f"/posts/{post['id']}")).json()["body"] == "v2"
        assert (await api2.get("/posts")).json()["items"][0]["body"] == "v2"

        await api.put(f"/posts/{post['id']}/like", headers=bob.headers)
        seen = (await api2.get(f"/posts/{post['id']}", headers=bob.headers)).json()
        assert (seen["like_count"], seen["liked_by_me"]) == (1, True)
        assert (await api2.get("/posts", headers=bob.headers)).json()["items"][0]["liked_by_me"] is True
        front = (await api2.get("/posts")).json()["items"][0]  # the signed-out front page
        assert (front["like_count"], front["liked_by_me"]) == (1, False)

        await api.post(f"/posts/{post['id']}/comments", json={"body": "c"}, headers=bob.headers)
        assert (await api2.get("/posts")).json()["items"][0]["comment_count"] == 1

        await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
        assert (await api2.get(f"/users/{alice.id}")).json()["followers_count"] == 1

        await api.delete(f"/posts/{post['id']}", headers=alice.headers)
        assert (await api2.get(f"/posts/{post['id']}")).status_code == 404
        assert (await api2.get("/posts")).json()["items"] == []
        assert (await api2.get(f"/users/{alice.id}")).json()["posts_count"] == 0


async def test_reads_and_writes_survive_redis_going_down(stores: Stores, start_server):
    redis = PrivateRedis().start()
    client = Redis.from_url(redis.url)
    try:
        private = dataclasses.replace(stores, redis=client)
        alice, bob = await make_user(private), await make_user(private)
        server = start_server({"NUBO_REDIS_URL": redis.url})
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            post = (await api.post("/posts", json={"body": "before"}, headers=alice.headers)).json()
            await api.post(f"/users/{alice.id}/follow", headers=bob.headers)
            for path in [f"/posts/{post['id']}", "/posts", f"/users/{alice.id}"]:
                assert (await api.get(path)).status_code == 200
            assert await client.exists(private.keys("post", post["id"]))  # the cache was warm

            redis.stop()
            started = time.monotonic()
            assert (await api.get(f"/posts/{post['id']}")).json()["body"] == "before"
            assert [p["id"] for p in (await api.get("/posts")).json()["items"]] == [post["id"]]
            assert (await api.get(f"/users/{alice.id}")).json()["followers_count"] == 1
            feed = await api.get("/feed", headers=bob.headers)
            assert [p["id"] for p in feed.json()["items"]] == [post["id"]]

            created = await api.post("/posts", json={"body": "during"}, headers=alice.headers)
            assert created.status_code == 201
            edited = await api.patch(f"/posts/{post['id']}", json={"body": "edited"}, headers=alice.headers)
            assert edited.status_code == 200
            liked = await api.put(f"/posts/{post['id']}/like", headers=bob.headers)
            assert (liked.status_code, liked.json()["like_count"]) == (200, 1)
            comment = await api.post(f"/posts/{post['id']}/comments", json={"body": "c"}, headers=bob.headers)
            assert comment.status_code == 201
            assert (await api.get(f"/posts/{post['id']}")).json()["body"] == "edited"
            assert len((await api.get("/posts")).json()["items"]) == 2
            assert time.monotonic() - started < 10  # degraded, not hanging
    finally:
        await client.aclose()
        redis.stop()
