"""Fixtures of the bad-input matrix: a populated database and key-dump comparisons."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model"))

from inputs_util import World, populate, populate_deps, populate_schedules

from omniq import AsyncOmniq


@pytest.fixture
async def world(omniq: AsyncOmniq, raw: redis.Redis) -> World:
    """Queue ``q`` with a job in every lane, a grouped backlog, two leases and a counter."""
    return await populate(omniq, raw)


@pytest.fixture
async def sworld(omniq: AsyncOmniq, raw: redis.Redis) -> World:
    """``world`` plus schedules of ``q`` (s1, sa, so, sp) and the partitioned queue ``pq``."""
    return await populate_schedules(omniq, raw)


@pytest.fixture
async def dworld(omniq: AsyncOmniq, raw: redis.Redis) -> World:
    """``world`` plus dependency state on ``q`` and ``q2`` (inputs_util.populate_deps)."""
    return await populate_deps(omniq, raw)
