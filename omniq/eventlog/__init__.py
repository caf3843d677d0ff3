"""The SQL event log: the lifecycle events of queues, copied durably into a table.

:class:`EventLog` reads the ``{queue}:events`` streams (every partition of a partitioned
queue) with a Redis consumer group and writes them to a :class:`SQLiteSink` (standard
library) or a :class:`PostgresSink` (``pip install 'omniq-aio[postgres]'``), one
transaction per batch, acknowledging the entries only after the commit. The stream entry
id is the primary key, so a crash loses nothing and repeats nothing. docs/eventlog.md has
the table, its indexes and example queries; ``omniq eventlog`` runs it from a shell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from omniq.eventlog._exporter import (
    DEFAULT_BATCH,
    DEFAULT_CLAIM_IDLE_MS,
    DEFAULT_GROUP,
    MAX_BATCH,
    Batch,
    EventLog,
    EventLogStats,
)
from omniq.eventlog._schema import COLUMNS, DEFAULT_TABLE, INDEXES
from omniq.eventlog._sink import Sink
from omniq.eventlog.postgres import PostgresSink
from omniq.eventlog.sqlite import SQLiteSink

__all__ = [
    "COLUMNS",
    "DEFAULT_BATCH",
    "DEFAULT_CLAIM_IDLE_MS",
    "DEFAULT_GROUP",
    "DEFAULT_TABLE",
    "INDEXES",
    "MAX_BATCH",
    "Batch",
    "EventLog",
    "EventLogStats",
    "PostgresSink",
    "SQLiteSink",
    "Sink",
    "run_blocking",
]


def run_blocking(url: str, queues: str | Sequence[str], sink: Sink, *, once: bool = False,
                 **options: Any) -> int:
    """Run an :class:`EventLog` from blocking code (a script, a cron job): until Ctrl-C
    (``KeyboardInterrupt`` is raised), or with ``once=True`` until the streams are copied.
    ``options`` are the keywords of :class:`EventLog`. Returns the number of rows written.
    """

    async def main() -> int:
        from omniq.aio.client import AsyncOmniq

        async with AsyncOmniq(url=url) as client, EventLog(client, queues, sink,
                                                            **options) as log:
            if once:
                return await log.run_once()
            await log.run()
            return log.stats.written

    return asyncio.run(main())
