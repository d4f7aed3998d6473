"""The cluster adapter's rules: key hash tags, shard channels, transactions across slots."""

from __future__ import annotations

from redis.crc import key_slot

from nubo_backend.stores.redis import Keys, keys_for, open_client
from nubo_backend.stores.redis_cluster import SHARED_TAG, ClusterKeys, is_shard_channel
from tests.cluster.cluster_support import PrivateRedisCluster


def test_one_redis_keeps_its_key_names() -> None:
    keys = keys_for("redis://127.0.0.1:6379/0", "ns")
    assert type(keys) is Keys
    names = (keys("sess", "abc"), keys("post", 5), keys.broadcast_channel)
    assert names == ("ns:sess:abc", "ns:post:5", "ns:nubo-websocket")


def test_a_sessions_keys_share_a_slot_and_users_spread() -> None:
    keys = keys_for("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", "ns")
    assert isinstance(keys, ClusterKeys)
    assert key_slot(keys("sess", "abc").encode()) == key_slot(keys("sess_rotated", "abc").encode())
    assert len({key_slot(keys("user", uid).encode()) for uid in range(100)}) > 90


def test_cache_keys_share_the_slot_of_the_empty_key_the_cache_scripts_pass_for_none() -> None:
    keys = ClusterKeys("ns")
    for key in (keys("post", 5), keys("post", "") + "77", keys("feed", 3) + "#gen", keys("posts", "recent")):
        assert key_slot(key.encode()) == key_slot(b"") == 0
    assert SHARED_TAG in keys("liked", 9)


def test_only_tagged_channels_are_shard_channels() -> None:
    keys = ClusterKeys("")
    assert keys.broadcast_channel == "nubo-websocket" and not is_shard_channel(keys.broadcast_channel)
    assert is_shard_channel(keys("user", 4)) and is_shard_channel(keys.revocation_channel)


async def test_a_transaction_across_slots_runs_per_slot_and_answers_in_order(
    redis_cluster: PrivateRedisCluster,
) -> None:
    client, keys = open_client(redis_cluster.url), ClusterKeys("t")
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(keys("sess", "s1"), "uid", 1)
            pipe.sadd(keys("user_sessions", 1), "s1")
            pipe.expire(keys("sess", "s1"), 60)
            pipe.sismember(keys("user_sessions", 1), "s1")
            assert await pipe.execute() == [1, 1, True, 1]
    finally:
        await client.aclose()
