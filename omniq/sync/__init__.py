"""The blocking facade: :class:`OmniqClient` runs :class:`~omniq.AsyncOmniq` on a private
event loop thread (see ``docs/sync.md``)."""

from omniq.sync.client import OmniqClient, SyncClientError

__all__ = ["OmniqClient", "SyncClientError"]
