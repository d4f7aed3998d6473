"""Instances whose clocks disagree by two minutes still accept each other's fresh tokens.

Each skewed instance is a real `nubo serve` under libfaketime (Debian's `faketime`, which
scripts/setup.sh installs): its wall clock runs two minutes ahead of, or behind, the machine's,
as a host whose NTP has stopped would. A token minted on the instance ahead carries an `iat`
in the others' future; before the clock leeway, they answered it 401 for the whole skew."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.auth_support import bearer, signup
from tests.e2e.ws_support import open_ws
from tests.factories import TestUser
from tests.support import ServerProcess

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
SKEW_SECONDS = 120

pytestmark = pytest.mark.skipif(
    not LIBFAKETIME.exists(), reason="libfaketime is not installed (Debian's faketime; scripts/setup.sh installs it)")


def clock_off_by(seconds: int) -> dict[str, str]:
    """The environment of a server whose wall clock is `seconds` off (its monotonic clock is not)."""
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": f"{seconds:+d}s", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


async def test_a_fresh_token_works_across_instances_when_one_is_two_minutes_off(server: ServerProcess,
                                                                              start_server) -> None:
    # One instance off at a time, either way. (Two off in opposite directions are four minutes
    # apart, beyond the three minutes of leeway: docs/reliability.md.)
    instances = {
        "ahead": start_server(clock_off_by(+SKEW_SECONDS)),
        "on time": server,
        "behind": start_server(clock_off_by(-SKEW_SECONDS)),
    }
    for minted_on, minting in instances.items():
        async with httpx.AsyncClient(base_url=minting.url, timeout=10) as api:
            body = await signup(api)
        token = body["access_token"]
        issued = jwt.decode(token, options={"verify_signature": False})["iat"]
        expected_skew = {"ahead": SKEW_SECONDS, "on time": 0, "behind": -SKEW_SECONDS}[minted_on]
        assert abs(issued - time.time() - expected_skew) < 30, f"{minted_on}: the instance's clock is not skewed"
        user = TestUser(body["user"]["id"], body["user"]["username"], token, "")
        for used_on, using in instances.items():
            if {minted_on, used_on} == {"ahead", "behind"}:
                continue
            async with httpx.AsyncClient(base_url=using.url, timeout=10) as api:
                me = await api.get("/me", headers=bearer(token))
            assert me.status_code == 200, f"minted {minted_on}, used {used_on}: {me.text}"
            ws = await open_ws(using, user)  # its first frame is `ready`: accepted
            await ws.close()
