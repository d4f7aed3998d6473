"""The push sender: one task per instance taking due jobs from PostgreSQL and pushing them.

Jobs are leased, not held in a transaction: `claim_due_jobs` moves a job's `not_before` past
the request timeout (SKIP LOCKED, so instances never take the same job), and the job is then
deleted (pushed, dropped) or given its retry time. A sender that dies mid-push leaves its
jobs to be taken again when the lease runs out: at most once while it lives, at least once
across a crash.

Before pushing, the job is dropped when its recipient holds a live socket (presence, read
after the grace: the socket took the event), or its session is gone (the subscription goes
with it: logout, revocation, expiry). Retries (429, 5xx, timeouts, connection errors) back off
from `push_retry_base`, doubling, a service's Retry-After winning when longer, for as long as
the TTL lasts.

Nothing here touches live delivery (the relay and the sockets): a slow or hanging push
service holds its own requests, at most `push_origin_concurrency` of them, and the claim
skips its jobs while they are all taken; the other services' pushes go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from nubo_backend.auth.sessions import session_user
from nubo_backend.push.endpoints import GuardedTransport, refused_by_guard
from nubo_backend.push.providers import (
    FAILED,
    FCM,
    GONE,
    RETRY,
    SENT,
    APNs,
    Outcome,
    Provider,
    WebPush,
    read_service_account,
)
from nubo_backend.push.vapid import VapidSigner
from nubo_backend.realtime.presence import is_online
from nubo_backend.settings import Settings
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.push")

CHANNEL = "nubo_push"
POLL_INTERVAL = 1.0
LEASE_MARGIN = 5.0  # seconds a claimed job stays leased beyond the request timeout


def build_providers(settings: Settings) -> tuple[dict[str, Provider], list[httpx.AsyncClient]]:
    """The push services this instance is configured for, and the HTTP clients to close."""
    timeout = httpx.Timeout(settings.push_timeout)
    providers: dict[str, Provider] = {}
    clients: list[httpx.AsyncClient] = []
    if settings.push_vapid_private_key:
        transport = GuardedTransport(settings.push_allow_private_endpoints, settings.push_concurrency)
        client = httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False, follow_redirects=False)
        signer = VapidSigner(settings.push_vapid_private_key, settings.push_vapid_subject)
        providers["webpush"] = WebPush(client, signer, settings.push_allow_private_endpoints)
        clients.append(client)
    if settings.push_apns_key_file:
        # HTTP/2 only, as APNs speaks nothing else (prior knowledge on a cleartext test URL).
        client = httpx.AsyncClient(http1=False, http2=True, timeout=timeout, trust_env=False)
        providers["apns"] = APNs(client, settings.push_apns_url, Path(settings.push_apns_key_file).read_text(),
                                 settings.push_apns_key_id, settings.push_apns_team_id, settings.push_apns_topic)
        clients.append(client)
    if settings.push_fcm_service_account_file:
        client = httpx.AsyncClient(timeout=timeout, trust_env=False)
        account = read_service_account(settings.push_fcm_service_account_file)
        providers["fcm"] = FCM(client, settings.push_fcm_url, account)
        clients.append(client)
    return providers, clients


class PushSender:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.settings = stores.settings
        self.providers, self.clients = build_providers(stores.settings)
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.per_origin: Counter[str] = Counter()
        self.slot_free = asyncio.Event()

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._run(), name="nubo-push-sender"),
            asyncio.create_task(self._listen(), name="nubo-push-listener"),
        ]

    async def stop(self) -> None:
        for task in [*self.tasks, *self.in_flight]:
            task.cancel()  # leased jobs are taken again by the next sender when their lease ends
        await asyncio.gather(*self.tasks, *self.in_flight, return_exceptions=True)
        for client in self.clients:
            await client.aclose()

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            self.wake.clear()
            try:
                if await self._claim():
                    continue  # more may be due
                wait = await self._next_due_in()
                backoff = 0.1
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("push queue unreachable, retrying: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self.wake.wait()

    async def _next_due_in(self) -> float:
        """Seconds to sleep: until the next job of an origin with room falls due, at most the poll."""
        q = self.stores.sql.push
        due_in = await q.next_due_in(self.stores.pg, busy_origins=self._busy(), kinds=list(self.providers))
        return POLL_INTERVAL if due_in is None else min(max(float(due_in), 0.01), POLL_INTERVAL)

    def _busy(self) -> list[str]:
        cap = self.settings.push_origin_concurrency
        return [origin for origin, n in self.per_origin.items() if n >= cap]

    async def _claim(self) -> bool:
        """Take due jobs into free slots, within each origin's room; whether any were taken."""
        free = self.settings.push_concurrency - len(self.in_flight)
        if free <= 0:
            self.slot_free.clear()
            await self.slot_free.wait()
            return True  # (claim again at once)
        cap = self.settings.push_origin_concurrency
        rooms = {origin: max(cap - n, 0) for origin, n in self.per_origin.items()}
        lease = self.settings.push_timeout * 2 + LEASE_MARGIN  # (FCM and APNs may make two requests)
        claimed = self.stores.sql.push.claim_due_jobs(
            self.stores.pg, lim=free, lease=lease, busy_origins=self._busy(), kinds=list(self.providers),
            origins=list(rooms), rooms=list(rooms.values()), room=cap,
        )
        jobs = [dict(j) async for j in claimed]
        for job in jobs:
            self.per_origin[job["origin"]] += 1
            task = asyncio.create_task(self._push(job))
            self.in_flight.add(task)
            task.add_done_callback(self._done)
        return bool(jobs)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.in_flight.discard(task)
        self.slot_free.set()
        self.wake.set()  # an origin may have room again

    # -- one job ---------------------------------------------------------------------------

    async def _push(self, job: dict[str, Any]) -> None:
        try:
            await self._push_once(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one job's bug must not end the sender; its lease expires
            log.exception("push job %s failed", job["id"])
        finally:
            self.per_origin[job["origin"]] -= 1
            if self.per_origin[job["origin"]] <= 0:
                del self.per_origin[job["origin"]]

    async def _push_once(self, job: dict[str, Any]) -> None:
        stores, q = self.stores, self.stores.sql.push
        provider = self.providers.get(job["kind"])
        if provider is None or job["ttl_left"] <= 0:
            await q.delete_job(stores.pg, id=job["id"])  # not configured here, or too late
            return
        if not await self._session_alive(job):
            await q.delete_subscription(stores.pg, id=job["subscription_id"])
            return
        if await self._socket_took_it(job):
            await q.delete_job(stores.pg, id=job["id"])
            return
        outcome = await self._send(provider, job)
        if outcome.status == SENT:
            await q.delete_job(stores.pg, id=job["id"])
        elif outcome.status == GONE:
            log.info("push subscription %s gone (%s): deleted", job["subscription_id"], outcome.detail)
            await q.delete_subscription(stores.pg, id=job["subscription_id"])
        elif outcome.status == RETRY and (delay := self._retry_delay(job, outcome)) is not None:
            await q.retry_job(stores.pg, id=job["id"], delay=delay)
        else:
            if outcome.status == FAILED:
                log.warning("push to subscription %s refused (%s): dropped", job["subscription_id"], outcome.detail)
            await q.delete_job(stores.pg, id=job["id"])

    async def _send(self, provider: Provider, job: Mapping[str, Any]) -> Outcome:
        try:
            return await provider.send(job)
        except httpx.TransportError as exc:
            if refused_by_guard(exc):
                return Outcome(GONE, str(exc))  # the endpoint now points somewhere private
            return Outcome(RETRY, f"{type(exc).__name__}: {exc}")

    def _retry_delay(self, job: Mapping[str, Any], outcome: Outcome) -> float | None:
        """Seconds until the next attempt, or None when the TTL runs out first."""
        s = self.settings
        backoff = min(s.push_retry_base * 2 ** (job["attempts"] - 1), s.push_retry_max)
        delay = max(backoff * random.uniform(0.8, 1.2), outcome.retry_after or 0.0)
        return delay if delay < job["ttl_left"] else None

    async def _session_alive(self, job: Mapping[str, Any]) -> bool:
        try:
            return await session_user(self.stores.redis, self.stores.keys, job["session_id"]) == job["user_id"]
        except Exception as exc:  # noqa: BLE001 - Redis away: push (a revoked session's push is rarer than a lost one)
            log.warning("session of push subscription %s unknown: %s", job["subscription_id"], exc)
            return True

    async def _socket_took_it(self, job: Mapping[str, Any]) -> bool:
        try:
            return await is_online(self.stores, job["user_id"])
        except Exception as exc:  # noqa: BLE001 - Redis away: push rather than stay silent
            log.warning("presence of user %s unknown: %s", job["user_id"], exc)
            return False

    async def _listen(self) -> None:
        """LISTEN for new jobs (reconnecting); the poll covers the gaps."""
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.settings.postgres_dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda *_: self.wake.set())
                self.wake.set()
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                await asyncio.sleep(5.0)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
