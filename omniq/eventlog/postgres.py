""":class:`PostgresSink`: the event log in PostgreSQL, over psycopg 3's asyncio connection.

Needs the ``postgres`` extra (``pip install 'omniq-aio[postgres]'``). One connection; a
batch is one transaction (the rows are sent pipelined with ``executemany``). A lost
connection is reopened on the next write, after the event log's backoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    import psycopg

__all__ = ["INSTALL_HINT", "PostgresSink"]

INSTALL_HINT = "PostgresSink needs psycopg 3: pip install 'omniq-aio[postgres]'"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return psycopg


def _no_nul(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; an error text may (a handler's exception message)
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value \
        else value


class PostgresSink(Sink):
    """Events into ``table`` (default ``omniq_events``; ``schema.table`` for another
    schema, which must exist) of the PostgreSQL database ``dsn``
    (``postgresql://user@host:5432/db`` or ``"host=... dbname=..."``). Its connection's
    ``application_name`` is ``omniq-eventlog`` (``pg_stat_activity`` shows it).

    :raises ImportError: psycopg is not installed (with the pip command to run).
    :raises InvalidArgument: a bad table name or DSN (before any connection).
    """

    def __init__(self, dsn: str, *, table: str = DEFAULT_TABLE,
                 connect_timeout_s: float = 10.0) -> None:
        pg = _psycopg()
        self.table = check_table(table, schema_allowed=True)
        if not isinstance(dsn, str):
            raise InvalidArgument(f"dsn must be a str, not {type(dsn).__name__}")
        try:
            pg.conninfo.conninfo_to_dict(dsn)
        except pg.ProgrammingError as exc:
            raise InvalidArgument(f"bad PostgreSQL DSN: {exc}") from None
        if isinstance(connect_timeout_s, bool) or not isinstance(connect_timeout_s,
                                                                  int | float) \
                or not 0 < connect_timeout_s < float("inf"):
            raise InvalidArgument("connect_timeout_s must be a positive number of seconds")
        self.dsn = dsn
        self._timeout = max(1, round(connect_timeout_s))
        self._insert = insert_statement(self.table, "%s")
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def __repr__(self) -> str:
        return f"PostgresSink(<dsn>, table={str(self.table)!r})"

    async def open(self) -> None:
        if self._conn is not None and not self._conn.closed:
            return
        pg = _psycopg()
        conn = await pg.AsyncConnection.connect(
            self.dsn, autocommit=True, connect_timeout=self._timeout,
            application_name="omniq-eventlog")
        try:
            async with conn.transaction():
                # two logs starting at once must not race on CREATE ... IF NOT EXISTS
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                                   (f"omniq-eventlog:{self.table}",))
                for statement in create_statements(self.table):
                    await conn.execute(statement)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def write(self, events: Sequence[JobEvent]) -> int:
        if not events:
            return 0
        await self.open()
        conn = self._conn
        assert conn is not None
        batch: list[Row] = rows(events)
        pg = _psycopg()
        try:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(self._insert, [tuple(_no_nul(v) for v in r)
                                                     for r in batch])
                return int(cur.rowcount)
        except pg.Error as exc:
            if self.transient(exc) or conn.broken:
                await self._drop(conn)
            raise
        except BaseException:  # cancelled mid-transaction: the connection's state is unknown
            await self._drop(conn)
            raise

    async def _drop(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Forget ``conn`` (the next write opens a new one) and close it."""
        if self._conn is conn:
            self._conn = None
        await conn.close()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def transient(self, exc: BaseException) -> bool:
        # a lost connection, a server restarting: the batch is retried on a new one
        pg = _psycopg()
        return isinstance(exc, pg.OperationalError | pg.InterfaceError)
