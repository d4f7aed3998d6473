"""The read-through cache: JSON (orjson) in Redis, loaded from PostgreSQL on a miss.

Values come back as the JSON bytes stored, so a hot read can send them on without decoding
(wrap them in `orjson.Fragment`).

Writers call `invalidate` after their transaction commits. A reader that missed may have
read PostgreSQL just before that commit and would then put the old value back; to stop
that, every key being read has a generation counter (`<key>#gen`): the reader notes it before
loading (creating it at 0) and stores its value only if it has not moved (one Lua script),
and every write bumps it where it exists.
So once a write has returned, no reader can see the older value.

Three shapes are cached: plain values (`get_or_load`), entries read by id
(`get_many_or_load`), and sets of members (`load_members`), which `read_view` combines into
one round trip for a page. All three are dropped the same way (`invalidate`).

Redis is an accelerator, never a dependency: when it fails, reads go to PostgreSQL and
invalidations are skipped (with Redis away there is nothing to invalidate; entries that
survive a mere network blip expire after `cache_ttl`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.exceptions import NoScriptError, RedisError

from nubo_backend.jsonutil import dumps, loads
from nubo_backend.observability import metrics
from nubo_backend.stores import Stores

log = logging.getLogger("nubo.cache")

K = TypeVar("K", bound=Hashable)
REDIS_DOWN = (RedisError, OSError)
GEN_SUFFIX = "#gen"
# Always in a cached set, so that "the set is not cached" differs from "the set is empty".
SET_SENTINEL = "0"

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

# KEYS: the keys to drop; ARGV: generation ttl. Bumps each generation that exists (so a
# reader that loaded before the write cannot store its value), then deletes the values. A key
# without one has no value and no reader under way (a reader creates it, below), and is left
# without: a post's walk drops 100,000 followers' feeds, nearly all of them never cached, and
# creating a counter for each cost Redis five times the CPU (docs/benchmarks.md) and the
# memory of 100,000 keys for twice the cache's lifetime.
_INVALIDATE = """
for i = 1, #KEYS do
  local gen = KEYS[i] .. '""" + GEN_SUFFIX + """'
  if redis.call('EXISTS', gen) == 1 then
    redis.call('INCR', gen)
    redis.call('EXPIRE', gen, ARGV[1])
  end
end
redis.call('DEL', unpack(KEYS))
return 0
"""

# KEYS: generation keys; ARGV: their ttl. Each one's value, created at 0 where missing: a
# reader about to load notes it so, and `_INVALIDATE` finds it and bumps it. Its lifetime
# starts again at each reader's note, so it outlives every load under way by far (one that
# expired mid-load and was made again at 0 would let that load store an old value).
_NOTE_GENERATIONS = """
local gens = {}
for i = 1, #KEYS do
  local gen = redis.call('GET', KEYS[i])
  if gen then
    redis.call('EXPIRE', KEYS[i], ARGV[1])
  else
    gen = '0'
    redis.call('SET', KEYS[i], gen, 'EX', ARGV[1])
  end
  gens[i] = gen
end
return gens
"""

# KEYS: set key, its generation key; ARGV: ttl, expected generation, members...
_STORE_SET_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '') == ARGV[2] then
  redis.call('DEL', KEYS[1])
  redis.call('SADD', KEYS[1], unpack(ARGV, 3))
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 0
"""

