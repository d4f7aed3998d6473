"""Images in, clean images out: decode, verify, orient, re-encode, resize, blurhash.

Nothing from the upload survives but its pixels: the bytes are decoded by Pillow whatever
their name or header claims, turned upright by their EXIF orientation, and written anew,
which leaves behind EXIF (GPS included), comments, colour chunks and anything appended after
the image (a polyglot's script). The size is read from the header and refused before any
pixel is decoded when it is too large, which is what defuses a decompression bomb.

Memory is bounded three ways (issue #26, item 8: a 166 KB single-colour 6320 x 6320 RGBA PNG
cost a worker 554 MiB). A pixel cap per format: JPEG is decoded already scaled down (`draft`)
and takes `max_pixels`; PNG, WebP and GIF are decoded whole and take `max_pixels_decoded`.
The decoded image is scaled down to the original's size before anything else copies it. And
a worker process runs under an address-space limit (RLIMIT_AS, `worker_memory`): whatever
still needs more fails there with MemoryError, refused as `image_too_large`, instead of
taking the container's memory from the server.

This work is CPU-bound and runs in worker processes (`ImagePool`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import multiprocessing
import os
import resource
import signal
import sys
import threading
import warnings
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import blurhash
from PIL import Image, ImageOps, UnidentifiedImageError

from nubo_backend.serving.children import die_with_parent

# What we accept, by the format Pillow finds in the bytes: no other decoder is even tried.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
# Decoded at reduced scale (1/2, 1/4, 1/8: `draft`), so a large one costs little memory.
SCALED_DECODE = ("JPEG",)
# A 1 x 60,000 strip is no photo, and lays out as nothing a timeline can show.
MAX_ASPECT_RATIO = 20
JPEG_QUALITY = 85
BLURHASH_COMPONENTS = (4, 3)
BLURHASH_SIDE = 64  # blurhash needs no detail: computed on a tiny copy


class ImageRefused(Exception):
    """The upload is not an image we take; code and message go to the client as a 422."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Limits:
    max_pixels: int  # formats decoded at reduced scale (JPEG)
    original_side: int
    thumbnail_side: int
    max_pixels_decoded: int = 16_000_000  # formats decoded whole (PNG, WebP, GIF): 64 MB as RGBA
    worker_memory: int = 0  # bytes of address space per worker process (0: no limit)

    def pixels_for(self, fmt: str | None) -> int:
        return self.max_pixels if fmt in SCALED_DECODE else min(self.max_pixels, self.max_pixels_decoded)


@dataclass(frozen=True)
class Encoded:
    data: bytes
    width: int
    height: int
    etag: str


@dataclass(frozen=True)
class Processed:
    content_type: str
    extension: str
    original: Encoded
    thumbnail: Encoded
    blurhash: str


def _check_size(width: int, height: int, fmt: str | None, limits: Limits) -> None:
    if width < 1 or height < 1:
        raise ImageRefused("invalid_image", "The image has no pixels")
    if width * height > (cap := limits.pixels_for(fmt)):
        raise ImageRefused("too_many_pixels", f"A {fmt} image may have at most {cap} pixels")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageRefused("bad_aspect_ratio", f"One side is more than {MAX_ASPECT_RATIO} times the other")


