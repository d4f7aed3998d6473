"""A WebSocket client for trying /ws by hand, where websocat is not packaged (Debian 12):

    .venv/bin/python scripts/ws.py ws://localhost:8080/ws "$TOKEN"            # print frames; type to send
    .venv/bin/python scripts/ws.py ws://localhost:8081/ws "$TOKEN" --frames 3  # exit after 3 frames
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus


def _typed_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str]:
    """Lines typed on the terminal, read by a daemon thread: a blocked `readline` in the
    loop's executor would hold `asyncio.run`'s shutdown, and Ctrl-C, until Enter was pressed."""
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))

    threading.Thread(target=read, name="stdin", daemon=True).start()
    return lines


async def run(url: str, token: str, frames: int | None) -> None:
    # close_timeout: after Ctrl-C, wait at most a second for the server to answer the close.
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}, close_timeout=1) as ws:

        async def send_typed_lines(lines: asyncio.Queue[str]) -> None:
            # Each line typed is sent as one text frame (JSON frames are commands, docs/realtime.md).
            while True:
                await ws.send(await lines.get())

        typing = None
        if sys.stdin.isatty():
            typing = asyncio.create_task(send_typed_lines(_typed_lines(asyncio.get_running_loop())))
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
    except InvalidStatus as exc:
        status = exc.response.status_code
        hint = " (the token is missing, invalid or expired: `nubo token <username>` mints one)" if status == 401 else ""
        sys.exit(f"refused: HTTP {status}{hint}")
    except ConnectionClosedError as exc:
        sys.exit(f"closed by the server: {exc.rcvd.code if exc.rcvd else 'no close frame'} "
                 f"{exc.rcvd.reason if exc.rcvd else ''}".rstrip())
    except OSError as exc:
        sys.exit(f"cannot connect to {options.url}: {exc.strerror or exc}")


if __name__ == "__main__":
    main()
