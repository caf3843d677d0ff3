"""The interface an :class:`~omniq.eventlog.EventLog` writes through."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Self

from omniq.eventlog._schema import TableName
from omniq.types import JobEvent

__all__ = ["Sink"]


class Sink(abc.ABC):
    """A database table of events (:class:`~omniq.eventlog.SQLiteSink`,
    :class:`~omniq.eventlog.PostgresSink`).

    ``write`` inserts a batch in one transaction and returns only once it is committed;
    a row whose ``(queue, stream_id)`` is already there is skipped. Use ``async with``
    (or :meth:`aclose`) to close it; :meth:`open` is called by the event log and may be
    called again.
    """

    table: TableName

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect, and create the table and its indexes when missing (no-op when open)."""

    @abc.abstractmethod
    async def write(self, events: Sequence[JobEvent]) -> int:
        """Insert ``events`` in one committed transaction; the number of new rows."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Close the connection (waits for a write in progress)."""

    def transient(self, exc: BaseException) -> bool:
        """Whether ``exc`` from :meth:`write` is worth retrying (a lost connection, a
        locked database); the event log then backs off and retries the batch."""
        return False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