# One round trip for a page. KEYS: the id list's key ('' when ids are given), a set of the
# viewer's whose members come back whole ('' for none: the users they must not see), then the
# viewer's sets asked about each id (none or more: liked, reposted...). ARGV: entry key
# prefix, how many ids to take, how many to read, the number of closings (0 for none, else
# 2^sets), the closings, then the ids when no list key is given. Closing number i (from 0)
# is for an entry absent from the sets whose bits are set in i (bit 0: the first set).
# Entry keys are built here from the ids (fine on one Redis; not Redis Cluster). With
# closings, when every entry and every set is cached and the whole set holds nothing but its
# sentinel, returns {'joined', the entries as one JSON array, each with its last byte (`}`)
# replaced by its closing, the number of ids taken, the last id read}; otherwise {list JSON
# or nil, entries, each set's membership (its sentinel's flag first), the whole set's members}.
_VIEW = """
local whole = false
if KEYS[2] ~= '' then whole = redis.call('SMEMBERS', KEYS[2]) end
local closings = tonumber(ARGV[4])
local ids, raw = {}, false
if KEYS[1] ~= '' then
  raw = redis.call('GET', KEYS[1])
  if not raw then return {false, {}, {}, whole} end
  local take = tonumber(ARGV[2])
  for id in string.gmatch(raw, '%d+') do
    if #ids >= take then break end
    ids[#ids + 1] = id
  end
else
  for i = 5 + closings, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local read = math.min(#ids, tonumber(ARGV[3]))
local entries, member, sets_cached = {}, {}, true
if read > 0 then
  local keys = {}
  for i = 1, read do keys[i] = ARGV[1] .. ids[i] end
  entries = redis.call('MGET', unpack(keys))
  for s = 3, #KEYS do
    member[s - 2] = redis.call('SMISMEMBER', KEYS[s], '""" + SET_SENTINEL + """', unpack(ids, 1, read))
    sets_cached = sets_cached and member[s - 2][1] == 1
  end
end
local hides_none = not whole or (#whole == 1 and whole[1] == '""" + SET_SENTINEL + """')
if closings > 0 and hides_none and sets_cached then
  -- One table.concat of every piece: a concatenation per entry would copy each entry once more.
  local parts, n = {'['}, 1
  for i = 1, read do
    local entry = entries[i]
    if not entry then parts = nil break end
    local closing, bit = 5, 1
    for s = 1, #member do
      if member[s][i + 1] ~= 1 then closing = closing + bit end
      bit = bit * 2
    end
    parts[n + 1] = string.sub(entry, 1, -2)
    parts[n + 2] = ARGV[closing]
    parts[n + 3] = ','
    n = n + 3
  end
  if parts then
    parts[read > 0 and n or n + 1] = ']'
    return {'joined', table.concat(parts), #ids, ids[read] or 0}
  end
end
return {raw, entries, member, whole}
"""


def _down(exc: BaseException) -> None:
    log.warning("cache bypassed, Redis unreachable: %s", exc)


async def _script(stores: Stores, script: str, numkeys: int, *args: Any) -> Any:
    """EVALSHA, falling back to EVAL the first time a Redis sees the script."""
    sha = _SHAS[script]
    try:
        return await stores.reads.evalsha(sha, numkeys, *args)
    except NoScriptError:
        return await stores.redis.eval(script, numkeys, *args)


_SHAS = {s: hashlib.sha1(s.encode()).hexdigest()
         for s in (_INVALIDATE, _NOTE_GENERATIONS, _STORE_IF_CURRENT, _STORE_SET_IF_CURRENT, _VIEW)}


async def get_or_load(stores: Stores, key: str, load: Callable[[], Awaitable[Any]]) -> bytes | None:
    """The JSON under key, else load()'s value stored for next time. None (absent) is not cached."""
    try:
        raw = await stores.reads.get(key)
    except REDIS_DOWN as exc:
        _down(exc)
        return _encoded(await load())
    if raw is not None:
        metrics.tally.cache_hits += 1
        return raw
    metrics.tally.cache_misses += 1
    gens = await _generations(stores, [key])
    encoded = _encoded(await load())
    if encoded is not None and gens is not None:
        await _store(stores, [key], gens, [encoded])
    return encoded


def _encoded(value: Any) -> bytes | None:
    return None if value is None else dumps(value)


