"""Shared test helpers. The server and client fixtures come from omniq.pytest_plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis


@pytest.fixture
def raw(omniq_redis_url: str) -> Iterator[redis.Redis]:
    """A plain redis-py client on the test database, for checking raw keys."""
    client = redis.Redis.from_url(omniq_redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()
