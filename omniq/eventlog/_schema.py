"""The event log's table: its name rule, columns, DDL and rows (pure, no I/O).

One table (default ``omniq_events``), the same columns on SQLite and PostgreSQL
(docs/eventlog.md). ``(queue, stream_id)`` is the primary key: an entry copied twice (after
a crash between the commit and the XACK) is inserted once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from omniq.errors import InvalidArgument
from omniq.types import JobEvent

__all__ = [
    "COLUMNS",
    "DEFAULT_TABLE",
    "INDEXES",
    "Row",
    "TableName",
    "check_table",
    "create_statements",
    "insert_statement",
    "row",
    "rows",
]

DEFAULT_TABLE = "omniq_events"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("queue", "TEXT NOT NULL"),  # the physical queue (a partition: orders.p3)
    ("stream_id", "TEXT NOT NULL"),  # the entry id in {queue}:events, '<ms>-<seq>'
    ("stream_ms", "BIGINT NOT NULL"),  # stream_id's two parts as numbers: ORDER BY
    ("stream_seq", "BIGINT NOT NULL"),  # stream_ms, stream_seq is the stream's order
    ("logical_queue", "TEXT NOT NULL"),  # the name it was read under (orders)
    ("type", "TEXT NOT NULL"),  # enqueued, reserved, completed, failed ...
    ("job_id", "TEXT NOT NULL"),  # '' for paused / resumed
    ("ms", "BIGINT NOT NULL"),  # time of the transition (the script's clock), epoch ms
    ("gid", "TEXT"),
    ("attempt", "BIGINT"),
    ("due_ms", "BIGINT"),
    ("error", "TEXT"),
    ("lane", "TEXT"),
    ("progress", "TEXT"),  # JSON text
)
"""Column names and types (the types are valid in both SQLite and PostgreSQL)."""

INDEXES: tuple[tuple[str, str], ...] = (
    ("job", "job_id, stream_ms, stream_seq"),  # a job's history, in order
    ("type_ms", "type, ms"),  # failures per hour, durations over a time range
    ("ms", "ms"),  # time ranges of every type, pruning old rows
)
"""Index name suffixes (``<table>_<suffix>``) and their columns."""

Row = tuple[str, str, int, int, str, str, str, int, str | None, int | None, int | None,
            str | None, str | None, str | None]

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,47}")
_I64 = 2**63 - 1


class TableName:
    """A checked table name: ``name`` or (PostgreSQL only) ``schema.name``; lower-case
    letters, digits and ``_``, at most 48 characters each (index names add a suffix and
    must stay under PostgreSQL's 63). ``sql`` is the quoted form used in statements, so a
    name that is an SQL keyword (``order``) works too."""

    __slots__ = ("name", "schema")

    def __init__(self, schema: str | None, name: str) -> None:
        self.schema = schema
        self.name = name

    def __str__(self) -> str:
        return self.name if self.schema is None else f"{self.schema}.{self.name}"

    @property
    def sql(self) -> str:
        return f'"{self.name}"' if self.schema is None else f'"{self.schema}"."{self.name}"'


def check_table(value: object, *, schema_allowed: bool) -> TableName:
    """``value`` as a :class:`TableName`. :raises InvalidArgument: any other name."""
    if not isinstance(value, str):
        raise InvalidArgument(f"table must be a str, not {type(value).__name__}")
    parts = value.split(".")
    shape = "[schema.]name" if schema_allowed else "name"
    if len(parts) > (2 if schema_allowed else 1) or not all(
            _NAME.fullmatch(p) for p in parts):
        raise InvalidArgument(
            f"invalid table name {value!r}: use {shape} with lower-case letters, digits "
            "and '_' (not starting with a digit, at most 48 characters each)")
    return TableName(parts[0], parts[1]) if len(parts) == 2 else TableName(None, parts[0])


def create_statements(table: TableName) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` and its ``CREATE INDEX IF NOT EXISTS`` statements.

    On PostgreSQL an index lives in its table's schema (its name takes no schema); on
    SQLite the table name has no schema."""
    t = table.sql
    cols = ",\n  ".join(f"{name} {kind}" for name, kind in COLUMNS)
    out = [f"CREATE TABLE IF NOT EXISTS {t} (\n  {cols},\n  PRIMARY KEY (queue, stream_id)\n)"]
    out += [f'CREATE INDEX IF NOT EXISTS "{table.name}_{suffix}_idx" ON {t} ({cols_})'
            for suffix, cols_ in INDEXES]
    return out


def insert_statement(table: TableName, placeholder: str) -> str:
    """The ``INSERT ... ON CONFLICT (queue, stream_id) DO NOTHING`` of one row."""
    names = ", ".join(name for name, _ in COLUMNS)
    marks = ", ".join(placeholder for _ in COLUMNS)
    return (f"INSERT INTO {table.sql} ({names}) VALUES ({marks}) "
            "ON CONFLICT (queue, stream_id) DO NOTHING")


def _i64(value: int | None) -> int | None:
    """Clamp to the signed 64-bit range of an SQL BIGINT (the scripts stay far below)."""
    if value is None:
        return None
    return max(-_I64 - 1, min(value, _I64))


def _id_parts(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    try:
        return _i64(int(ms)) or 0, _i64(int(seq or 0)) or 0
    except ValueError:
        return 0, 0


def row(event: JobEvent) -> Row:
    """One :class:`~omniq.types.JobEvent` as a row, in :data:`COLUMNS` order."""
    ms, seq = _id_parts(event.id)
    return (event.queue, event.id, ms, seq, event.logical_queue, event.type, event.job_id,
            _i64(event.ms) or 0, event.gid, _i64(event.attempt), _i64(event.due_ms),
            event.error, event.lane, event.progress_raw)


def rows(events: Sequence[JobEvent]) -> list[Row]:
    """:func:`row` of each event."""
    return [row(e) for e in events]
