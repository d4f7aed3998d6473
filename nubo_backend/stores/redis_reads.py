"""A lean Redis client for the hot cached reads: `GET`, `SMEMBERS` and `EVALSHA` only.

redis-py costs about 190 µs of CPU per command on the development machine (connection pool,
retry wrapper, timeouts, per-call argument checks), as much as the rest of a `/ping` request;
this client sends each command on one shared, pipelined connection and parses replies with
hiredis, in about 50 µs (docs/benchmarks.md). Everything else (writes, pub/sub, sessions)
stays on redis-py. (`SMEMBERS` answers a list, where redis-py's answers a set.)

Replies are matched to callers in order (Redis answers in order on a connection). A call
that gets no answer within `timeout` closes the connection, failing every call waiting on it,
and the next call reconnects; failures raise redis-py's exceptions, so callers handle Redis
being down exactly as they do for redis-py.

Per call, the cost is kept to a future and a deque entry: the commands issued in one event
loop iteration go out in one write (one syscall for us, one read for Redis, which shares the
machine's cores), and the timeout is one watchdog timer per connection, due when the oldest
waiting call is, instead of a timer per call (`asyncio.timeout` cost 7 µs of a cached page's
~55, docs/benchmarks.md).
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
    """One command in RESP, packed by hiredis (in C: 1.3 µs for a page's EVALSHA of 11
    arguments, against 3.3 µs for the same loop in Python)."""
    return hiredis.pack_command(args)


class _Connection(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.deadlines: deque[float] = deque()  # loop time by which each waiting call is answered
        self.outgoing: list[bytes] = []  # commands of this loop iteration, written together
        self.watchdog: asyncio.TimerHandle | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiting.popleft()
            self.deadlines.popleft()
            if not waiter.done():  # a caller that was cancelled has gone
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True  # (if close() has not said so already)
        self._fail_waiting(RedisConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        waiter = self.loop.create_future()
        self.waiting.append(waiter)
        self.deadlines.append(self.loop.time() + self.timeout)
        if not self.outgoing:
            self.loop.call_soon(self._write)
        self.outgoing.append(command)
        if self.watchdog is None:
            self.watchdog = self.loop.call_at(self.deadlines[0], self._check_deadline)
        return waiter

    def _write(self) -> None:
        commands, self.outgoing = self.outgoing, []
        if self.transport is not None and not self.closed:  # closed: connection_lost fails their callers
            self.transport.write(commands[0] if len(commands) == 1 else b"".join(commands))

    def _check_deadline(self) -> None:
        self.watchdog = None
        if not self.waiting or self.closed:
            return
        if self.deadlines[0] > self.loop.time():  # answered in time so far: watch the next oldest
            self.watchdog = self.loop.call_at(self.deadlines[0], self._check_deadline)
            return
        # A stalled server: fail everyone waiting, and reconnect on the next call (no reply of
        # this connection's can then be mixed into another's).
        self._fail_waiting(RedisTimeoutError("Redis did not answer in time"))
        self.close()

    def _fail_waiting(self, error: Exception) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            self.deadlines.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def close(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        if self.transport is not None and not self.closed:
            self.closed = True  # at once: the next call must not queue on a closing transport
            self.transport.close()


class FastReads:
    """`get`, `smembers` and `evalsha`, with redis-py's signatures and exceptions, and its
    results (but a list of members for a set)."""

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

    async def smembers(self, key: str) -> list[bytes]:
        return await self._call(_encode("SMEMBERS", key))

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
        reply = await connection.send(command)  # (the connection's watchdog enforces the timeout)
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
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(lambda: _Connection(self.timeout), self.host, self.port)
                for setup in self._setup_commands():
                    reply = await connection.send(setup)
                    if isinstance(reply, hiredis.ReplyError):
                        connection.close()
                        raise RedisConnectionError(f"Redis refused the connection set-up: {reply}")
        except (OSError, TimeoutError) as exc:
            if connection is not None:
                connection.close()
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
