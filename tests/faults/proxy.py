"""A TCP proxy of our own between the instances and a store, for faults that do not announce
themselves: connections that go silent without closing, and traffic that stalls.

It runs its own event loop in a thread, so a test that blocks its own loop (or a synchronous
helper) never stalls the proxy by accident. Three states:

- `forward`: bytes go through both ways.
- `silence()`: every connection open now, and every one accepted until `restore()`, goes
  silent for good: bytes either way are read and dropped, and neither side is closed (what a
  NAT or load balancer that forgot a connection, or a half-dead host, does). The store's side
  stays open too, so a PostgreSQL backend idle in a transaction stays so, holding its locks.
  `restore()` lets new connections through again; the silent ones stay silent.
- `stall()`: every connection holds what it reads until `resume()`, then delivers it in order
  (a congested or paused network path). New connections are accepted and stall too.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from tests.support import free_port

CHUNK = 65536


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    silent: bool = False


class FaultProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.links: set[_Link] = set()
        self.accepted = 0  # connections accepted since start
        self._silencing = False
        self._loop = asyncio.new_event_loop()
        self._flowing: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._orphans: list[asyncio.StreamWriter] = []  # store sides of silent links left by their client
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fault-proxy-{self.port}", daemon=True)

    # -- control, from the test's thread ------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def silence(self) -> None:
        self._call(self._silence())

    def restore(self) -> None:
        self._call(self._restore())

    def stall(self) -> None:
        self._call(self._set_flowing(False))

    def resume(self) -> None:
        self._call(self._set_flowing(True))

    @property
    def open_connections(self) -> int:
        """Client connections open through the proxy now (silent ones included)."""
        return self._call(self._count())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def _call(self, coro):  # noqa: ANN001, ANN202 - a coroutine run on the proxy's loop
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- on the proxy's loop -------------------------------------------------------------------

    async def _listen(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _count(self) -> int:
        return len(self.links)

    async def _silence(self) -> None:
        self._silencing = True
        for link in self.links:
            link.silent = True

    async def _restore(self) -> None:
        self._silencing = False

    async def _set_flowing(self, flowing: bool) -> None:
        assert self._flowing is not None
        self._flowing.set() if flowing else self._flowing.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        link = _Link(writer, silent=self._silencing)
        self.links.add(link)
        try:
            if link.silent:
                await self._drain_forever(reader)
                return
            up_reader, link.upstream = await asyncio.open_connection(*self.target)
            back = asyncio.create_task(self._pump(link, up_reader, writer))
            self._background.add(back)
            back.add_done_callback(self._background.discard)
            await self._pump(link, reader, link.upstream)
            if link.silent:  # the client left a silent connection: the store never hears of it
                self._orphans.append(link.upstream)
            else:
                await back
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.links.discard(link)
            writer.close()

    async def _pump(self, link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Copy source to sink until EOF, then close sink; a silent link drops what it reads
        and closes nothing."""
        assert self._flowing is not None
        while data := await source.read(CHUNK):
            if not self._flowing.is_set():
                await self._flowing.wait()
            if link.silent:
                continue
            sink.write(data)
            await sink.drain()
        if not link.silent:
            sink.close()

    @staticmethod
    async def _drain_forever(reader: asyncio.StreamReader) -> None:
        while await reader.read(CHUNK):
            pass

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.client.close()
            if link.upstream is not None:
                link.upstream.close()
        for upstream in self._orphans:
            upstream.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
