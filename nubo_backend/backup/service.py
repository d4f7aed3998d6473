"""One backup set: made (PostgreSQL, MongoDB when its tools are there), kept N deep, restored.

A set holds postgres.dump (pg_dump custom format), mongo.archive.gz when MongoDB was dumped,
manifest.json (when, what, sizes and SHA-256 of each file, the migrations applied) and, with
NUBO_BACKUP_SIGNING_KEY, manifest.json.sig (its HMAC). A restore reads only those files, checks
the signature (required from a bucket) and every checksum before touching the database,
refuses a database that already holds tables unless told to clean it, and runs in one
transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from nubo_backend import __version__
from nubo_backend.backup import tools
from nubo_backend.backup.signing import DATA_FILES, MANIFEST, MONGO_FILE, POSTGRES_FILE, SIGNATURE, is_signed, sign
from nubo_backend.backup.targets import Target, TargetError, open_target
from nubo_backend.settings import Settings, mask_url

Progress = Callable[[str], None]
MONGO_MODES = ("auto", "yes", "no")


class BackupError(Exception):
    """A backup or restore cannot go on; the message says what to do."""


@dataclass(frozen=True)
class BackupSet:
    name: str
    manifest: dict[str, Any] = field(repr=False)

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.manifest["created_at"])

    @property
    def size_bytes(self) -> int:
        return sum(f["bytes"] for f in self.manifest["files"].values())

    @property
    def has_mongo(self) -> bool:
        return MONGO_FILE in self.manifest["files"]


@dataclass(frozen=True)
class BackupResult:
    backup: BackupSet
    target: str
    seconds: float
    removed: list[str]
    mongo_note: str


@dataclass(frozen=True)
class RestoreResult:
    backup: BackupSet
    database: str
    mongo_note: str
    pending_migrations: int


def human_size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} kB"


def _new_name(now: datetime) -> str:
    return "nubo-" + now.strftime("%Y%m%dT%H%M%S.") + f"{now.microsecond // 1000:03d}Z"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _opened(settings: Settings, spec: str | None) -> Iterator[Target]:
    scratch = Path(tempfile.mkdtemp(prefix="nubo-backup-"))
    try:
        yield open_target(spec if spec is not None else settings.backup_target, settings, scratch)
    except TargetError as exc:
        raise BackupError(str(exc)) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _mongo_mode(settings: Settings) -> str:
    if settings.backup_mongo not in MONGO_MODES:
        raise BackupError(f"NUBO_BACKUP_MONGO must be one of {', '.join(MONGO_MODES)}, not {settings.backup_mongo!r}")
    return settings.backup_mongo


async def _applied_migrations(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    except asyncpg.UndefinedTableError:
        return []
    finally:
        await conn.close()
    return [f"{r['version']:04d}_{r['name']}.sql" for r in rows]


async def _user_tables(dsn: str) -> int:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
    finally:
        await conn.close()


def _reach(dsn: str, coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        from nubo_backend.stores import short_reason

        raise BackupError(
            f"PostgreSQL at {mask_url(dsn)}: {short_reason(exc)}; start it or set NUBO_POSTGRES_DSN"
        ) from None


def make_backup(settings: Settings, to: str | None, keep: int | None, progress: Progress) -> BackupResult:
    """Dump the stores into a new set at the target, then keep only the `keep` newest sets."""
    keep = keep if keep is not None else settings.backup_keep
    if keep < 1:
        raise BackupError("NUBO_BACKUP_KEEP must be at least 1: the backup just made is always kept")
    mode = _mongo_mode(settings)
    if mode == "yes" and tools.which("mongodump") is None:
        raise BackupError("NUBO_BACKUP_MONGO=yes but mongodump is not installed: install mongodb-database-tools "
                          "or set NUBO_BACKUP_MONGO=auto")
    started = time.monotonic()
    now = datetime.now(UTC)
    name = _new_name(now)
    with _opened(settings, to) as target:
        if target.needs_signature and not settings.backup_signing_key:
            raise BackupError(f"{target.description} needs NUBO_BACKUP_SIGNING_KEY: a set in a bucket is restored "
                              "only when its manifest is signed with a key kept outside it (`openssl rand -hex 32`)")
        migrations = _reach(settings.postgres_dsn, _applied_migrations(settings.postgres_dsn))
        staged = _stage(target, name)
        try:
            where = f"{target.description.rstrip('/')}/{name}"
            progress(f"postgres: dumping {mask_url(settings.postgres_dsn)} into {where}")
            tools.pg_dump(settings.postgres_dsn, staged / POSTGRES_FILE, progress)
            if mode != "no" and tools.which("mongodump") is not None:
                progress(f"mongo: dumping database {settings.mongo_db}")
                tools.mongodump(settings.mongo_url, settings.mongo_db, staged / MONGO_FILE, progress)
                mongo_note = "MongoDB included"
            else:
                mongo_note = ("MongoDB skipped (NUBO_BACKUP_MONGO=no)" if mode == "no" else
                              "MongoDB skipped: mongodump not installed (its data is temporary: events and "
                              "notifications of the last NUBO_MONGO_TTL_DAYS days)")
            manifest = {
                "name": name,
                "created_at": now.isoformat(),
                "nubo_version": __version__,
                "pg_dump": tools.pg_version("pg_dump"),
                "postgres_database": settings.postgres_dsn.rsplit("/", 1)[-1].split("?")[0],
                "mongo_database": settings.mongo_db,
                "migrations": migrations,
                "files": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(staged.iterdir())},
            }
            manifest_bytes = (json.dumps(manifest, indent=2) + "\n").encode()
            (staged / MANIFEST).write_bytes(manifest_bytes)
            if settings.backup_signing_key:
                (staged / SIGNATURE).write_text(sign(settings.backup_signing_key, manifest_bytes) + "\n")
            target.store(name, staged, progress)
        except (tools.ToolError, TargetError) as exc:
            shutil.rmtree(staged, ignore_errors=True)
            raise BackupError(str(exc)) from None
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        removed = _apply_retention(target, keep, progress)
        description = target.description
    return BackupResult(BackupSet(name, manifest), description, time.monotonic() - started, removed, mongo_note)


def _stage(target: Target, name: str) -> Path:
    try:
        target.cleanup()
        return target.stage(name)
    except TargetError as exc:
        raise BackupError(str(exc)) from None


def _apply_retention(target: Target, keep: int, progress: Progress) -> list[str]:
    removed = target.names()[keep:]
    for old in removed:
        progress(f"retention: removing {old} (keeping the {keep} newest)")
        target.delete(old)
    return removed


def _read_set(settings: Settings, target: Target, name: str, progress: Progress) -> tuple[BackupSet, Path]:
    """The set's manifest, believed only when signed as it must be; its files, by known names."""
    key = settings.backup_signing_key
    if target.needs_signature and not key:
        raise BackupError(f"{target.description} needs NUBO_BACKUP_SIGNING_KEY, the key its backups were signed "
                          "with: a set in a bucket is restored only when its manifest is signed")
    folder = target.fetch(name, progress)
    manifest_bytes = (folder / MANIFEST).read_bytes()
    signature = folder / SIGNATURE
    if key and not is_signed(key, manifest_bytes, signature.read_bytes() if signature.is_file() else None):
        raise BackupError(f"{name}/{MANIFEST} is not signed with NUBO_BACKUP_SIGNING_KEY: not restored (made with "
                          "another key, or not by `nubo backup`)")
    manifest = json.loads(manifest_bytes)
    files = set(manifest.get("files", {}))
    if not files <= DATA_FILES or POSTGRES_FILE not in files:
        raise BackupError(f"{name}/{MANIFEST} lists {sorted(files)}: a set holds {POSTGRES_FILE} and "
                          f"maybe {MONGO_FILE}, nothing else")
    return BackupSet(name, manifest), folder


