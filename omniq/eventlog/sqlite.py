""":class:`SQLiteSink`: the event log in an SQLite file (standard library ``sqlite3``).

Every call to the database runs in a worker thread (``asyncio.to_thread``), so the event
loop is never blocked; one connection, used by one thread at a time (a lock), in WAL mode
with ``synchronous=FULL``: a committed batch survives a crash of the process and of the
machine, and readers can query the file while the log writes.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Sequence

from omniq.errors import InvalidArgument
from omniq.eventlog._schema import (
    DEFAULT_TABLE,
    Row,
    check_table,
    create_statements,
    insert_statement,
    rows,
)
from omniq.eventlog._sink import Sink
from omniq.types import JobEvent

__all__ = ["SQLiteSink"]


class SQLiteSink(Sink):
    """Events into ``table`` (default ``omniq_events``) of the SQLite file ``path``.

    ``busy_timeout_s``: how long a write waits for another writer of the same file
    before it fails (and is retried by the event log).
    """

    def __init__(self, path: str | os.PathLike[str], *, table: str = DEFAULT_TABLE,
                 busy_timeout_s: float = 30.0) -> None:
        if isinstance(busy_timeout_s, bool) or not isinstance(busy_timeout_s, int | float) \
                or not 0 <= busy_timeout_s < float("inf"):
            raise InvalidArgument("busy_timeout_s must be a number of seconds >= 0")
        self.path = os.fspath(path)
        self.table = check_table(table, schema_allowed=False)
        self._timeout = float(busy_timeout_s)
        self._insert = insert_statement(self.table, "?")
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one thread uses the connection at a time

    def __repr__(self) -> str:
        return f"SQLiteSink({self.path!r}, table={str(self.table)!r})"

    async def open(self) -> None:
        await asyncio.to_thread(self._open)

    async def write(self, events: Sequence[JobEvent]) -> int:
        if not events:
            return 0
        return await asyncio.to_thread(self._write, rows(events))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)

    def transient(self, exc: BaseException) -> bool:
        # "database is locked" / "busy": another writer held the file past the timeout
        return isinstance(exc, sqlite3.OperationalError) and any(
            word in str(exc).lower() for word in ("locked", "busy"))

    # -- in the worker thread ------------------------------------------------------------

    def _open(self) -> None:
        with self._lock:
            if self._conn is not None:
                return
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                   check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in create_statements(self.table):
                        conn.execute(statement)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def _write(self, batch: list[Row]) -> int:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("SQLiteSink is not open")
            conn.execute("BEGIN IMMEDIATE")
            try:
                n = conn.executemany(self._insert, batch).rowcount
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return n

    def _close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
