"""Photos over real HTTP, on the disk backend and on S3 (a real moto server): upload, clean,
serve, attach to posts and messages, refuse bad input with nothing stored, files removed."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest
from PIL import Image

from nubo_backend.media import service as media_service
from nubo_backend.media.storage import Storage, open_storage
from nubo_backend.settings import Settings
from nubo_backend.stores import Stores
from tests.factories import make_user
from tests.media_support import MotoServer, exif_with_gps, image_bytes, jpeg, png, png_bomb
from tests.polling import eventually
from tests.support import ServerProcess

BUCKET = "nubo-media-test"
JPEG = {"Content-Type": "image/jpeg"}


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    client.create_bucket(Bucket=BUCKET)
    yield server
    server.stop()


def s3_env(moto: MotoServer) -> dict[str, str]:
    return {"NUBO_MEDIA_BACKEND": "s3", "NUBO_MEDIA_S3_ENDPOINT": moto.url, "NUBO_MEDIA_S3_BUCKET": BUCKET,
            "NUBO_MEDIA_S3_ACCESS_KEY": "test", "NUBO_MEDIA_S3_SECRET_KEY": "test"}


@pytest.fixture(scope="session")
def s3_server(moto: MotoServer, test_env: dict[str, str], session_stores: Stores) -> Iterator[ServerProcess]:
    proc = ServerProcess({**test_env, **s3_env(moto)}).start()
    yield proc
    proc.stop()


@dataclass
class Backend:
    """One running server and a view of the storage it writes to."""

    name: str
    api: httpx.AsyncClient
    storage: Storage
    keys: Callable[[], Awaitable[list[str]]]

    async def stored_keys(self) -> list[str]:
        return await self.keys()


def _disk_keys(settings: Settings) -> Callable[[], Awaitable[list[str]]]:
    root = Path(settings.media_disk_path)

    def walk() -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    async def keys() -> list[str]:
        return await asyncio.to_thread(walk)

    return keys


def _s3_keys(moto: MotoServer) -> Callable[[], Awaitable[list[str]]]:
    client = boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")

    async def keys() -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))

    return keys


@pytest.fixture(params=["disk", "s3"])
async def backend(request: pytest.FixtureRequest, stores: Stores, settings: Settings) -> AsyncIterator[Backend]:
    if request.param == "disk":
        server = request.getfixturevalue("server")
        storage, keys = open_storage(settings), _disk_keys(settings)
    else:
        moto = request.getfixturevalue("moto")
        server = request.getfixturevalue("s3_server")
        s3_settings = settings.replace(media_backend="s3", media_s3_endpoint=moto.url, media_s3_bucket=BUCKET,
                                       media_s3_access_key="test", media_s3_secret_key="test")
        storage, keys = open_storage(s3_settings), _s3_keys(moto)
    await storage.delete(await keys())  # every test starts with no files
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        yield Backend(request.param, client, storage, keys)
    await storage.close()


async def upload(api: httpx.AsyncClient, user, data: bytes, content_type: str = "image/jpeg") -> httpx.Response:
    return await api.post("/media", content=data, headers={**user.headers, "Content-Type": content_type})


async def uploaded(api: httpx.AsyncClient, user, data: bytes | None = None) -> dict:
    response = await upload(api, user, data or jpeg())
    assert response.status_code == 201, response.text
    return response.json()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- upload and serve ------------------------------------------------------------------


async def test_uploaded_jpeg_is_served_with_etag_immutable_cache_and_its_type(backend: Backend, stores: Stores):
    alice = await make_user(stores)
    media = await uploaded(backend.api, alice, jpeg(1200, 900))
    assert media["type"] == "image" and media["content_type"] == "image/jpeg"
    assert (media["width"], media["height"]) == (1200, 900)
    assert (media["thumbnail"]["width"], media["thumbnail"]["height"]) == (400, 300)
    assert media["url"] == f"/media/{media['id']}" and media["thumbnail_url"] == f"/media/{media['id']}/thumbnail"
    assert len(media["blurhash"]) >= 6 and media["size_bytes"] > 0

    got = await backend.api.get(media["url"], headers=alice.headers)
    assert got.status_code == 200
    assert got.headers["content-type"] == "image/jpeg"
    assert "immutable" in got.headers["cache-control"]
    assert got.headers["etag"].startswith('"') and len(got.content) == media["size_bytes"]
    assert decoded(got.content).size == (1200, 900)

    again = await backend.api.get(media["url"], headers={**alice.headers, "If-None-Match": got.headers["etag"]})
    assert again.status_code == 304 and again.content == b""

    thumb = await backend.api.get(media["thumbnail_url"], headers=alice.headers)
    assert thumb.status_code == 200 and decoded(thumb.content).size == (400, 300)
    assert thumb.headers["etag"] != got.headers["etag"]
    assert len(await backend.stored_keys()) == 2


async def test_long_side_is_bounded_and_png_with_alpha_stays_png(backend: Backend, stores: Stores):
    alice = await make_user(stores)
    big = await uploaded(backend.api, alice, jpeg(3000, 1500))
    assert (big["width"], big["height"]) == (2048, 1024)
    clear = await uploaded(backend.api, alice, png(50, 40, mode="RGBA"))
    got = await backend.api.get(clear["url"], headers=alice.headers)
    assert got.headers["content-type"] == "image/png" and decoded(got.content).mode == "RGBA"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
async def test_png_webp_and_gif_are_taken(fmt: str, api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    response = await upload(api, alice, image_bytes(fmt), f"image/{fmt.lower()}")
    assert response.status_code == 201, response.text
    assert (response.json()["width"], response.json()["height"]) == (64, 48)


async def test_multipart_upload_takes_the_file_part(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    response = await api.post("/media", files={"file": ("a.jpg", jpeg(), "image/jpeg")}, headers=alice.headers)
    assert response.status_code == 201, response.text
    missing = await api.post("/media", files={"other": ("a.jpg", jpeg(), "image/jpeg")}, headers=alice.headers)
    assert missing.status_code == 422 and missing.json()["code"] == "validation_error"


async def test_stored_original_has_no_exif_gps_and_is_turned_upright(backend: Backend, stores: Stores):
    alice = await make_user(stores)
    source = jpeg(80, 40, exif=exif_with_gps(orientation=6))  # 6: rotate 90 degrees to show
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(0x8825)  # the input does carry GPS
    media = await uploaded(backend.api, alice, source)
    assert (media["width"], media["height"]) == (40, 80)
    for url in (media["url"], media["thumbnail_url"]):
        stored = decoded((await backend.api.get(url, headers=alice.headers)).content)
        exif = stored.getexif()
        assert not exif.get_ifd(0x8825) and 0x8825 not in exif and 0x010F not in exif
        assert b"SpyCam" not in (await backend.api.get(url, headers=alice.headers)).content


async def test_polyglot_comes_out_as_a_clean_image(backend: Backend, stores: Stores):
    alice = await make_user(stores)
    script = b"<script>alert(document.cookie)</script>"
    media = await uploaded(backend.api, alice, jpeg() + script)
    stored = (await backend.api.get(media["url"], headers=alice.headers)).content
    assert script not in stored and b"<script" not in stored
    assert stored.endswith(b"\xff\xd9")  # the JPEG ends where the image ends
    keys = await backend.stored_keys()
    for key in keys:
        assert script not in await backend.storage.get(key)


# --- bad input: a clear 4xx, nothing stored -----------------------------------------------


def _truncated() -> bytes:
    data = jpeg(400, 300)
    return data[: len(data) // 2]


BAD_UPLOADS = [
    ("not_an_image", lambda: b"#!/bin/sh\necho not an image\n", "image/jpeg", 422, "not_an_image"),
    ("truncated", _truncated, "image/jpeg", 422, "invalid_image"),
    ("one_by_sixty_thousand", lambda: png(1, 60000), "image/png", 422, "bad_aspect_ratio"),
    ("decompression_bomb", png_bomb, "image/png", 422, "too_many_pixels"),
    ("wrong_content_type", jpeg, "text/plain", 415, "unsupported_media_type"),
    ("no_content_type", jpeg, "", 415, "unsupported_media_type"),
    ("empty", lambda: b"", "image/png", 422, "not_an_image"),
]


@pytest.mark.parametrize(("case", "make", "content_type", "status", "code"), BAD_UPLOADS,
                         ids=[c[0] for c in BAD_UPLOADS])
async def test_bad_upload_is_refused_and_nothing_is_stored(
    backend: Backend, stores: Stores, case, make, content_type, status, code
):
    alice = await make_user(stores)
    data = make()
    if case == "decompression_bomb":
        assert len(data) < 10_000  # a few KB announcing 400 million pixels
    response = await upload(backend.api, alice, data, content_type)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code and response.json()["error"]
    assert await stores.pg.fetchval("SELECT count(*) FROM media") == 0
    assert await backend.stored_keys() == []


async def test_oversized_upload_gets_a_readable_413_and_nothing_is_stored(backend: Backend, stores: Stores):
    alice = await make_user(stores)
    limit = stores.settings.media_max_upload_bytes
    response = await upload(backend.api, alice, jpeg() + b"\0" * limit)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large" and response.json()["details"] == {"max_bytes": limit}
    assert await stores.pg.fetchval("SELECT count(*) FROM media") == 0
    assert await backend.stored_keys() == []


async def test_oversized_chunked_upload_gets_413(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    limit = stores.settings.media_max_upload_bytes

    async def chunks():
        for _ in range(limit // 65536 + 2):
            yield b"\0" * 65536

    response = await api.post("/media", content=chunks(), headers={**alice.headers, **JPEG})
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


async def test_uploads_past_the_hourly_allowance_get_429(start_server, stores: Stores):
    server = start_server({"NUBO_MEDIA_UPLOADS_PER_HOUR": "2"})
    alice, bob = await make_user(stores), await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        for _ in range(2):
            assert (await upload(api, alice, jpeg())).status_code == 201
        refused = await upload(api, alice, jpeg())
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
        assert 0 < int(refused.headers["retry-after"]) <= 3600
        assert (await upload(api, bob, jpeg())).status_code == 201  # per user
    assert await stores.pg.fetchval("SELECT count(*) FROM media") == 3


async def test_upload_needs_auth(api: httpx.AsyncClient):
    response = await api.post("/media", content=jpeg(), headers=JPEG)
    assert response.status_code == 401


# --- attach to posts ------------------------------------------------------------------


async def test_post_carries_its_media_in_order_and_makes_them_public(backend: Backend, stores: Stores):
    alice = await make_user(stores)
    first, second = await uploaded(backend.api, alice, jpeg(30, 20)), await uploaded(backend.api, alice, png(20, 30))
    created = await backend.api.post("/posts", json={"body": "look", "media_ids": [second["id"], first["id"]]},
                                     headers=alice.headers)
    assert created.status_code == 201, created.text
    post = created.json()
    assert [m["id"] for m in post["media"]] == [second["id"], first["id"]]
    assert post["media"][0] == second
    assert (await backend.api.get(f"/posts/{post['id']}")).json()["media"] == post["media"]
    assert (await backend.api.get("/posts")).json()["items"][0]["media"] == post["media"]
    anonymous = await backend.api.get(first["url"])
    assert anonymous.status_code == 200 and anonymous.headers["cache-control"].startswith("public")


async def test_a_photo_needs_no_caption_but_a_post_or_message_needs_something(
        api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    photo = await uploaded(api, alice)
    post = await api.post("/posts", json={"media_ids": [photo["id"]]}, headers=alice.headers)
    assert post.status_code == 201, post.text
    assert (post.json()["body"], [m["id"] for m in post.json()["media"]]) == ("", [photo["id"]])
    for empty in ({}, {"body": ""}, {"body": "", "media_ids": []}):
        refused = await api.post("/posts", json=empty, headers=alice.headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), empty

    conversation = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    messages = f"/conversations/{conversation['id']}/messages"
    second = await uploaded(api, alice)
    sent = await api.post(messages, json={"media_ids": [second["id"]]}, headers=alice.headers)
    assert sent.status_code == 201, sent.text
    assert (sent.json()["body"], [m["id"] for m in sent.json()["media"]]) == ("", [second["id"]])
    refused = await api.post(messages, json={"body": ""}, headers=alice.headers)
    assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
    assert await stores.pg.fetchval("SELECT count(*) FROM posts") == 1
    assert await stores.pg.fetchval("SELECT count(*) FROM messages") == 1


async def test_unattached_upload_is_only_the_uploaders(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    media = await uploaded(api, alice)
    assert (await api.get(media["url"], headers=bob.headers)).status_code == 404
    assert (await api.get(media["url"])).status_code == 404
    assert (await api.get("/media/999999")).json()["code"] == "media_not_found"


async def _post_with(api, user, media_ids) -> httpx.Response:
    return await api.post("/posts", json={"body": "x", "media_ids": media_ids}, headers=user.headers)


async def test_attach_refusals_leave_no_post(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    mine = [(await uploaded(api, alice))["id"] for _ in range(5)]
    bobs = (await uploaded(api, bob))["id"]

    cases = [
        ([bobs], 403, "not_media_owner"),
        ([mine[0], 987654], 404, "media_not_found"),
        ([mine[0], mine[0]], 422, "validation_error"),
        (mine, 422, "validation_error"),  # five
    ]
    for ids, status, code in cases:
        response = await _post_with(api, alice, ids)
        assert (response.status_code, response.json()["code"]) == (status, code), (ids, response.text)
    assert await stores.pg.fetchval("SELECT count(*) FROM posts") == 0
    assert await stores.pg.fetchval("SELECT count(*) FROM media WHERE post_id IS NOT NULL") == 0

    assert (await _post_with(api, alice, [mine[0]])).status_code == 201
    twice = await _post_with(api, alice, [mine[1], mine[0]])
    assert (twice.status_code, twice.json()["code"]) == (409, "media_already_attached")
    assert await stores.pg.fetchval("SELECT count(*) FROM posts") == 1
    assert await stores.pg.fetchval("SELECT post_id FROM media WHERE id = $1", mine[1]) is None


async def test_media_urls_are_read_only(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    response = await api.post("/posts", json={"body": "x", "media_urls": ["https://cdn.example/a.png"]},
                              headers=alice.headers)
    assert response.status_code == 422
    post_id = await stores.pg.fetchval(
        "INSERT INTO posts (author_id, body, media_urls) VALUES ($1, 'old', '{https://cdn.example/a.png}') "
        "RETURNING id", alice.id)
    got = (await api.get(f"/posts/{post_id}")).json()
    assert got["media_urls"] == ["https://cdn.example/a.png"] and got["media"] == []


async def test_deleting_a_post_deletes_its_files(backend: Backend, stores: Stores):
    alice = await make_user(stores)
    kept = await uploaded(backend.api, alice)
    media = await uploaded(backend.api, alice)
    post = (await _post_with(backend.api, alice, [media["id"]])).json()
    assert len(await backend.stored_keys()) == 4
    assert (await backend.api.delete(f"/posts/{post['id']}", headers=alice.headers)).status_code == 204

    async def files_left() -> int:
        return len(await backend.stored_keys())

    assert await eventually(files_left, 2) == 2
    assert (await backend.api.get(media["url"])).status_code == 404
    assert (await backend.api.get(kept["url"], headers=alice.headers)).status_code == 200
    assert await stores.pg.fetchval("SELECT count(*) FROM media_garbage") == 0


# --- attach to messages ---------------------------------------------------------------


async def test_message_media_are_for_members_only_and_go_with_the_message(backend: Backend, stores: Stores):
    alice, bob, eve = await make_user(stores), await make_user(stores), await make_user(stores)
    conversation = (await backend.api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    media = await uploaded(backend.api, alice)
    sent = await backend.api.post(f"/conversations/{conversation['id']}/messages",
                                  json={"body": "photo", "media_ids": [media["id"]]}, headers=alice.headers)
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert message["media"] == [media]
    listed = (await backend.api.get(f"/conversations/{conversation['id']}/messages", headers=bob.headers)).json()
    assert listed["items"][0]["media"] == [media]

    for_bob = await backend.api.get(media["url"], headers=bob.headers)
    assert for_bob.status_code == 200 and for_bob.headers["cache-control"].startswith("private")
    assert (await backend.api.get(media["thumbnail_url"], headers=bob.headers)).status_code == 200
    assert (await backend.api.get(media["url"], headers=eve.headers)).json()["code"] == "not_a_member"
    assert (await backend.api.get(media["url"])).status_code == 401
    on_post = await _post_with(backend.api, alice, [media["id"]])
    assert on_post.status_code == 409

    deleted = await backend.api.delete(f"/messages/{message['id']}", headers=alice.headers)
    assert deleted.status_code == 204, deleted.text

    async def files_left() -> int:
        return len(await backend.stored_keys())

    assert await eventually(files_left, 0) == 0
    assert (await backend.api.get(media["url"], headers=bob.headers)).status_code == 404


async def test_an_img_src_reads_message_media_with_the_token_in_its_query(
        api: httpx.AsyncClient, server: ServerProcess, stores: Stores):
    # A page's <img src> cannot send the Authorization header: ?access_token= stands in for it,
    # under the same membership rule, and the token is not written to the access log.
    alice, bob, eve = await make_user(stores), await make_user(stores), await make_user(stores)
    conversation = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    media = await uploaded(api, alice)
    sent = await api.post(f"/conversations/{conversation['id']}/messages",
                          json={"body": "photo", "media_ids": [media["id"]]}, headers=alice.headers)
    assert sent.status_code == 201, sent.text

    as_img = await api.get(media["url"], params={"access_token": bob.token})
    assert as_img.status_code == 200 and as_img.headers["content-type"] == "image/jpeg"
    assert as_img.headers["cache-control"].startswith("private")
    thumbnail = await api.get(media["thumbnail_url"], params={"access_token": bob.token})
    assert thumbnail.status_code == 200
    refused = await api.get(media["url"], params={"access_token": eve.token})
    assert (refused.status_code, refused.json()["code"]) == (403, "not_a_member")
    forged = await api.get(media["url"], params={"access_token": bob.token[:-4] + "AAAA"})
    assert (forged.status_code, forged.json()["error"]) == (401, "Token invalide")
    assert (await api.get(media["url"], params={"access_token": ""})).status_code == 401

    async def logged() -> bool:
        return f"/media/{media['id']}/thumbnail" in server.output()

    assert await eventually(logged, True)
    assert bob.token not in server.output() and eve.token not in server.output()


async def test_only_the_sender_own_media_go_on_a_message(api: httpx.AsyncClient, stores: Stores):
    alice, bob = await make_user(stores), await make_user(stores)
    conversation = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    bobs = await uploaded(api, bob)
    sent = await api.post(f"/conversations/{conversation['id']}/messages",
                          json={"body": "not mine", "media_ids": [bobs["id"]]}, headers=alice.headers)
    assert (sent.status_code, sent.json()["code"]) == (403, "not_media_owner")
    assert await stores.pg.fetchval("SELECT count(*) FROM messages") == 0


# --- the sweep of unattached uploads --------------------------------------------------


async def test_sweep_removes_uploads_unattached_for_a_day_with_their_files(api: httpx.AsyncClient, stores: Stores,
                                                                         settings: Settings):
    keys = _disk_keys(settings)
    await stores.media.storage.delete(await keys())  # files earlier tests left
    alice = await make_user(stores)
    old, fresh, attached = [await uploaded(api, alice) for _ in range(3)]
    assert (await _post_with(api, alice, [attached["id"]])).status_code == 201
    await stores.pg.execute("UPDATE media SET created_at = now() - interval '25 hours' WHERE id = ANY($1)",
                            [old["id"], attached["id"]])
    assert len(await keys()) == 6

    assert await media_service.sweep_unattached(stores) == 1
    remaining = {r["id"] for r in await stores.pg.fetch("SELECT id FROM media")}
    assert remaining == {fresh["id"], attached["id"]}
    assert len(await keys()) == 4
    assert (await api.get(old["url"], headers=alice.headers)).status_code == 404
    # and a day later, the fresh one too
    later = datetime.now(UTC) + timedelta(seconds=settings.media_unattached_ttl + 60)
    assert await media_service.sweep_unattached(stores, now=later) == 1
    assert len(await keys()) == 2


async def test_openapi_describes_upload_and_the_media_object(api: httpx.AsyncClient):
    spec = (await api.get("/docs/openapi.json")).json()
    upload_op = spec["paths"]["/media"]["post"]
    assert {"image/jpeg", "multipart/form-data"} <= set(upload_op["requestBody"]["content"])
    ref = upload_op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rpartition("/")[2]]
    assert {"id", "width", "height", "blurhash", "url", "thumbnail_url", "size_bytes"} <= set(schema["properties"])
    assert "/media/{media_id}/thumbnail" in spec["paths"]


# --- the storage interface itself -------------------------------------------------------


async def test_storage_puts_gets_and_deletes_on_both_backends(backend: Backend):
    storage = backend.storage
    await storage.put("ab/one.jpg", b"bytes", "image/jpeg")
    assert await storage.get("ab/one.jpg") == b"bytes"
    assert await storage.get("ab/missing.jpg") is None
    await storage.delete(["ab/one.jpg", "ab/missing.jpg"])  # a key already gone is no error
    assert await storage.get("ab/one.jpg") is None
    assert await backend.stored_keys() == []


async def test_disk_storage_refuses_keys_outside_its_directory(tmp_path: Path):
    from nubo_backend.media.storage import DiskStorage

    storage = DiskStorage(tmp_path / "media")
    with pytest.raises(ValueError):
        await storage.put("../escape.jpg", b"x", "image/jpeg")
    assert not (tmp_path / "escape.jpg").exists()


async def test_uploads_work_under_several_server_workers(start_server, stores: Stores):
    # Sanic's workers are daemonic processes there: the image pool is threads (imaging.ImagePool).
    server = start_server(args=["--workers", "2"])
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        responses = [await upload(api, alice, jpeg(300, 200)) for _ in range(4)]
        assert [r.status_code for r in responses] == [201] * 4
        bomb = await upload(api, alice, png_bomb(), "image/png")
        assert bomb.json()["code"] == "too_many_pixels"


def _stat(path: Path) -> list[str]:
    return path.read_text().rpartition(")")[2].split()  # fields from the third (state) on


def _tree(root_pid: int) -> list[int]:
    """root_pid and every process descended from it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(entry / "stat")[1]), []).append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                pass
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending += children.get(pid, [])
    return tree


