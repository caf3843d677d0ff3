"""Fixtures of the sync facade suite. ``omniq``, ``omniq_sync``, ``omniq_redis_url`` come
from omniq.pytest_plugin, ``raw`` from tests/conftest.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest


@pytest.fixture
def server_addr(omniq_redis_url: str) -> tuple[str, int]:
    """``(host, port)`` of the test server, for code that connects with host/port."""
    parts = urlsplit(omniq_redis_url)
    return parts.hostname or "127.0.0.1", parts.port or 6379


@pytest.fixture(autouse=True)
def _no_leaked_loop_threads() -> Iterator[None]:
    """Every test closes the clients it opens: no omniq loop thread survives it."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.name == "omniq-loop"]
    for t in leaked:
        t.join(5)
    assert not [t for t in leaked if t.is_alive()], "an OmniqClient was not closed"
