"""The argon2 pool: one party's flood of hashes waits behind itself, not in front of others."""

from __future__ import annotations

import asyncio

from nubo_backend.auth.passwords import Passwords
from nubo_backend.auth.ratelimit import address_key
from nubo_backend.settings import Settings


async def test_one_party_flooding_the_hasher_does_not_delay_another(settings: Settings) -> None:
    passwords = await Passwords.open(settings.replace(argon2_time_cost=2, argon2_memory_cost=8192), workers=1)
    try:
        target = await passwords.hash("secret", who="setup")
        finished: list[str] = []

        async def check(who: str) -> None:
            await passwords.verify(target, "wrong", who=who)
            finished.append(who)

        flood = [asyncio.create_task(check("flooder")) for _ in range(8)]
        await asyncio.sleep(0)  # the flood is queued first
        await check("someone")
        await asyncio.gather(*flood)
    finally:
        passwords.close()
    # First come, first served would put them ninth; taking turns, second.
    assert finished.index("someone") <= 1, finished


def test_an_ipv6_address_is_counted_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("192.0.2.7") == "192.0.2.7"