def _tree_nice_values(root_pid: int) -> dict[int, int]:
    """{task id: nice} for every thread of root_pid and of its descendants, from /proc."""
    return {int(task.name): int(_stat(task / "stat")[16])
            for pid in _tree(root_pid) for task in Path(f"/proc/{pid}/task").iterdir()}


@pytest.mark.parametrize("workers", [1, 2], ids=["worker-process", "worker-threads"])
async def test_image_work_runs_nicer_than_the_event_loop(workers: int, start_server, stores: Stores):
    # On few cores an image being resized would otherwise take CPU from the loop's requests.
    server = start_server({"NUBO_MEDIA_WORKER_NICE": "7"}, args=["--workers", str(workers)])
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        assert (await upload(api, alice, jpeg(300, 200))).status_code == 201
    nice = _tree_nice_values(server.proc.pid)
    assert 7 in nice.values(), nice
    assert nice[server.proc.pid] == 0


async def test_a_server_killed_with_9_takes_its_image_workers_with_it(start_server, stores: Stores):
    # Orphaned workers would live on holding the server's stdout: a supervisor reading it (or
    # `serve --instances`' caller) would wait for an end that never comes.
    server = start_server()
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        assert (await upload(api, alice, jpeg(300, 200))).status_code == 201
    workers = _tree(server.proc.pid)[1:]
    assert workers, "the server has its image worker (and multiprocessing's resource tracker)"
    server.proc.kill()
    server.proc.wait()
    def running(pid: int) -> bool:
        stat = Path(f"/proc/{pid}/stat")
        return stat.exists() and _stat(stat)[0] != "Z"  # (a zombie has exited)

    alive = workers
    for _ in range(50):
        alive = [pid for pid in alive if running(pid)]
        if not alive:
            break
        await asyncio.sleep(0.1)
    assert alive == []


