"""Fixed-window rate limits in Redis, per IP and per account, failing open.

One counter per (action, scope, identity) that expires with its window. A limiter that
took the API down with Redis would be worse than a short unlimited spell, so a Redis
error is logged and the request goes on.
"""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from nubo_backend.errors import NuboError
from nubo_backend.observability import metrics
from nubo_backend.stores.redis import Keys

log = logging.getLogger("nubo.ratelimit")

# INCR and set the window's expiry in one step; the TTL left is the client's Retry-After.
_HIT = """
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
"""


def rate_limited(retry_after: int) -> NuboError:
    return NuboError(
        429,
        "rate_limited",
        "Too many requests, retry later",
        details={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def _identity(value: str) -> str:
    # Hashed so that e-mail addresses do not sit in Redis key names.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


async def hit(
    redis: Redis, keys: Keys, action: str, identities: dict[str, str], limit: int, window: int
) -> None:
    """Count one attempt against every identity ({"ip": ..., "account": ...}); 429 if any is over.

    Every identity is counted even when one is already over, so that the per-account
    counter keeps counting while an attacker rotates IPs (and the reverse).
    """
    if limit <= 0:
        return
    script = redis.register_script(_HIT)
    retry_after = 0
    try:
        for scope, value in identities.items():
            if not value:
                continue
            count, ttl = await script(keys=[keys("rl", action, scope, _identity(value))], args=[window])
            if int(count) > limit:
                retry_after = max(retry_after, int(ttl), 1)
    except (RedisError, OSError) as exc:
        log.warning("rate limit skipped for %s, Redis unreachable: %s", action, exc)
        return
    if retry_after:
        metrics.rate_limited.labels(action).inc()
        raise rate_limited(retry_after)
