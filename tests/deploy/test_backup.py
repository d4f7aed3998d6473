"""`nubo backup` and `nubo restore` as an operator runs them, on the real PostgreSQL: a
database filled through the real API is backed up (to a directory, or to a real local S3
server), restored into a new empty database, and holds the same rows."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import boto3
import httpx
import pytest

from nubo_backend.settings import Settings
from tests.databases import drop_database, empty_database, private_name
from tests.media_support import MotoServer
from tests.support import ROOT, ServerProcess, start_process

TABLES = ("users", "follows", "posts", "post_likes", "comments", "conversations", "conversation_members",
          "messages", "event_sequences", "schema_migrations")
BUCKET = "nubo-backups"


def nubo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def env_for(settings: Settings, test_env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**test_env, "NUBO_POSTGRES_DSN": settings.postgres_dsn, "NUBO_MONGO_DB": settings.mongo_db, **extra}


@pytest.fixture
async def restore_target(settings: Settings) -> AsyncIterator[str]:
    """A new, empty database to restore into; its DSN."""
    name = private_name("restored")
    yield await empty_database(name)
    await drop_database(name)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    boto3.client("s3", endpoint_url=server.url, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


SIGNING_KEY = "k" * 32


def s3_env(moto: MotoServer, prefix: str = "prod") -> dict[str, str]:
    return {"NUBO_BACKUP_TARGET": f"s3://{BUCKET}/{prefix}", "NUBO_BACKUP_S3_ENDPOINT": moto.url,
            "NUBO_BACKUP_S3_ACCESS_KEY": "test", "NUBO_BACKUP_S3_SECRET_KEY": "test",
            "NUBO_BACKUP_SIGNING_KEY": SIGNING_KEY}


def bucket(moto: MotoServer):
    return boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


def keys_under(moto: MotoServer, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in bucket(moto).list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


async def public_tables(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()


async def populate(env: dict[str, str]) -> None:
    """Two people, a follow, a post with a like and a comment, a conversation with messages:
    through a real server, so the outbox, the event sequences and the counters are real too."""
    server = ServerProcess(env).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as api:
            alice = (await api.post("/signup", json={"username": "alice", "email": "alice@example.test",
                                                     "password": "correct horse"})).json()
            bob = (await api.post("/signup", json={"username": "bob", "email": "bob@example.test",
                                                   "password": "battery staple"})).json()
            auth = {"Authorization": f"Bearer {alice['access_token']}"}
            bob_auth = {"Authorization": f"Bearer {bob['access_token']}"}
            assert (await api.post(f"/users/{bob['user']['id']}/follow", headers=auth)).status_code == 200
            post = (await api.post("/posts", headers=auth, json={"body": "Hello Nubo"})).json()
            assert (await api.put(f"/posts/{post['id']}/like", headers=bob_auth)).status_code == 200
            comment = await api.post(f"/posts/{post['id']}/comments", headers=bob_auth, json={"body": "Hi!"})
            assert comment.status_code == 201, comment.text
            conversation = (await api.post("/conversations", headers=auth,
                                           json={"user_id": bob["user"]["id"]})).json()
            for i in range(3):
                sent = await api.post(f"/conversations/{conversation['id']}/messages", headers=auth,
                                      json={"body": f"message {i}", "client_id": f"c-{i}"})
                assert sent.status_code == 201, sent.text
    finally:
        server.stop()


async def rows(dsn: str) -> dict[str, list[tuple]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: [tuple(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in TABLES}
    finally:
        await conn.close()


async def test_a_restored_backup_holds_the_same_rows(own_database, test_env, restore_target, tmp_path) -> None:
    source = env_for(own_database, test_env)
    await populate(source)
    made = nubo(source, "backup", "--to", str(tmp_path))
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("backup nubo-") and "postgres: dumping" in made.stderr  # progress on stderr

    restored = nubo({**source, "NUBO_POSTGRES_DSN": restore_target}, "restore", "--from", str(tmp_path))
    assert restored.returncode == 0, restored.stderr
    assert "pending" not in restored.stdout  # the backup's schema is the code's
    before, after = await rows(own_database.postgres_dsn), await rows(restore_target)
    assert before["users"] and len(before["messages"]) == 3
    assert after == before
    # Sequences came along: the next account gets the next id, not 1.
    conn = await asyncpg.connect(restore_target)
    new_id = await conn.fetchval("INSERT INTO users (username, email, password_hash) VALUES ('carol', 'c@x', 'h') "
                                 "RETURNING id")
    await conn.close()
    assert new_id == max(u[0] for u in before["users"]) + 1


async def test_restore_reports_progress_per_table(own_database, test_env, restore_target, tmp_path) -> None:
    source = env_for(own_database, test_env)
    assert nubo(source, "backup", "--to", str(tmp_path)).returncode == 0
    restored = nubo({**source, "NUBO_POSTGRES_DSN": restore_target}, "restore", "--from", str(tmp_path))
    assert restored.returncode == 0, restored.stderr
    last = [line for line in restored.stderr.splitlines() if line.startswith("postgres: restoring table ")][-1]
    done, total = last.split("restoring table ")[1].split(" ")[0].split("/")
    assert done == total and int(total) >= len(TABLES)


async def test_restore_refuses_a_database_that_has_tables(own_database, test_env, tmp_path) -> None:
    source = env_for(own_database, test_env)
    assert nubo(source, "backup", "--to", str(tmp_path)).returncode == 0
    refused = nubo(source, "restore", "--from", str(tmp_path))
    assert refused.returncode == 1
    assert "already has" in refused.stderr and "--clean" in refused.stderr
    replaced = nubo(source, "restore", "--from", str(tmp_path), "--clean")
    assert replaced.returncode == 0, replaced.stderr


async def test_retention_keeps_the_newest_sets(own_database, test_env, tmp_path) -> None:
    source = env_for(own_database, test_env)
    names = []
    for _ in range(3):
        made = nubo(source, "backup", "--to", str(tmp_path), "--keep", "2")
        assert made.returncode == 0, made.stderr
        names.append(made.stdout.split()[1].rstrip(":"))
    listed = nubo(source, "backup", "--to", str(tmp_path), "--list")
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [names[2], names[1]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


async def test_s3_backup_keeps_its_retention_and_restores(own_database, test_env, restore_target, moto) -> None:
    source = env_for(own_database, test_env, **s3_env(moto))
    await populate(source)
    for _ in range(2):
        made = nubo(source, "backup", "--keep", "1")
        assert made.returncode == 0, made.stderr
        assert f"s3://{BUCKET}/prod/" in made.stdout and "upload postgres.dump" in made.stderr
    listed = nubo(source, "backup", "--list")
    assert len(listed.stdout.splitlines()) == 1, listed.stdout
    restored = nubo({**source, "NUBO_POSTGRES_DSN": restore_target}, "restore")
    assert restored.returncode == 0, restored.stderr
    assert await rows(restore_target) == await rows(own_database.postgres_dsn)


async def test_a_damaged_backup_is_refused_before_the_database_is_touched(
    own_database, test_env, restore_target, tmp_path
) -> None:
    source = env_for(own_database, test_env)
    assert nubo(source, "backup", "--to", str(tmp_path)).returncode == 0
    (dump,) = tmp_path.glob("nubo-*/postgres.dump")
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    refused = nubo({**source, "NUBO_POSTGRES_DSN": restore_target}, "restore", "--from", str(tmp_path))
    assert refused.returncode == 1 and "checksum" in refused.stderr
    conn = await asyncpg.connect(restore_target)
    assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    await conn.close()


async def test_check_fails_without_a_recent_backup(own_database, test_env, tmp_path) -> None:
    source = env_for(own_database, test_env, NUBO_BACKUP_TARGET=str(tmp_path), NUBO_BACKUP_INTERVAL="86400")
    none_yet = nubo(source, "backup", "--check")
    assert none_yet.returncode == 1 and "no backup" in none_yet.stderr
    assert nubo(source, "backup").returncode == 0
    assert nubo(source, "backup", "--check").returncode == 0
    # Made three days ago: older than twice the interval.
    (manifest_path,) = tmp_path.glob("nubo-*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    made_at = datetime.fromisoformat(manifest["created_at"])
    manifest["created_at"] = (made_at - timedelta(days=3)).isoformat()
    manifest_path.write_text(json.dumps(manifest))
    stale = nubo(source, "backup", "--check")
    assert stale.returncode == 1 and "72.0 h old (limit 48.0 h)" in stale.stderr


async def test_the_manifest_says_what_the_set_holds(own_database, test_env, tmp_path) -> None:
    made = nubo(env_for(own_database, test_env), "backup", "--to", str(tmp_path))
    assert made.returncode == 0, made.stderr
    (manifest_path,) = tmp_path.glob("nubo-*/manifest.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["migrations"] and manifest["migrations"][0].startswith("0001_")
    assert set(manifest["files"]) >= {"postgres.dump"}
    # MongoDB is optional: dumped when mongodump is installed, and said so when it is not.
    if "mongo.archive.gz" in manifest["files"]:
        assert "MongoDB included" in made.stdout
    else:
        assert "MongoDB skipped: mongodump not installed" in made.stdout


def test_an_unreachable_database_is_one_line_saying_what_to_set(test_env, tmp_path: Path) -> None:
    failed = nubo({**test_env, "NUBO_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:1/nubo"},
                  "backup", "--to", str(tmp_path))
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: PostgreSQL at") and "NUBO_POSTGRES_DSN" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1



def test_the_scheduled_service_backs_up_every_interval_and_keeps_its_retention(
    own_database, test_env, tmp_path: Path
) -> None:
    """What the compose backup service runs: `nubo backup --every SECONDS`, until stopped."""
    target, log_path = tmp_path / "sets", tmp_path / "service.log"
    env = {**os.environ, **env_for(own_database, test_env)}
    with log_path.open("w") as log:
        service = start_process([sys.executable, "-m", "cli", "backup", "--to", str(target), "--keep", "2",
                                    "--every", "1"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60  # bounded: three rounds take a few seconds
        while time.monotonic() < deadline and service.poll() is None and "removed 1 old" not in log_path.read_text():
            time.sleep(0.2)
        assert service.poll() is None, log_path.read_text()  # still running, waiting for its next round
    finally:
        service.terminate()  # the pid we started, as `docker compose stop` does
        service.wait(timeout=10)
    output = log_path.read_text()
    assert output.count("backup nubo-") >= 3 and "removed 1 old" in output
    assert len(list(target.glob("nubo-*/manifest.json"))) == 2


# --- issue #26, item 10: what a restore believes of a bucket ------------------------------


async def test_a_key_outside_the_set_in_the_bucket_is_never_downloaded(
        own_database, test_env, restore_target, moto, tmp_path) -> None:
    source = env_for(own_database, test_env, **s3_env(moto, "escape"), TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    assert nubo(source, "backup").returncode == 0
    (name,) = {key.split("/")[1] for key in keys_under(moto, "escape/")}
    # Written by whoever holds the bucket's keys: the scratch folder is tmp/nubo-backup-*/,
    # so this key would land in tmp_path/tmp/planted.
    bucket(moto).put_object(Bucket=BUCKET, Key=f"escape/{name}/../../planted", Body=b"#!/bin/sh\n")
    restored = nubo({**source, "NUBO_POSTGRES_DSN": restore_target}, "restore")
    assert restored.returncode == 0, restored.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["tmp"]  # nothing planted, scratch gone
    assert await public_tables(restore_target) > 0


async def test_a_manifest_rewritten_in_the_bucket_is_refused_before_the_database_is_touched(
        own_database, test_env, restore_target, moto) -> None:
    source = env_for(own_database, test_env, **s3_env(moto, "forged"))
    assert nubo(source, "backup").returncode == 0
    (manifest_key,) = [k for k in keys_under(moto, "forged/") if k.endswith("/manifest.json")]
    s3 = bucket(moto)
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    # Someone with the bucket's keys swaps the dump and writes its checksum in the manifest.
    forged_dump = b"PGDMP forged"
    s3.put_object(Bucket=BUCKET, Key=manifest_key.replace("manifest.json", "postgres.dump"), Body=forged_dump)
    manifest["files"]["postgres.dump"] = {"bytes": len(forged_dump),
                                          "sha256": hashlib.sha256(forged_dump).hexdigest()}
    s3.put_object(Bucket=BUCKET, Key=manifest_key, Body=json.dumps(manifest).encode())
    refused = nubo({**source, "NUBO_POSTGRES_DSN": restore_target}, "restore")
    assert (refused.returncode, refused.stdout) == (1, "")
    assert "is not signed with NUBO_BACKUP_SIGNING_KEY" in refused.stderr
    assert await public_tables(restore_target) == 0


async def test_a_bucket_is_neither_written_nor_restored_without_a_signing_key(
        own_database, test_env, restore_target, moto) -> None:
    unsigned = {k: v for k, v in env_for(own_database, test_env, **s3_env(moto, "unsigned")).items()
                if k != "NUBO_BACKUP_SIGNING_KEY"}
    made = nubo(unsigned, "backup")
    assert made.returncode == 1 and "needs NUBO_BACKUP_SIGNING_KEY" in made.stderr
    assert keys_under(moto, "unsigned/") == []
    assert nubo({**unsigned, "NUBO_BACKUP_SIGNING_KEY": SIGNING_KEY}, "backup").returncode == 0
    refused = nubo({**unsigned, "NUBO_POSTGRES_DSN": restore_target}, "restore")
    assert refused.returncode == 1 and "needs NUBO_BACKUP_SIGNING_KEY" in refused.stderr
    assert await public_tables(restore_target) == 0


# mongodump is not installed here: a stand-in on PATH records what `ps` would show of it
# (its command line) and the --config file it was given, as the real one would read it.
MONGODUMP_STAND_IN = """#!{python}
import json, os, sys
seen = {{"cmdline": open("/proc/self/cmdline", "rb").read().decode().split("\\0")}}
for arg in sys.argv[1:]:
    if arg.startswith("--config="):
        path = arg.split("=", 1)[1]
        seen["config"] = open(path).read()
        seen["config_mode"] = os.stat(path).st_mode & 0o777
        seen["config_path"] = path
    if arg.startswith("--archive="):
        open(arg.split("=", 1)[1], "wb").write(b"archive")
