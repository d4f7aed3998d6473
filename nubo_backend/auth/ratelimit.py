"""Fixed-window rate limits in Redis, per address, account or session, failing open.

One counter per (action, scope, identity) that expires with its window. A limiter that
took the API down with Redis would be worse than a short unlimited spell, so a Redis
error is logged and the request goes on.

Password checks (login, `POST /me/password`, `DELETE /me`) share one budget of failures
(`password_buckets`): per (account, address), per session, and a much higher ceiling per
account that an address which already signed in to that account does not count against,
so that nobody's failures lock the owner out of their own devices (docs/security.md).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisClusterException, RedisError

from nubo_backend.edge.errors import NuboError
from nubo_backend.observability import metrics
from nubo_backend.settings import Settings
from nubo_backend.stores.redis import Keys

log = logging.getLogger("nubo.ratelimit")

# INCR every key and set each window's expiry; answers the longest TTL among the keys whose
# count went over its limit (0: none did): the client's Retry-After.
_HIT = """
local retry = 0
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  local ttl = redis.call('TTL', key)
  if ttl < 0 then
    redis.call('EXPIRE', key, ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  if count > tonumber(ARGV[i + 1]) then retry = math.max(retry, ttl, 1) end
end
return retry
"""

# Give back one attempt on each key that still counts (a success is not a failure).
_REFUND = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


@dataclass(frozen=True)
class Bucket:
    """One counter: what it is keyed by (`scope`, `identity`) and how many a window allows."""

    scope: str
    identity: str
    limit: int


def rate_limited(retry_after: int) -> NuboError:
    return NuboError(
        429,
        "rate_limited",
        "Too many requests, retry later",
        details={"retry_after": retry_after},
        headers={"Retry-After": str(retry_after)},
    )


def address_key(ip: str) -> str:
    """What an address is counted as: itself for IPv4, its /64 for IPv6 (one subscriber's
    line usually gets a whole /64, so counting single IPv6 addresses would count nothing)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _identity(value: str) -> str:
    # Hashed so that e-mail addresses do not sit in Redis key names.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def _key(keys: Keys, action: str, bucket: Bucket) -> str:
    return keys("rl", action, bucket.scope, _identity(bucket.identity))


async def charge(
    redis: Redis, keys: Keys, action: str, buckets: list[Bucket], window: int, *, fail_open: bool = True
) -> None:
    """Count one attempt in every bucket (each atomically); 429 with the longest wait if any is over.

    Every bucket is counted even when one is already over, so that the per-account
    counter keeps counting while an attacker rotates addresses (and the reverse).
    """
    live = [b for b in buckets if b.identity and b.limit > 0]
    if not live:
        return
    script = redis.register_script(_HIT)
    retry_after = 0
    try:
        # One script call per bucket: on a Redis Cluster each counter lives in its own
        # identity's slot, and a script may only touch keys of one slot.
        for bucket in live:
            retry_after = max(retry_after, int(await script(keys=[_key(keys, action, bucket)],
                                                            args=[window, bucket.limit])))
    except (RedisError, RedisClusterException, OSError) as exc:
        if not fail_open:
            raise
        log.warning("rate limit skipped for %s, Redis unreachable: %s", action, exc)
        return
    if retry_after:
        metrics.rate_limited.labels(action).inc()
        raise rate_limited(retry_after)


async def refund(redis: Redis, keys: Keys, action: str, buckets: list[Bucket]) -> None:
    """Give back the attempt `charge` counted, for budgets that count failures only."""
    live = [b for b in buckets if b.identity and b.limit > 0]
    if not live:
        return
    script = redis.register_script(_REFUND)
    try:
        for bucket in live:  # one call per bucket, as charge does
            await script(keys=[_key(keys, action, bucket)])
    except (RedisError, RedisClusterException, OSError) as exc:
        log.warning("rate limit refund skipped for %s, Redis unreachable: %s", action, exc)


async def hit(
    redis: Redis, keys: Keys, action: str, identities: dict[str, str], limit: int, window: int
) -> None:
    """Count one attempt against every identity ({"ip": ..., "account": ...}); 429 if any is over."""
    buckets = [Bucket(scope, address_key(value) if scope == "ip" else value, limit)
               for scope, value in identities.items()]
    await charge(redis, keys, action, buckets, window)


# --- password checks ------------------------------------------------------------------

PASSWORD_ACTION = "password"


@dataclass(frozen=True)
class PasswordAttempt:
    """Who is checking a password, for its budget: the account (`user:<id>`, or
    `unknown:<name>` for a name that is no account), the client address, the session
    (for checks made with a token)."""

    account: str
    address: str
    session: str = ""


def _known_key(keys: Keys, attempt: PasswordAttempt) -> str:
    return keys("rl", "known", _identity(attempt.account), _identity(address_key(attempt.address)))


def password_buckets(settings: Settings, attempt: PasswordAttempt, known_address: bool) -> list[Bucket]:
    address = address_key(attempt.address)
    buckets = [
        Bucket("account_address", f"{attempt.account}|{address}", settings.rate_limit_login),
        Bucket("session", attempt.session, settings.rate_limit_login),
    ]
    if not known_address:
        buckets.append(Bucket("account", attempt.account, settings.rate_limit_login_account))
    return buckets


async def _known(redis: Redis, keys: Keys, attempt: PasswordAttempt) -> bool:
    return bool(await redis.exists(_known_key(keys, attempt)))


async def charge_password_check(
    redis: Redis, keys: Keys, settings: Settings, attempt: PasswordAttempt
) -> list[Bucket]:
    """Count a password check before it is made (so that parallel guesses are counted too);
    429 when this account, from this address or session, is out of failures. Returns the
    buckets charged, for `password_check_passed`."""
    # Without Redis this raises (the caller answers 503 at once): sessions live there, so no
    # login could follow anyway, and an unbudgeted password check would be an oracle.
    buckets = password_buckets(settings, attempt, await _known(redis, keys, attempt))
    await charge(redis, keys, PASSWORD_ACTION, buckets, settings.rate_limit_window, fail_open=False)
    return buckets


async def password_check_passed(
    redis: Redis, keys: Keys, settings: Settings, attempt: PasswordAttempt, buckets: list[Bucket]
) -> None:
    """The password was right: the attempt is given back, and the address is remembered as
    one of the account's own (exempt from the per-account ceiling) for a session's lifetime."""
    await refund(redis, keys, PASSWORD_ACTION, buckets)
    try:
        await redis.set(_known_key(keys, attempt), 1, ex=settings.refresh_token_ttl)
    except (RedisError, OSError) as exc:
        log.warning("known address not recorded, Redis unreachable: %s", exc)
