"""The lean client of the hot reads answers as redis-py does, in order, and survives Redis."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from nubo_backend.stores import Stores
from nubo_backend.stores.redis_reads import FastReads
from tests.support import PrivateRedis


@pytest.fixture
def redis() -> Iterator[PrivateRedis]:
    """A redis-server of this test's own, which it may stop, freeze or restart."""
    server = PrivateRedis().start()
    yield server
    server.stop()


SCRIPT = "return {KEYS[1], tonumber(ARGV[1]) + 1, false, {ARGV[2]}, redis.call('GET', KEYS[1])}"


async def test_get_and_evalsha_answer_exactly_as_redis_py_does(stores: Stores):
    reads = FastReads.from_url(stores.settings.redis_url)
    key = stores.keys("test", "fast")
    try:
        await stores.redis.set(key, "välue".encode())
        assert await reads.get(key) == await stores.redis.get(key) == "välue".encode()
        assert await reads.get(stores.keys("test", "absent")) is None
        sha = await stores.redis.script_load(SCRIPT)
        args = (sha, 1, key, 41, "x")
        assert await reads.evalsha(*args) == await stores.redis.evalsha(*args) == [
            key.encode(), 42, None, [b"x"], "välue".encode()]
        members = stores.keys("test", "fast-set")
        await stores.redis.sadd(members, "0", "7", "ä")
        assert sorted(await reads.smembers(members)) == sorted(await stores.redis.smembers(members)) == sorted(
            [b"0", b"7", "ä".encode()])
        assert await reads.smembers(stores.keys("test", "absent")) == []
        with pytest.raises(ResponseError):  # not a set
            await reads.smembers(key)
        with pytest.raises(NoScriptError):
            await reads.evalsha("0" * 40, 0)
        with pytest.raises(ResponseError):
            await reads.evalsha(sha, 1, key, "not a number", "x")
        assert await reads.get(key) is not None  # an error reply leaves the connection usable
    finally:
        await reads.aclose()


async def test_arguments_of_every_kind_reach_redis_as_redis_py_sends_them(stores: Stores):
    reads = FastReads.from_url(stores.settings.redis_url)
    key = stores.keys("test", "clé")  # a key that is not ASCII
    try:
        await stores.redis.set(key, b"\xff")
        assert await reads.get(key) == b"\xff"
        sha = await stores.redis.script_load("return {KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]}")
        args = (sha, 1, key, b"\x00\xff}", 7, "ü" * 3, "")
        assert await reads.evalsha(*args) == await stores.redis.evalsha(*args) == [
            key.encode(), b"\x00\xff}", b"7", "üüü".encode(), b""]
    finally:
        await reads.aclose()


async def test_concurrent_calls_share_one_connection_and_each_gets_its_own_reply(redis: PrivateRedis):
    reads = FastReads.from_url(redis.url)
    client = Redis.from_url(redis.url, single_connection_client=True)
    try:
        await client.mset({f"k{n}": str(n) for n in range(300)})
        replies = await asyncio.gather(*(reads.get(f"k{n}") for n in range(300)))
        assert replies == [str(n).encode() for n in range(300)]
        assert len(await client.client_list()) == 2  # this client's one connection, and ours
    finally:
        await reads.aclose()
        await client.aclose()


async def test_the_commands_of_one_loop_iteration_go_out_in_one_write(redis: PrivateRedis):
    reads = FastReads.from_url(redis.url)
    client = Redis.from_url(redis.url, single_connection_client=True)
    try:
        await client.mset({f"k{n}": str(n) for n in range(100)})
        assert await reads.get("k0") == b"0"  # connected
        transport = reads._connection.transport
        writes = []
        real_write = transport.write

        def counting_write(data: bytes) -> None:
            writes.append(data)
            real_write(data)

        transport.write = counting_write
        replies = await asyncio.gather(*(reads.get(f"k{n}") for n in range(100)))
        assert replies == [str(n).encode() for n in range(100)]
        assert len(writes) == 1 and writes[0].count(b"GET") == 100
    finally:
        await reads.aclose()
        await client.aclose()


async def test_redis_down_is_a_redis_error_and_the_next_call_after_a_restart_reconnects(redis: PrivateRedis):
    reads = FastReads.from_url(redis.url, timeout=2)
    client = Redis.from_url(redis.url)
    try:
        await client.set("k", "v")
        assert await reads.get("k") == b"v"
        redis.stop()
        with pytest.raises(RedisError):
            await reads.get("k")
        with pytest.raises(RedisConnectionError):  # refused at once, not hanging
            await asyncio.wait_for(reads.get("k"), 3)
        redis.start()
        await Redis.from_url(redis.url).set("k", "back")
        assert await reads.get("k") == b"back"
    finally:
        await reads.aclose()
        await client.aclose()


async def test_a_stalled_redis_times_out_and_the_connection_is_made_again(redis: PrivateRedis):
    reads = FastReads.from_url(redis.url, timeout=0.5)
    client = Redis.from_url(redis.url)
    try:
        await client.set("k", "v")
        assert await reads.get("k") == b"v"
        os.kill(redis.proc.pid, signal.SIGSTOP)  # our own private server, frozen
        try:
            with pytest.raises(RedisTimeoutError):
                await reads.get("k")
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert await reads.get("k") == b"v"  # a fresh connection: no reply of the old one mixed in
    finally:
        await reads.aclose()
        await client.aclose()


async def test_the_database_number_in_the_url_is_selected(redis: PrivateRedis):
    reads = FastReads.from_url(redis.url.rsplit("/", 1)[0] + "/3")
    client = Redis.from_url(redis.url.rsplit("/", 1)[0] + "/3")
    try:
        await client.set("k", "in db 3")
        assert await reads.get("k") == b"in db 3"
    finally:
        await reads.aclose()
        await client.aclose()


async def test_a_burst_of_reads_against_a_silent_server_fails_together_after_one_attempt():
    accepted = []

    async def never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_answers, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    # db 3: the connection's set-up (SELECT) waits for an answer that never comes.
    reads = FastReads.from_url(f"redis://127.0.0.1:{port}/3", connect_timeout=0.5)
    try:
        started = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(reads.get("k") for _ in range(50)), return_exceptions=True)
        assert all(isinstance(r, RedisConnectionError) for r in results)
        assert asyncio.get_running_loop().time() - started < 2  # one timeout, not fifty in a row
        assert len(accepted) == 1
    finally:
        await reads.aclose()
        for writer in accepted:
            writer.close()
        server.close()


def test_urls_it_does_not_speak_are_left_to_redis_py():
    assert FastReads.from_url("rediss://example.test:6380/0") is None
    assert FastReads.from_url("unix:///tmp/redis.sock") is None
