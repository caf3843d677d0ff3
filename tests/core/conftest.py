"""Fixtures of the core suite. ``omniq``, ``raw`` and ``omniq_redis_url`` come from
omniq.testing.pytest_plugin and tests/conftest.py; every test drives time through ``now_ms=``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from core_util import Dump, dump_db


@pytest.fixture
def dump(raw: redis.Redis) -> Callable[[], Dump]:
    """``dump()`` returns a snapshot of every key (type, value, PTTL)."""
    return lambda: dump_db(raw)
