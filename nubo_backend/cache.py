"""The read-through cache: values in Redis as orjson, loaded from PostgreSQL on a miss.

Writers call `invalidate` after their transaction commits. A reader that missed may have
read PostgreSQL just before that commit and would then put the old value back; to stop
that, every key has a generation counter (`<key>#gen`): the reader notes it before loading
and stores its value only if it has not moved (one Lua script), and `invalidate` bumps it
before deleting the key. So once a write has returned, no reader can see the older value.

Redis is an accelerator, never a dependency: when it fails, reads go to PostgreSQL and
invalidations are skipped (with Redis away there is nothing to invalidate; entries that
survive a mere network blip expire after `cache_ttl`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from redis.exceptions import RedisError

from nubo_backend.jsonutil import dumps, loads
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.cache")

K = TypeVar("K", bound=Hashable)
REDIS_DOWN = (RedisError, OSError)
GEN_SUFFIX = "#gen"

# KEYS: n value keys then their n generation keys; ARGV: ttl, then n expected generations,
# then n values. A value is stored only if its generation is still the one seen before loading.
_STORE_IF_CURRENT = """
local n = #KEYS / 2
for i = 1, n do
  if (redis.call('GET', KEYS[n + i]) or '') == ARGV[1 + i] then
    redis.call('SET', KEYS[i], ARGV[1 + n + i], 'EX', ARGV[1])
  end
end
return 0
"""


def _down(exc: BaseException) -> None:
    log.warning("cache bypassed, Redis unreachable: %s", exc)


async def get_or_load(stores: Stores, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
    """The value under key, else load() stored for next time. None (absent) is not cached."""
    try:
        raw = await stores.redis.get(key)
    except REDIS_DOWN as exc:
        _down(exc)
        return await load()
    if raw is not None:
        return loads(raw)
    gens = await _generations(stores, [key])
    value = await load()
    if value is not None and gens is not None:
        await _store(stores, [key], gens, [value])
    return value


async def get_many_or_load(
    stores: Stores,
    ids: Sequence[K],
    key_of: Callable[[K], str],
    load: Callable[[list[K]], Awaitable[dict[K, Any]]],
) -> list[Any]:
    """One value per id (None where load has none), with one MGET when all are cached."""
    if not ids:
        return []
    keys = [key_of(i) for i in ids]
    try:
        raws = await stores.redis.mget(keys)
    except REDIS_DOWN as exc:
        _down(exc)
        found = await load(list(ids))
        return [found.get(i) for i in ids]
    values = [None if raw is None else loads(raw) for raw in raws]
    missing = [n for n, raw in enumerate(raws) if raw is None]
    if not missing:
        return values
    missing_keys = [keys[n] for n in missing]
    gens = await _generations(stores, missing_keys)
    found = await load([ids[n] for n in missing])
    stored_keys, stored_gens, stored_values = [], [], []
    for pos, n in enumerate(missing):
        value = found.get(ids[n])
        values[n] = value
        if value is not None and gens is not None:
            stored_keys.append(keys[n])
            stored_gens.append(gens[pos])
            stored_values.append(value)
    if stored_keys:
        await _store(stores, stored_keys, stored_gens, stored_values)
    return values


async def invalidate(stores: Stores, *keys: str) -> None:
    """Drop cached values after the write that changed them has committed; never raises."""
    if not keys:
        return
    gen_ttl = stores.settings.cache_ttl * 2
    try:
        async with stores.redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.incr(key + GEN_SUFFIX)
                pipe.expire(key + GEN_SUFFIX, gen_ttl)
            pipe.delete(*keys)
            await pipe.execute()
    except REDIS_DOWN as exc:
        _down(exc)


async def _generations(stores: Stores, keys: list[str]) -> list[bytes] | None:
    try:
        gens = await stores.redis.mget([k + GEN_SUFFIX for k in keys])
    except REDIS_DOWN as exc:
        _down(exc)
        return None
    return [g or b"" for g in gens]


async def _store(stores: Stores, keys: list[str], gens: list[bytes], values: list[Any]) -> None:
    args = [stores.settings.cache_ttl, *gens, *(dumps(v) for v in values)]
    try:
        await stores.redis.eval(_STORE_IF_CURRENT, len(keys) * 2, *keys,
                                *(k + GEN_SUFFIX for k in keys), *args)
    except REDIS_DOWN as exc:
        _down(exc)
