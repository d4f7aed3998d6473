"""Images for the media tests, made with Pillow, and a real local S3-compatible server (moto)."""

from __future__ import annotations

import io
import subprocess
import sys
import zlib
from struct import pack

from PIL import Image

from tests.support import free_port, start_process, wait_for_port


def jpeg(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30), exif: bytes | None = None,
         quality: int = 90) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    # some structure, so that blurhash and the encoder have something to chew on
    for x in range(0, width, 8):
        for y in range(height):
            image.putpixel((x, y), (0, 0, 0))
    image.save(out, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return out.getvalue()


def png(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (10, 120, 200, 128)[: len(mode)]).save(out, "PNG")
    return out.getvalue()


def image_bytes(fmt: str, width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 160, 60)).save(out, fmt)
    return out.getvalue()


def exif_with_gps(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    if orientation:
        exif[0x0112] = orientation
    exif.get_ifd(0x8825).update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)})  # GPSInfo
    return exif.tobytes()


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG header announcing width x height, with one tiny compressed row of data: a few
    KB that would decode to width * height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return pack(">I", len(data)) + kind + data + pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    rows = zlib.compress(b"\x00" * ((width + 7) // 8 + 1) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


class MotoServer:
    """moto in server mode: a real S3-compatible HTTP server on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        self.proc = start_process(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=30, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # only the pid we started
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
