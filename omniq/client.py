"""``from omniq.client import OmniqClient``: the official OmniQ client's import path."""

from omniq.sync.client import OmniqClient

__all__ = ["OmniqClient"]
