"""Photo uploads against a real `nubo serve`: uploads/s and latency for a 2 MP JPEG, and /ping
latency while the uploads run (decoding and resizing happen in worker processes; if they ran
on the event loop, /ping would wait behind each image).

Each round measures, back to back on the same machine: /ping alone (one client), then
--concurrency clients uploading with one /ping client beside them. The /ping client runs in
a process of its own, so that the upload clients' sending does not delay it client-side. The machine drifts, so
compare within a round (the ratio column) and quote medians over rounds.

    .venv/bin/python bench/bench_media.py --duration 10 --concurrency 4 --rounds 3 --workers 1

Upload clients are the project's client (one `Nubo` each, `upload_media`); the /ping client
is a plain httpx GET.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path

from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_login import PASSWORD, Result, drive, make_accounts, own_server, percentile, ping_alone  # noqa: E402

from nubo_backend.client import Nubo  # noqa: E402


def two_megapixel_jpeg(width: int = 1632, height: int = 1224) -> bytes:
    """A photo-like 2 MP JPEG: detail everywhere (a fractal under a colour gradient), so that
    it weighs and decodes like a photo rather than like a flat colour."""
    detail = Image.effect_mandelbrot((width, height), (-2.0, -1.2, 1.0, 1.2), 200)
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (detail, gradient, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    draw = ImageDraw.Draw(image)
    for i in range(0, width, 40):
        draw.line((i, 0, width - i, height), fill=(255 - i % 255, i % 255, 128), width=3)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


def ping_process(url: str, duration: float) -> tuple[list[float], int, float]:
    """/ping from a process of its own, so that the upload clients' work (sending megabytes)
    does not delay it on the client side: what it measures is the server's loop."""
    result = asyncio.run(ping_alone(url, duration))
    return result.latencies, result.errors, result.elapsed


async def pings_from(pinger: ProcessPoolExecutor, name: str, url: str, duration: float) -> Result:
    pings = Result(name)
    loop = asyncio.get_running_loop()
    pings.latencies, pings.errors, pings.elapsed = await loop.run_in_executor(pinger, ping_process, url, duration)
    return pings


async def uploads_with_ping(
    pinger: ProcessPoolExecutor, url: str, duration: float, usernames: list[str], photo: bytes
) -> tuple[Result, Result]:
    uploads = Result(f"POST /media 2 MP JPEG ({len(usernames)} clients)")
    clients = [await Nubo.login(url, name, PASSWORD, timeout=120) for name in usernames]
    try:
        started = time.perf_counter()
        deadline = started + duration

        def upload(client: Nubo):
            async def send() -> bool:
                await client.upload_media(photo, "image/jpeg")  # raises if refused
                return True
            return send

        ping = asyncio.ensure_future(pings_from(pinger, "/ping during uploads (1 client)", url, duration))
        await asyncio.gather(*(drive(uploads, deadline, upload(client)) for client in clients))
        uploads.elapsed = time.perf_counter() - started
        pings = await ping
    finally:
        for client in clients:
            await client.aclose()
    return uploads, pings


def ms(result: Result, q: float | None) -> float:
    samples = [x * 1000 for x in result.latencies]
    return statistics.median(samples) if q is None else percentile(samples, q)


async def run(args: argparse.Namespace) -> None:
    photo = two_megapixel_jpeg()
    media_dir = tempfile.mkdtemp(prefix="nubo-bench-media-")
    os.environ.update({  # read by the server own_server starts
        "NUBO_MEDIA_DISK_PATH": media_dir,
        "NUBO_MEDIA_WORKERS": str(args.workers),
        "NUBO_MEDIA_WORKER_NICE": str(args.nice),
        "NUBO_MEDIA_UPLOADS_PER_HOUR": "100000000",
    })
    rows = []
    async with AsyncExitStack() as stack:
        url = args.url or await stack.enter_async_context(own_server(args))
        usernames = await make_accounts(url, args.concurrency)
        async with await Nubo.login(url, usernames[0], PASSWORD, timeout=120) as client:  # warm the workers
            await client.upload_media(photo, "image/jpeg")
        pinger = stack.enter_context(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")))
        for n in range(1, args.rounds + 1):
            alone = await pings_from(pinger, "/ping alone (1 client)", url, args.duration)
            uploads, pings = await uploads_with_ping(pinger, url, args.duration, usernames, photo)
            rows.append((n, alone, uploads, pings))
    print(f"\nMedia benchmark: {len(photo) / 1e6:.2f} MB 2 MP JPEG (1632x1224), {args.concurrency} upload "
          f"clients, {args.workers} image worker(s) at nice {args.nice}, {args.duration:g}s per phase, "
          f"{args.rounds} rounds\n")
    print("| round | uploads/s | upload p50 ms | upload p99 ms | errors | /ping alone p50/p99 ms "
          "| /ping during p50/p99 ms | p99 ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, alone, uploads, pings in rows:
        rate = len(uploads.latencies) / uploads.elapsed
        print(f"| {n} | {rate:.1f} | {ms(uploads, None):.0f} | {ms(uploads, 0.99):.0f} | {uploads.errors} "
              f"| {ms(alone, None):.2f} / {ms(alone, 0.99):.2f} | {ms(pings, None):.2f} / {ms(pings, 0.99):.2f} "
              f"| {ms(pings, 0.99) / ms(alone, 0.99):.2f} |")
    med = statistics.median
    print(f"| median | {med(len(u.latencies) / u.elapsed for _, _, u, _ in rows):.1f} "
          f"| {med(ms(u, None) for _, _, u, _ in rows):.0f} | {med(ms(u, 0.99) for _, _, u, _ in rows):.0f} | "
          f"| {med(ms(a, None) for _, a, _, _ in rows):.2f} / {med(ms(a, 0.99) for _, a, _, _ in rows):.2f} "
          f"| {med(ms(p, None) for _, _, _, p in rows):.2f} / {med(ms(p, 0.99) for _, _, _, p in rows):.2f} "
          f"| {med(ms(p, 0.99) / ms(a, 0.99) for _, a, _, p in rows):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running server (default: start one of our own)")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="NUBO_MEDIA_WORKERS of our own server")
    parser.add_argument("--nice", type=int, default=10, help="NUBO_MEDIA_WORKER_NICE of our own server")
    parser.add_argument("--pg-admin-dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--mongo-url", default=None)
    parser.add_argument("--argon2-time-cost", type=int, default=1)
    parser.add_argument("--argon2-memory-cost", type=int, default=8192)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
