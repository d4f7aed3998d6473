"""A lean Redis client for the hot cached reads: `GET` and `EVALSHA` only.

redis-py costs about 190 µs of CPU per command on the development machine (connection pool,
retry wrapper, timeouts, per-call argument checks), as much as the rest of a `/ping` request;
this client sends each command on one shared, pipelined connection and parses replies with
hiredis, in about 50 µs (docs/benchmarks.md). Everything else (writes, pub/sub, sessions)
stays on redis-py.

Replies are matched to callers in order (Redis answers in order on a connection). A call
that gets no answer within `timeout` closes the connection, failing every call waiting on it,
and the next call reconnects; failures raise redis-py's exceptions, so callers handle Redis
being down exactly as they do for redis-py.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def _encode(*args: Any) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif not isinstance(arg, bytes):
            arg = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiting.popleft()
            if not waiter.done():  # a caller that timed out has gone
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # (if close() has not said so already)
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(RedisConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        waiter = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        assert self.transport is not None
        self.transport.write(command)
        return waiter

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True  # at once: the next call must not queue on a closing transport
            self.transport.close()


class FastReads:
    """`get` and `evalsha`, with redis-py's signatures, results and exceptions."""

    def __init__(self, host: str, port: int, *, db: int = 0, username: str | None = None,
                 password: str | None = None, timeout: float = 5.0, connect_timeout: float = 2.0) -> None:
        self.host, self.port, self.db = host, port, db
        self.username, self.password = username, password
        self.timeout, self.connect_timeout = timeout, connect_timeout
        self._connection: _Connection | None = None
        self._opening: asyncio.Task[_Connection] | None = None

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> FastReads | None:
        """None for what this client does not speak (TLS, unix sockets): use redis-py then."""
        if not url.startswith("redis://"):
            return None
        options = parse_url(url)
        return cls(options.get("host", "localhost"), int(options.get("port", 6379)), db=int(options.get("db", 0)),
                   username=options.get("username"), password=options.get("password"), **kwargs)

    async def get(self, key: str) -> bytes | None:
        return await self._call(_encode("GET", key))

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        return await self._call(_encode("EVALSHA", sha, numkeys, *keys_and_args))

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def _call(self, command: bytes) -> Any:
        connection = self._connection
        if connection is None or connection.closed:
            connection = await self._connect()
        try:
            async with asyncio.timeout(self.timeout):
                reply = await connection.send(command)
        except TimeoutError:
            connection.close()  # a stalled server: fail everyone waiting, reconnect next time
            raise RedisTimeoutError("Redis did not answer in time") from None
        if isinstance(reply, hiredis.ReplyError):
            message = str(reply)
            raise (NoScriptError if message.startswith("NOSCRIPT") else ResponseError)(message)
        return reply

    async def _connect(self) -> _Connection:
        # One attempt at a time, shared by every caller that needs it: with Redis unreachable,
        # a burst of reads fails together after one connect timeout, not one after another.
        if self._opening is None:
            self._opening = asyncio.get_running_loop().create_task(self._open())
            self._opening.add_done_callback(self._opened)
        return await asyncio.shield(self._opening)

    def _opened(self, attempt: asyncio.Task[_Connection]) -> None:
        self._opening = None
        if not attempt.cancelled() and attempt.exception() is None:
            self._connection = attempt.result()

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(_Connection, self.host, self.port)
                for setup in self._setup_commands():
                    reply = await connection.send(setup)
                    if isinstance(reply, hiredis.ReplyError):
                        connection.close()
                        raise RedisConnectionError(f"Redis refused the connection set-up: {reply}")
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"Error connecting to {self.host}:{self.port}: {exc}") from None
        return connection

    def _setup_commands(self) -> list[bytes]:
        commands = []
        if self.password:
            auth = ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            commands.append(_encode(*auth))
        if self.db:
            commands.append(_encode("SELECT", self.db))
        return commands