async def get_many_or_load(
    stores: Stores,
    ids: Sequence[K],
    key_of: Callable[[K], str],
    load: Callable[[list[K]], Awaitable[dict[K, Any]]],
    cached: Sequence[bytes | None] | None = None,
) -> list[bytes | None]:
    """The JSON of each id (None where load has none). `cached`: what an earlier read found."""
    if not ids:
        return []
    if cached is not None and None not in cached:
        metrics.tally.cache_hits += len(cached)
        return list(cached)  # the hot path: nothing to load, no key to build
    keys = [key_of(i) for i in ids]
    if cached is None:
        try:
            cached = await stores.redis.mget(keys)
        except REDIS_DOWN as exc:
            _down(exc)
            found = await load(list(ids))
            return [_encoded(found.get(i)) for i in ids]
    values = list(cached)
    missing = [n for n, raw in enumerate(values) if raw is None]
    metrics.tally.cache_read(len(values) - len(missing), len(missing))
    if not missing:
        return values
    gens = await _generations(stores, [keys[n] for n in missing])
    found = await load([ids[n] for n in missing])
    stored: list[tuple[str, bytes, bytes]] = []
    for pos, n in enumerate(missing):
        values[n] = _encoded(found.get(ids[n]))
        if values[n] is not None and gens is not None:
            stored.append((keys[n], gens[pos], values[n]))
    if stored:
        keys_, gens_, values_ = zip(*stored, strict=True)
        await _store(stores, list(keys_), list(gens_), list(values_))
    return values


# Keys per invalidation script call: Lua's unpack() stops near 8,000 values, and one huge
# call would hold Redis for its whole length.
INVALIDATE_CHUNK = 1000


async def invalidate(stores: Stores, *keys: str) -> None:
    """Drop cached values after the write that changed them has committed; never raises.
    Any number of keys: they go in chunks, pipelined in one round trip."""
    if not keys:
        return
    ttl = stores.settings.cache_ttl * 2
    try:
        if len(keys) <= INVALIDATE_CHUNK:
            await _script(stores, _INVALIDATE, len(keys), *keys, ttl)
            return
        await _script(stores, _INVALIDATE, 1, keys[0], ttl)  # loads the script if this Redis lacks it
        async with stores.redis.pipeline(transaction=False) as pipe:
            for start in range(1, len(keys), INVALIDATE_CHUNK):
                chunk = keys[start:start + INVALIDATE_CHUNK]
                pipe.evalsha(_SHAS[_INVALIDATE], len(chunk), *chunk, ttl)
            await pipe.execute()
    except REDIS_DOWN as exc:
        _down(exc)


@dataclass
class View:
    """What `read_view` found: the id list (None if not cached), entries, membership flags,
    the whole set asked for (`whole_set`); or, when closings were given and everything was
    cached, the finished array (`joined`)."""

    ids: list[int] | None
    entries: list[bytes | None]
    # One per set asked about (`set_keys`, in order): whether each entry read is in it; None
    # where that set is not cached (or nothing was read).
    members: list[list[bool] | None]
    joined: bytes | None = None  # the entries as one JSON array, each with its closing
    taken: int = 0  # with `joined`: how many ids the list gave (up to `take`)
    last_id: int = 0  # with `joined`: the id of the last entry in it
    # The members of `whole_set_key` as read (an empty list: not cached), None if none was
    # asked for; with `joined` it held nothing but the sentinel.
    whole_set: list[bytes] | None = None


