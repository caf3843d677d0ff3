"""The asyncio core: :class:`AsyncOmniq` (client) and the worker."""

from omniq.aio.client import AsyncOmniq

__all__ = ["AsyncOmniq"]
