"""Fixtures of the worker suite. ``omniq``, ``raw`` and ``omniq_redis_url`` come from
omniq.testing.pytest_plugin and tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from worker_util import Proc


@pytest.fixture
def spawn(omniq_redis_url: str, tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """``spawn(mode, queue, *args)`` starts ``worker_proc.py`` on the test database.

    Every process still alive at teardown is killed.
    """
    procs: list[Proc] = []

    def start(mode: str, queue: str, *args: object) -> Proc:
        log = tmp_path / f"worker-{len(procs)}-{mode}.log"
        proc = Proc([mode, omniq_redis_url, queue, *map(str, args)], log)
        procs.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in procs:
            proc.close()
