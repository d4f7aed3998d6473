"""Photos in posts and messages: upload, check, strip, resize, store, serve.

`Media` is the domain's pair of shared resources, opened with the stores and hung on them
(`stores.media`): the file storage and the pool of image workers.
"""

from __future__ import annotations

from dataclasses import dataclass

from nubo_backend.media.imaging import ImagePool, Limits
from nubo_backend.media.storage import Storage, open_storage
from nubo_backend.settings import Settings


@dataclass
class Media:
    storage: Storage
    images: ImagePool

    async def close(self) -> None:
        self.images.close()
        await self.storage.close()


def open_media(settings: Settings) -> Media:
    """The storage the settings name, and image workers (started on first use)."""
    limits = Limits(settings.media_max_pixels, settings.media_original_side, settings.media_thumbnail_side,
                    settings.media_max_pixels_decoded, settings.media_worker_memory)
    return Media(open_storage(settings), ImagePool(settings.media_workers, limits, settings.media_worker_nice))
