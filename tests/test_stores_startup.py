"""Which start-up errors are retried, and how each is told in one line."""

import asyncpg
from pymongo.errors import ConfigurationError, ServerSelectionTimeoutError
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from nubo_backend.stores.redis import Keys
from nubo_backend.stores.startup import permanent_fix, short_reason

DSN = "postgresql://postgres@127.0.0.1:5432/nubo"


def test_a_missing_database_is_permanent_and_names_createdb() -> None:
    fix = permanent_fix("PostgreSQL", DSN, asyncpg.InvalidCatalogNameError('database "nubo" does not exist'))
    assert fix is not None and "createdb -h 127.0.0.1 -p 5432 -U postgres nubo" in fix


def test_wrong_credentials_and_bad_urls_are_permanent() -> None:
    assert "password in NUBO_REDIS_URL" in permanent_fix("Redis", "redis://x", AuthenticationError("nope"))
    assert permanent_fix("MongoDB", "mongodb://x", ConfigurationError("bad")) == "fix NUBO_MONGO_URL"


def test_a_store_not_yet_listening_is_retried() -> None:
    assert permanent_fix("PostgreSQL", DSN, ConnectionRefusedError(111, "refused")) is None
    assert permanent_fix("PostgreSQL", DSN, asyncpg.CannotConnectNowError("starting up")) is None
    assert permanent_fix("Redis", "redis://x", RedisConnectionError("refused")) is None
    assert permanent_fix("MongoDB", "mongodb://x", ServerSelectionTimeoutError("x")) is None


def test_mongodb_server_selection_error_loses_its_topology_dump() -> None:
    error = ServerSelectionTimeoutError(
        "127.0.0.1:27017: [Errno 111] Connection refused (configured timeouts: socketTimeoutMS: 20000.0ms, "
        "connectTimeoutMS: 2000.0ms), Timeout: 2.0s, Topology Description: <TopologyDescription id: 1, "
        + "x" * 500
        + ">"
    )
    assert short_reason(error) == "ServerSelectionTimeoutError: 127.0.0.1:27017: [Errno 111] Connection refused"


def test_a_namespace_gets_a_separator() -> None:
    assert Keys("staging")("profile", 2) == "staging:profile:2"
    assert Keys("staging:")("profile", 2) == "staging:profile:2"
    assert Keys("")("profile", 2) == "profile:2"
    assert Keys("staging").broadcast_channel == "staging:nubo-websocket"
