"""Clients that behave as a good app does when things fail, and the tally of what they saw.

Both sides are the project's own client (`nubo_backend.client`). A `Device` is one
`Nubo.events()` stream: it reconnects and resumes by itself (to the other instance when one
is gone, `urls` in the device's order of preference); the device logs in again when its
session is refused. `send_messages` posts direct messages at a fixed rate with
`post_message`, each retried with its client_id until acknowledged.

The client drops events it already has, which would hide a server's duplicate from a count
of what it yields; so the tally reads what it *received* from `realtime.stats` (duplicates,
ids out of order or skipped, reconnections) beside what reached the device, message by message.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from nubo_backend.client import (
    MessageCreated,
    Nubo,
    NuboError,
    ResyncRequired,
    ServiceUnavailable,
    SessionRevoked,
    Unauthorized,
)
from tests.factories import PASSWORD, TestUser

SEND_DEADLINE = 60.0  # seconds one message may take to be acknowledged, retries included
LOGIN_TRIES = 100  # 0.2 s apart: a login waits at most ~20 s for the stores to answer


async def log_in(urls: list[str], username: str, answer_within: float = 5, **kwargs: Any) -> Nubo:
    """A client logged in on whichever instance answers (the first of `urls` preferred)."""
    for _ in range(LOGIN_TRIES):
        try:
            return await Nubo.login(urls, username, PASSWORD, timeout=answer_within, **kwargs)
        except (NuboError, httpx.HTTPError):
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{username} could not log in")


async def log_in_again(client: Nubo) -> None:
    for _ in range(LOGIN_TRIES):
        try:
            return await client.log_in_again(PASSWORD)
        except (NuboError, httpx.HTTPError):
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{client.user.username if client.user else '?'} could not log in again")


@dataclass
class Device:
    name: str
    user: TestUser
    urls: list[str]  # http:// of each instance, the first one preferred
    client: Nubo | None = None
    arrivals: dict[int, float] = field(default_factory=dict)  # message id -> when it arrived
    delivered: Counter[int] = field(default_factory=Counter)  # message id -> times events() yielded it
    logins: int = 0  # after the first: sessions refused, logged in again
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        self.client = await log_in(self.urls, self.user.username)
        try:
            await self.client.realtime.wait_connected()
            self.ready.set()
            while True:
                try:
                    async for event in self.client.events():
                        if isinstance(event, MessageCreated):
                            message_id = event.message.id
                            self.delivered[message_id] += 1
                            self.arrivals.setdefault(message_id, time.monotonic())
                except SessionRevoked:
                    self.logins += 1
                    await log_in_again(self.client)
                except ResyncRequired:
                    pass  # counted in realtime.stats.resyncs; the stream goes on
        finally:
            await self.client.aclose()

    @property
    def reconnects(self) -> int:
        return self.client.realtime.stats.reconnects if self.client else 0


@dataclass
class Sent:
    acked: dict[str, int] = field(default_factory=dict)  # client_id -> message id
    first_try: dict[int, float] = field(default_factory=dict)  # message id -> when its first POST began
    duplicates: int = 0  # acks that said "stored before" (a retry of a send whose answer was lost)
    attempts: int = 0  # POSTs made: answered, or that got no answer
    failed: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # of the POSTs of messages


async def send_messages(
    urls: list[str], sender: TestUser, conversation_id: int, count: int, rate: float, prefix: str = "c",
    answer_within: float = 5,
) -> Sent:
    """POST `count` messages at `rate` per second, each retried (same client_id) until acked;
    each POST given up after `answer_within` seconds without an answer."""
    sent = Sent()
    posts = f"/conversations/{conversation_id}/messages"

    def answered(method: str, path: str, status: int) -> None:
        if method == "POST" and path == posts:  # not the client's own refreshes and logins
            sent.attempts += 1
            sent.statuses[status] += 1
            sent.duplicates += status == 200

    client = await log_in(urls, sender.username, answer_within=answer_within, on_response=answered)
    relogin = asyncio.Lock()

    async def session_refused(token: str) -> None:
        async with relogin:  # one new session for every send that was refused with the old one
            if client.tokens.access_token == token:
                await log_in_again(client)

    async def send_one(n: int) -> None:
        client_id = f"{prefix}{n}"
        began = time.monotonic()
        deadline = began + SEND_DEADLINE
        while time.monotonic() < deadline:
            token = client.tokens.access_token
            try:
                message = await client.post_message(conversation_id, f"message {n}", client_id=client_id)
            except httpx.HTTPError:  # no answer: the client goes on with the next instance
                sent.attempts += 1
                await asyncio.sleep(0.2)
                continue
            except Unauthorized:
                await session_refused(token)
                continue
            except ServiceUnavailable as exc:
                await asyncio.sleep(min(exc.retry_after or 0.2, 1.0))
                continue
            except NuboError:
                await asyncio.sleep(0.2)
                continue
            sent.acked[client_id] = message.id
            sent.first_try[message.id] = began
            return
        sent.failed.append(client_id)

    try:
        tasks = []
        for n in range(count):
            tasks.append(asyncio.create_task(send_one(n)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    finally:
        await client.aclose()
    return sent


async def wait_delivered(devices: list[Device], message_ids: set[int], within: float = 40.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(message_ids <= set(d.delivered) for d in devices):
            return
        await asyncio.sleep(0.1)


def tally(fault: str, sent: Sent, devices: list[Device], fault_ended: float) -> dict[str, Any]:
    """Per device: acked, delivered, lost, duplicated (what events() yielded twice, and what
    the client received twice and dropped), ids out of order or skipped; the longest a message
    took from its first POST to a device, and when the last one arrived after the fault
    ended. Printed, and appended to $NUBO_FAULTS_REPORT when set."""
    acked = set(sent.acked.values())
    report: dict[str, Any] = {
        "fault": fault, "sent": len(sent.acked) + len(sent.failed), "acked": len(acked),
        "send_attempts": sent.attempts, "retried_duplicates": sent.duplicates,
        "statuses": dict(sent.statuses), "devices": {},
    }
    last_arrival = worst = 0.0
    for device in devices:
        worst = max([worst, *(device.arrivals[m] - sent.first_try[m] for m in acked if m in device.arrivals)])
        got = device.delivered
        last_arrival = max([last_arrival, *(device.arrivals[m] for m in acked if m in device.arrivals)])
        stats = device.client.realtime.stats if device.client else None
        assert stats is not None, f"{device.name} never logged in"
        report["devices"][device.name] = {
            "delivered": sum(1 for m in acked if m in got),
            "lost": len(acked - set(got)),
            "duplicated": sum(c - 1 for c in got.values() if c > 1),
            "events_received": stats.events,
            "duplicates_received": stats.duplicates,
            "out_of_order": stats.out_of_order,
            "gaps": stats.gaps,
            "resyncs": stats.resyncs,
            "reconnects": stats.reconnects,
            "resumes": stats.resumes,
            "logins_again": device.logins,
            "frames": stats.frames,
        }
    report["worst_delay_s"] = round(worst, 2)
    report["last_after_fault_s"] = round(max(last_arrival - fault_ended, 0.0), 2)
    print("FAULTS", json.dumps(report))
    if path := os.environ.get("NUBO_FAULTS_REPORT"):
        with open(path, "a") as out:
            out.write(json.dumps(report) + "\n")
    return report


def assert_exactly_once(report: dict[str, Any]) -> None:
    assert report["acked"] == report["sent"], report
    for name, device in report["devices"].items():
        seen = (device["lost"], device["duplicated"], device["duplicates_received"], device["out_of_order"],
                device["gaps"], device["resyncs"])
        assert seen == (0, 0, 0, 0, 0, 0), (name, report)
