"""Fixtures of the event log suite: ``backend`` is a real SQLite file or a fresh table in
the machine's PostgreSQL (127.0.0.1:5432, trust auth, database ``test``;
``$OMNIQ_TEST_POSTGRES_DSN`` for another). Without a reachable PostgreSQL the PostgreSQL
cases are skipped locally and fail under CI (``CI=true``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eventlog_util import Backend, need_postgres


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "postgres":
        need_postgres()
    b = Backend(request.param, tmp_path)
    try:
        yield b
    finally:
        b.drop()