async def read_view(
    stores: Stores,
    entry_prefix: str,
    *,
    list_key: str | None = None,
    ids: Sequence[int] = (),
    take: int = 0,
    read: int = 0,
    set_keys: Sequence[str] = (),
    whole_set_key: str | None = None,
    closings: Sequence[bytes] | None = None,
) -> View | None:
    """In one round trip: the first `take` ids of a cached id list (or the given ids), the
    entries `<entry_prefix><id>` of the first `read` of them, whether each is in each of
    some sets (`set_keys`), and every member of another set (`whole_set_key`: what may rule
    entries out, read with them so that it costs no round trip of its own).

    With `closings` (2 ** len(set_keys) of them: number i for an entry absent from the sets
    whose bits are set in i, so (member, non-member) for one set), a fully cached view comes
    back already joined: each entry (a JSON object) closed by the closing of its memberships,
    so a page can be sent without a single entry decoded or copied in Python. Only when the
    whole set is cached and empty: otherwise the caller has entries to rule out. None when
    Redis is unreachable."""
    if list_key is None:
        take = read = len(ids)
    closings = closings or ()
    if closings and len(closings) != 2 ** len(set_keys):
        raise ValueError("read_view needs one closing per combination of the sets")
    try:
        raw, *rest = await _script(stores, _VIEW, 2 + len(set_keys), list_key or "", whole_set_key or "",
                                   *set_keys, entry_prefix, take, read, len(closings), *closings, *ids)
    except REDIS_DOWN as exc:
        _down(exc)
        return None
    not_read: list[list[bool] | None] = [None] * len(set_keys)
    if raw == b"joined":
        joined, taken, last_id = rest
        return View(None, [], not_read, joined, taken, int(last_id),
                    [SET_SENTINEL.encode()] if whole_set_key is not None else None)
    entries, flags, whole = rest
    whole_set = list(whole) if whole_set_key is not None else None
    found = loads(raw)[:take] if raw is not None else None
    if found is None and list_key is not None:
        return View(None, [], not_read, whole_set=whole_set)
    members = [[bool(f) for f in set_flags[1:]] if set_flags and set_flags[0] else None for set_flags in flags]
    members += not_read[len(members):]
    return View(found if list_key is not None else list(ids), list(entries), members, whole_set=whole_set)


async def load_members(
    stores: Stores, key: str, load: Callable[[], Awaitable[Iterable[Any]]]
) -> set[str]:
    """Load a whole set from PostgreSQL and cache it (unless a write raced the load)."""
    gens = await _generations(stores, [key])
    members = {str(m) for m in await load()}
    if gens is not None:
        try:
            await _script(stores, _STORE_SET_IF_CURRENT, 2, key, key + GEN_SUFFIX,
                          stores.settings.cache_ttl, gens[0], SET_SENTINEL, *members)
        except REDIS_DOWN as exc:
            _down(exc)
    return members


async def get_members_or_load(
    stores: Stores, key: str, load: Callable[[], Awaitable[Iterable[Any]]],
    cached: Collection[bytes] | None = None,
) -> set[str]:
    """A whole cached set (one SMEMBERS, unless `cached`: its members as a read that already
    fetched them found, e.g. `View.whole_set`), else loaded and cached as `load_members` does."""
    if cached is None:
        try:
            cached = await stores.reads.smembers(key)
        except REDIS_DOWN as exc:
            _down(exc)
            return {str(m) for m in await load()}
    if SET_SENTINEL.encode() in cached:
        return {m.decode() for m in cached} - {SET_SENTINEL}
    return await load_members(stores, key, load)


async def _generations(stores: Stores, keys: list[str]) -> list[bytes] | None:
    """Each key's generation as a reader notes it before loading (created where missing)."""
    try:
        gens = await _script(stores, _NOTE_GENERATIONS, len(keys), *(k + GEN_SUFFIX for k in keys),
                             stores.settings.cache_ttl * 2)
    except REDIS_DOWN as exc:
        _down(exc)
        return None
    return [g if isinstance(g, bytes) else str(g).encode() for g in gens]


async def _store(stores: Stores, keys: list[str], gens: list[bytes], values: list[bytes]) -> None:
    try:
        await _script(stores, _STORE_IF_CURRENT, len(keys) * 2, *keys,
                      *(k + GEN_SUFFIX for k in keys), stores.settings.cache_ttl, *gens, *values)
    except REDIS_DOWN as exc:
        _down(exc)
