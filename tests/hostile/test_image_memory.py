"""Issue #26, item 8: decoding an upload costs the image worker bounded memory. A 166 KB
single-colour 6320 x 6320 RGBA PNG cost it 554 MiB, 60 times an hour per account, inside a
768 MB container."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import httpx
from PIL import Image

from nubo_backend.stores import Stores
from tests.factories import make_user

MIB = 1024 * 1024


def single_colour_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (side, side), (10, 120, 200, 128)).save(out, "PNG")
    return out.getvalue()


def _image_workers(server_pid: int) -> list[int]:
    """The server's image worker processes (multiprocessing spawns them), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(stat[1]) == server_pid:
                if b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in bytes (VmHWM: the process's peak resident memory)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _address_space_limit(pid: int) -> str:
    line = next(x for x in Path(f"/proc/{pid}/limits").read_text().splitlines() if x.startswith("Max address space"))
    return line.split()[3]


async def _upload(api: httpx.AsyncClient, user, data: bytes) -> httpx.Response:
    return await api.post("/media", content=data, headers={**user.headers, "Content-Type": "image/png"})


async def test_the_issues_png_is_refused_before_decoding_and_the_worker_stays_small(
        start_server, stores: Stores) -> None:
    server = start_server()
    alice = await make_user(stores)
    bomb = await asyncio.to_thread(single_colour_png, 6320)
    assert len(bomb) < 200_000
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as api:
        refused = await _upload(api, alice, bomb)
        assert (refused.status_code, refused.json()["code"]) == (422, "too_many_pixels"), refused.text
        # The largest PNG taken (16 million pixels, RGBA) goes through, and bounds the peak.
        largest = await _upload(api, alice, await asyncio.to_thread(single_colour_png, 4000))
        assert largest.status_code == 201, largest.text
    (worker,) = _image_workers(server.proc.pid)
    assert _status(worker, "VmHWM") < 256 * MIB  # was 554 MiB for the refused one alone
    assert _address_space_limit(worker) == str(512 * MIB)
    assert await stores.pg.fetchval("SELECT count(*) FROM media") == 1  # the 4000 x 4000 one only
    assert "Traceback" not in server.output()


async def test_an_image_past_the_workers_memory_limit_is_refused_and_the_worker_lives_on(
        start_server, stores: Stores) -> None:
    # The pixel cap raised past the issue's PNG: the address-space limit is what holds.
    server = start_server({"NUBO_MEDIA_MAX_PIXELS_DECODED": "40000000", "NUBO_MEDIA_WORKER_MEMORY": str(256 * MIB)})
    alice = await make_user(stores)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as api:
        refused = await _upload(api, alice, await asyncio.to_thread(single_colour_png, 6320))
        assert (refused.status_code, refused.json()["code"]) == (422, "image_too_large"), refused.text
        workers = _image_workers(server.proc.pid)
        after = await _upload(api, alice, await asyncio.to_thread(single_colour_png, 600))
        assert after.status_code == 201, after.text
    assert _image_workers(server.proc.pid) == workers  # the same worker: no crash, no respawn
    assert await stores.pg.fetchval("SELECT count(*) FROM media") == 1
    assert "Traceback" not in server.output()