async def test_post_created_and_message_created_events_carry_the_media(
    api: httpx.AsyncClient, stores: Stores, server
):
    from nubo_backend.realtime.events import events_after
    from tests.e2e.ws_support import frames_until, open_ws

    alice, bob = await make_user(stores), await make_user(stores)
    assert (await api.post(f"/users/{alice.id}/follow", headers=bob.headers)).status_code in (200, 201)
    on_post, on_message = await uploaded(api, alice), await uploaded(api, alice)
    phone = await open_ws(server, bob)  # a post to followers is live-only: bob holds a socket
    try:
        assert (await _post_with(api, alice, [on_post["id"]])).status_code == 201
        live = (await frames_until(phone, lambda f: isinstance(f, dict) and f.get("type") == "post.created"))[-1]
    finally:
        await phone.close()
    assert live["data"]["post"]["media"] == [on_post]
    conversation = (await api.post("/conversations", json={"user_id": bob.id}, headers=alice.headers)).json()
    sent = await api.post(f"/conversations/{conversation['id']}/messages",
                          json={"body": "hi", "media_ids": [on_message["id"]]}, headers=alice.headers)
    assert sent.status_code == 201

    async def bobs_media_events() -> dict[str, list]:
        events = await events_after(stores, bob.id, 0) or []
        by_type = {e["type"]: e["data"] for e in events}
        return {"message.created": by_type.get("message.created", {}).get("media")}

    expected = {"message.created": [on_message]}
    assert await eventually(bobs_media_events, expected) == expected