json.dump(seen, open({record!r}, "w"))
"""


async def test_backup_gives_mongodump_the_uri_in_a_private_file_not_on_its_command_line(
        own_database, test_env, tmp_path) -> None:
    # Issue #26, item 10: the URI, with its password, was a mongodump argument, visible in `ps`.
    bin_dir, record = tmp_path / "bin", tmp_path / "mongodump.json"
    bin_dir.mkdir()
    (bin_dir / "mongodump").write_text(MONGODUMP_STAND_IN.format(python=sys.executable, record=str(record)))
    (bin_dir / "mongodump").chmod(0o755)
    url = "mongodb://nubo:hunter2-secret@mongo.internal:27017/?authSource=admin"
    env = env_for(own_database, test_env, NUBO_MONGO_URL=url, NUBO_BACKUP_MONGO="yes",
                  PATH=f"{bin_dir}:{os.environ['PATH']}")
    made = nubo(env, "backup", "--to", str(tmp_path / "sets"))
    assert made.returncode == 0, made.stderr
    assert "MongoDB included" in made.stdout
    seen = json.loads(record.read_text())
    assert not [arg for arg in seen["cmdline"] if "hunter2" in arg]
    assert seen["config"] == f'uri: "{url}"\n' and seen["config_mode"] == 0o600
    assert not await asyncio.to_thread(os.path.exists, seen["config_path"])  # gone once mongodump exited
