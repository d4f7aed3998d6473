"""A WebSocket client for trying /ws by hand, where websocat is not packaged (Debian 12):

    .venv/bin/python scripts/ws.py ws://localhost:8080/ws "$TOKEN"            # print frames; type to send
    .venv/bin/python scripts/ws.py ws://localhost:8081/ws "$TOKEN" --frames 3  # exit after 3 frames
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from websockets.asyncio.client import connect


async def run(url: str, token: str, frames: int | None) -> None:
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:

        async def send_typed_lines() -> None:
            # Each line typed is sent as one text frame (JSON frames are commands, docs/realtime.md).
            loop = asyncio.get_running_loop()
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                await ws.send(line.rstrip("\n"))

        typing = asyncio.create_task(send_typed_lines()) if sys.stdin.isatty() else None
        seen = 0
        async for frame in ws:
            print(frame, flush=True)
            seen += 1
            if frames is not None and seen >= frames:
                break
        if typing is not None:
            typing.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the frames of nubo's /ws; typed lines are sent.")
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--frames", type=int, default=None, help="exit after this many frames")
    options = parser.parse_args()
    try:
        asyncio.run(run(options.url, options.token, options.frames))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