def list_backups(settings: Settings, spec: str | None) -> list[BackupSet]:
    """Complete sets at the target, newest first."""
    with _opened(settings, spec) as target:
        try:
            return [_describe(target, name) for name in target.names()]
        except TargetError as exc:
            raise BackupError(str(exc)) from None


def _describe(target: Target, name: str) -> BackupSet:
    return BackupSet(name, target.read_manifest(name))


def check_recent(settings: Settings, spec: str | None, max_age: float) -> BackupSet:
    """The newest set, if it is younger than max_age seconds; else BackupError."""
    with _opened(settings, spec) as target:
        try:
            names = target.names()
        except TargetError as exc:
            raise BackupError(str(exc)) from None
        if not names:
            raise BackupError(f"no backup in {target.description}: run `nubo backup`")
        newest = _describe(target, names[0])
    age = (datetime.now(UTC) - newest.created_at).total_seconds()
    if age > max_age:
        raise BackupError(f"newest backup {newest.name} is {age / 3600:.1f} h old (limit {max_age / 3600:.1f} h): "
                          "look at the backup service's log (`docker compose logs backup`)")
    return newest


def restore_backup(settings: Settings, spec: str | None, name: str, clean: bool, progress: Progress) -> RestoreResult:
    """Restore set `name` ("latest": the newest) into settings' PostgreSQL (and MongoDB)."""
    mode = _mongo_mode(settings)
    dsn = settings.postgres_dsn
    with _opened(settings, spec) as target:
        try:
            names = target.names()
            if not names:
                raise BackupError(f"no backup in {target.description}: check --from / NUBO_BACKUP_TARGET")
            if name == "latest":
                name = names[0]
            elif name not in names:
                raise BackupError(f"no backup {name!r} in {target.description}: `nubo backup --list` shows them")
            progress(f"fetching {name} from {target.description}")
            backup, folder = _read_set(settings, target, name, progress)
        except TargetError as exc:
            raise BackupError(str(exc)) from None
        for filename, expected in backup.manifest["files"].items():
            if _sha256(folder / filename) != expected["sha256"]:
                raise BackupError(f"{name}/{filename} does not match its checksum: the backup is damaged; "
                                  "restore another one (`nubo backup --list`)")
        tables = _reach(dsn, _user_tables(dsn))
        if tables and not clean:
            raise BackupError(f"database {mask_url(dsn)} already has {tables} tables: restore into an empty database "
                              "(create one and point NUBO_POSTGRES_DSN at it), or pass --clean to replace what the "
                              "backup holds")
        progress(f"postgres: restoring {name} into {mask_url(dsn)}")
        try:
            tools.pg_restore(dsn, folder / POSTGRES_FILE, clean, progress)
        except tools.ToolError as exc:
            raise BackupError(str(exc)) from None
        mongo_note = _restore_mongo(settings, backup, folder, mode, progress)
    from nubo_backend.stores.migrations import discover

    applied = _reach(dsn, _applied_migrations(dsn))
    pending = len({m.filename for m in discover()} - set(applied))
    return RestoreResult(backup, mask_url(dsn), mongo_note, pending)


def _restore_mongo(settings: Settings, backup: BackupSet, folder: Path, mode: str, progress: Progress) -> str:
    if not backup.has_mongo:
        return "MongoDB: not in this backup (its events and notifications start empty)"
    if mode == "no":
        return "MongoDB: left as it is (NUBO_BACKUP_MONGO=no)"
    if tools.which("mongorestore") is None:
        if mode == "yes":
            raise BackupError("PostgreSQL restored, but mongorestore is not installed: install "
                              f"mongodb-database-tools and run mongorestore on {backup.name}/{MONGO_FILE}")
        return f"MongoDB: not restored, mongorestore not installed ({backup.name}/{MONGO_FILE} holds it)"
    progress(f"mongo: restoring into database {settings.mongo_db}")
    try:
        tools.mongorestore(settings.mongo_url, backup.manifest["mongo_database"], settings.mongo_db,
                           folder / MONGO_FILE)
    except tools.ToolError as exc:
        raise BackupError(f"PostgreSQL restored, but {exc}") from None
    return "MongoDB restored"
