"""Clients that behave as a good app does when things fail, and the tally of what they saw.

`Device` holds a WebSocket, resumes with its last event id after every disconnect (on the
other instance when one is gone), logs in again when its session is refused. `send_messages`
posts direct messages at a fixed rate, each retried with its client_id until acknowledged.
The tally compares what was acknowledged with what each device received.
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
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.factories import PASSWORD, TestUser

SEND_DEADLINE = 60.0  # seconds one message may take to be acknowledged, retries included


async def log_in(urls: list[str], username: str) -> str:
    """A fresh access token, from whichever instance answers."""
    for _ in range(100):
        for url in urls:
            try:
                async with httpx.AsyncClient(base_url=url, timeout=5) as api:
                    answer = await api.post("/login", json={"username": username, "password": PASSWORD})
                if answer.status_code == 200:
                    return answer.json()["access_token"]
            except httpx.HTTPError:
                pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{username} could not log in again")


@dataclass
class Device:
    name: str
    user: TestUser
    urls: list[str]  # ws:// of each instance, the first one preferred
    token: str = ""
    last_event_id: int | None = None
    arrivals: dict[int, float] = field(default_factory=dict)  # message id -> when it arrived
    delivered: Counter[int] = field(default_factory=Counter)
    out_of_order: int = 0
    resyncs: int = 0
    reconnects: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.token = self.user.token

    async def run(self) -> None:
        instance = 0
        while True:
            url = self.urls[instance % len(self.urls)]
            query = f"?last_event_id={self.last_event_id}" if self.last_event_id is not None else ""
            try:
                async with connect(url + query, open_timeout=3, close_timeout=1,
                                   additional_headers={"Authorization": f"Bearer {self.token}"}) as ws:
                    async for raw in ws:
                        self._receive(json.loads(raw) if raw.startswith("{") else None)
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code in (1008, 4001):
                    self.token = await log_in([u.replace("ws://", "http://").removesuffix("/ws") for u in self.urls],
                                              self.user.username)
                else:
                    instance += 1
            except InvalidStatus as exc:
                if exc.response.status_code == 401:
                    self.token = await log_in([u.replace("ws://", "http://").removesuffix("/ws") for u in self.urls],
                                              self.user.username)
                instance += 1
            except (OSError, TimeoutError):
                instance += 1
            self.reconnects += 1
            await asyncio.sleep(0.2)

    def _receive(self, frame: Any) -> None:
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == "ready":
            if self.last_event_id is None:
                self.last_event_id = frame["last_event_id"] or 0
            self.ready.set()
        elif kind == "resync_required":
            self.resyncs += 1
            self.last_event_id = frame["last_event_id"]
        elif frame.get("id") is not None:
            if self.last_event_id is not None and frame["id"] <= self.last_event_id:
                self.out_of_order += 1  # a duplicate, or an id going backwards
            self.last_event_id = frame["id"]
            if kind == "message.created":
                message_id = frame["data"]["id"]
                self.delivered[message_id] += 1
                self.arrivals.setdefault(message_id, time.monotonic())


@dataclass
class Sent:
    acked: dict[str, int] = field(default_factory=dict)  # client_id -> message id
    first_try: dict[int, float] = field(default_factory=dict)  # message id -> when its first POST began
    duplicates: int = 0  # acks that said "stored before" (a retry of a send whose answer was lost)
    attempts: int = 0
    failed: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)


async def send_messages(
    urls: list[str], sender: TestUser, conversation_id: int, count: int, rate: float, prefix: str = "c"
) -> Sent:
    """POST `count` messages at `rate` per second, each retried (same client_id) until acked."""
    sent = Sent()
    token = sender.token

    async def send_one(n: int) -> None:
        nonlocal token
        client_id = f"{prefix}{n}"
        began = time.monotonic()
        deadline = began + SEND_DEADLINE
        instance = 0
        while time.monotonic() < deadline:
            sent.attempts += 1
            try:
                async with httpx.AsyncClient(base_url=urls[instance % len(urls)], timeout=5) as api:
                    answer = await api.post(
                        f"/conversations/{conversation_id}/messages",
                        json={"body": f"message {n}", "client_id": client_id},
                        headers={"Authorization": f"Bearer {token}"},
                    )
            except httpx.HTTPError:
                instance += 1  # that instance is gone: the other one
                await asyncio.sleep(0.2)
                continue
            sent.statuses[answer.status_code] += 1
            if answer.status_code in (200, 201):
                sent.acked[client_id] = answer.json()["id"]
                sent.first_try[answer.json()["id"]] = began
                sent.duplicates += answer.status_code == 200
                return
            if answer.status_code == 401:
                token = await log_in(urls, sender.username)
            await asyncio.sleep(min(float(answer.headers.get("Retry-After", "0.2")), 1.0))
        sent.failed.append(client_id)

    tasks = []
    for n in range(count):
        tasks.append(asyncio.create_task(send_one(n)))
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks)
    return sent


async def wait_delivered(devices: list[Device], message_ids: set[int], within: float = 40.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(message_ids <= set(d.delivered) for d in devices):
            return
        await asyncio.sleep(0.1)


def tally(fault: str, sent: Sent, devices: list[Device], fault_ended: float) -> dict[str, Any]:
    """Per device: acked, delivered, lost, duplicated; the longest a message took from its
    first POST to a device, and when the last one arrived after the fault ended. Printed, and
    appended to $NUBO_FAULTS_REPORT when set."""
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
        report["devices"][device.name] = {
            "delivered": sum(1 for m in acked if m in got),
            "lost": len(acked - set(got)),
            "duplicated": sum(c - 1 for c in got.values() if c > 1),
            "out_of_order": device.out_of_order,
            "resyncs": device.resyncs,
            "reconnects": device.reconnects,
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
        assert (device["lost"], device["duplicated"], device["out_of_order"], device["resyncs"]) == (0, 0, 0, 0), (
            name, report)