def _decode(data: bytes, limits: Limits) -> Image.Image:
    """The upload's first frame, fully decoded and upright; ImageRefused when it is not one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:  # reads the header only
                _check_size(*probe.size, probe.format, limits)
                probe.verify()  # structure and checksums, without decoding the pixels
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            if image.format == "JPEG":
                # Let the decoder scale down by 1/2, 1/4 or 1/8 when that still covers the target.
                image.draft("RGB", (limits.original_side, limits.original_side))
            image.seek(0)
            image.load()
            ImageOps.exif_transpose(image, in_place=True)  # (not a copy of the whole decoded image)
            return image
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("too_many_pixels", f"The image has more than {limits.max_pixels} pixels") from None
    except UnidentifiedImageError:
        raise ImageRefused("not_an_image", "The file is not a JPEG, PNG, WebP or GIF image") from None
    except MemoryError:
        raise _too_large() from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        raise ImageRefused("invalid_image", "The image is truncated or corrupt") from None


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _encode(image: Image.Image, side: int, fmt: str) -> Encoded:
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)  # never enlarges
    out = io.BytesIO()
    if fmt == "PNG":
        copy.save(out, "PNG", compress_level=6)
    else:
        copy.save(out, "JPEG", quality=JPEG_QUALITY, optimize=False)
    data = out.getvalue()
    return Encoded(data, copy.width, copy.height, hashlib.sha256(data).hexdigest()[:32])


def _too_large() -> ImageRefused:
    return ImageRefused("image_too_large", "The image needs more memory to process than an upload may use")


def process_image(data: bytes, limits: Limits) -> Processed:
    """Check and re-encode one upload: an original (long side at most original_side), a
    thumbnail (thumbnail_side) and a blurhash. Runs in a worker process."""
    try:
        return _process(data, limits)
    except MemoryError:  # past the worker's RLIMIT_AS: this upload only, the worker lives on
        raise _too_large() from None


def _process(data: bytes, limits: Limits) -> Processed:
    image = _decode(data, limits)
    if image.mode in ("RGB", "RGBA", "L", "LA"):  # (a palette image is resized once converted)
        # Down to the original's size first: every copy below is then of that size, not of
        # the decoded one (Pillow's `reduce` step keeps this pass itself cheap).
        image.thumbnail((limits.original_side, limits.original_side), Image.Resampling.LANCZOS)
    if _has_alpha(image):
        image, fmt, content_type, extension = image.convert("RGBA"), "PNG", "image/png", "png"
    else:
        image, fmt, content_type, extension = image.convert("RGB"), "JPEG", "image/jpeg", "jpg"
    original = _encode(image, limits.original_side, fmt)
    thumbnail = _encode(image, limits.thumbnail_side, fmt)
    tiny = image.convert("RGB")
    tiny.thumbnail((BLURHASH_SIDE, BLURHASH_SIDE), Image.Resampling.BILINEAR)
    placeholder = blurhash.encode(tiny, *BLURHASH_COMPONENTS)
    return Processed(content_type, extension, original, thumbnail, placeholder)


def _start_worker(max_pixels: int, nice: int, server_pid: int, memory: int = 0) -> None:
    die_with_parent(server_pid)  # a server killed with -9 takes its workers with it
    if memory > 0:
        # Address space, not RSS: the only limit the kernel enforces per process. A hostile
        # image then ends in MemoryError in this worker, not in the OOM killer's choice.
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # A terminal's Ctrl-C reaches the whole process group: the server stops its workers itself
    # (they would otherwise print a KeyboardInterrupt traceback each). Started with SIGINT
    # blocked (warm_up), so that one during their start-up is dropped here, not raised there.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # Pillow's own bomb check, at our limit (it raises past twice this, warns past it).
    Image.MAX_IMAGE_PIXELS = max_pixels
    _lower_priority(nice)


def _lower_priority(nice: int) -> None:
    """Yield the CPU to the event loop: where cores are few, an image being resized would
    otherwise delay every request the loop serves (its p99). On Linux a nice value belongs
    to a thread, so this works for a worker thread as for a worker process."""
    if nice <= 0:
        return
    if sys.platform == "linux":
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    elif multiprocessing.current_process().name != "MainProcess":
        os.nice(nice)  # elsewhere only a whole worker process can be lowered


def _ready() -> bool:
    return True


class ImagePool:
    """Worker processes for process_image. Spawned, not forked: the server has threads and
    open sockets that a fork would copy.

    Under `serve --workers N` (N > 1) each Sanic worker is a daemonic process, which may not
    have children: there the pool is threads instead. Pillow lets go of the GIL while it
    decodes, resizes and encodes, so the event loop still runs beside them."""

    def __init__(self, workers: int, limits: Limits, nice: int = 0) -> None:
        self.workers = max(1, workers)
        self.limits = limits
        self.nice = nice
        self._executor = self._new_executor()

    def _new_executor(self) -> Executor:
        if multiprocessing.current_process().daemon:
            # (No RLIMIT_AS here: it would hold the whole server process; the pixel caps do.)
            Image.MAX_IMAGE_PIXELS = max(self.limits.max_pixels, self.limits.max_pixels_decoded)
            return ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="nubo-image",
                                      initializer=_lower_priority, initargs=(self.nice,))
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(max(self.limits.max_pixels, self.limits.max_pixels_decoded), self.nice, os.getpid(),
                      self.limits.worker_memory),
        )

    def warm_up(self) -> None:
        """Start the workers now rather than on the first upload."""
        # Blocked, not ignored: a Ctrl-C meanwhile still reaches this process (once unblocked),
        # while the workers inherit the mask until _start_worker ignores it.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(self.workers):
                self._executor.submit(_ready)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    async def process(self, data: bytes) -> Processed:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, process_image, data, self.limits)
        except BrokenProcessPool:
            # A worker died (out of memory on a hostile file, killed): the next upload gets a
            # fresh pool; this one is refused like a bad image rather than retried.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
            raise ImageRefused("invalid_image", "The image could not be processed") from None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
