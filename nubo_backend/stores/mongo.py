"""MongoDB: the async client, its health check, and the indexes every collection needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure
from pymongo.monitoring import ConnectionPoolListener

# MongoDB error codes for "an index with this name exists with other options".
_INDEX_CONFLICT_CODES = {85, 86}


def open_client(url: str, listeners: Sequence[ConnectionPoolListener] = ()) -> AsyncMongoClient:
    """The client; `listeners`: PyMongo event listeners (the pool's metrics: observability/mongo_pool.py)."""
    return AsyncMongoClient(url, serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, tz_aware=True,
                            event_listeners=list(listeners))


async def check(client: AsyncMongoClient) -> None:
    await client.admin.command("ping")


@dataclass(frozen=True)
class CollectionIndexes:
    name: str
    indexes: list[IndexModel] = field(default_factory=list)
    ttl_field: str | None = "created_at"


def collections() -> list[CollectionIndexes]:
    """What lives in MongoDB: temporary data only, each collection expiring on its TTL field."""
    return [
        CollectionIndexes("broadcasts", [IndexModel([("created_at", DESCENDING)], name="recent")]),
        CollectionIndexes(
            "events",
            [IndexModel([("user_id", ASCENDING), ("id", ASCENDING)], unique=True, name="user_seq")],
        ),
        CollectionIndexes(
            "notifications",
            [IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="user_recent")],
        ),
    ]


async def ensure_indexes(db: AsyncDatabase, ttl_seconds: int) -> list[str]:
    """Create every index, TTL ones included; an existing TTL index is brought to ttl_seconds."""
    done: list[str] = []
    for spec in collections():
        coll = db[spec.name]
        for model in spec.indexes:
            await coll.create_indexes([model])
            done.append(f"{spec.name}.{model.document['name']}")
        if spec.ttl_field:
            name = f"ttl_{spec.ttl_field}"
            try:
                await coll.create_index(
                    [(spec.ttl_field, ASCENDING)], name=name, expireAfterSeconds=ttl_seconds
                )
            except OperationFailure as exc:
                if exc.code not in _INDEX_CONFLICT_CODES:
                    raise
                await db.command(
                    "collMod",
                    spec.name,
                    index={"name": name, "expireAfterSeconds": ttl_seconds},
                )
            done.append(f"{spec.name}.{name} (TTL {ttl_seconds}s)")
    return done