async def test_files_of_an_erased_account_are_queued_by_the_cascade_and_collected(
    api: httpx.AsyncClient, stores: Stores, settings: Settings
):
    keys = _disk_keys(settings)
    await stores.media.storage.delete(await keys())
    alice = await make_user(stores)
    media = await uploaded(api, alice)
    assert (await _post_with(api, alice, [(await uploaded(api, alice))["id"]])).status_code == 201
    await stores.pg.execute("DELETE FROM users WHERE id = $1", alice.id)  # posts and media go by cascade
    assert await stores.pg.fetchval("SELECT count(*) FROM media_garbage") == 4
    assert await media_service.collect_garbage(stores) == 4
    assert await keys() == [] and await stores.pg.fetchval("SELECT count(*) FROM media_garbage") == 0
    assert (await api.get(media["url"])).status_code == 404


def test_settings_refuse_an_unknown_backend_and_s3_without_a_bucket(settings: Settings):
    from nubo_backend.settings import SettingsError

    with pytest.raises(SettingsError, match="NUBO_MEDIA_BACKEND"):
        settings.replace(media_backend="ftp").check()
    with pytest.raises(SettingsError, match="NUBO_MEDIA_S3_BUCKET"):
        settings.replace(media_backend="s3", media_s3_bucket="").check()
    assert settings.replace(media_s3_secret_key="hush").masked()["media_s3_secret_key"] == "****"


async def test_the_same_media_raced_onto_two_posts_lands_on_one(api: httpx.AsyncClient, stores: Stores):
    alice = await make_user(stores)
    for _ in range(5):
        media = await uploaded(api, alice)
        responses = await asyncio.gather(*(_post_with(api, alice, [media["id"]]) for _ in range(2)))
        assert sorted(r.status_code for r in responses) == [201, 409]
    assert await stores.pg.fetchval("SELECT count(*) FROM posts") == 5


async def test_each_instance_sweeps_unattached_uploads_periodically(start_server, stores: Stores, settings: Settings):
    keys = _disk_keys(settings)
    await stores.media.storage.delete(await keys())
    server = start_server({"NUBO_MEDIA_SWEEP_INTERVAL": "0.2", "NUBO_MEDIA_UNATTACHED_TTL": "1"})
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as api:
        media = await uploaded(api, alice)
        assert len(await keys()) == 2

        async def uploads_left() -> int:
            return await stores.pg.fetchval("SELECT count(*) FROM media")

        assert await eventually(uploads_left, 0, within=10) == 0
        assert await eventually(keys, [], within=5) == []
        assert (await api.get(media["url"], headers=alice.headers)).status_code == 404
