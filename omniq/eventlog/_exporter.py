""":class:`EventLog`: copies the ``{queue}:events`` streams into a :class:`Sink`.

It reads with a consumer group (``XREADGROUP ... BLOCK``, woken by new entries), writes
each batch in one transaction and acknowledges it (``XACK``) only after the commit. On
start, and after any error, it first re-reads the entries it was given and did not
acknowledge (its pending list, ``XREADGROUP ... 0``) and takes over those of consumers
idle for ``claim_idle_ms`` (``XAUTOCLAIM``). So a crash before a commit loses nothing (the
entries are still pending), and a crash between a commit and its XACK repeats nothing
(the rows are there; the primary key skips them).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, Self

from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from omniq._keys import validate_queue_name
from omniq._limits import EVENTLOG_BATCH, EVENTLOG_CLAIM_IDLE_MS, EVENTLOG_MAX_BATCH
from omniq._protocol.common import check_non_negative, check_up_to
from omniq._protocol.events import events_key, parse_entry
from omniq.aio._transport import map_errors
from omniq.errors import ConnectionFailed, InvalidArgument, ServerError
from omniq.eventlog._sink import Sink
from omniq.types import JobEvent

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_CLAIM_IDLE_MS",
    "DEFAULT_GROUP",
    "MAX_BATCH",
    "Batch",
    "EventLog",
    "EventLogStats",
]

logger = logging.getLogger("omniq.eventlog")

DEFAULT_GROUP = "omniq-eventlog"
DEFAULT_BATCH = EVENTLOG_BATCH  # the values live in omniq/_limits.py
MAX_BATCH = EVENTLOG_MAX_BATCH
DEFAULT_CLAIM_IDLE_MS = EVENTLOG_CLAIM_IDLE_MS
_BLOCK_MS = 5_000  # one XREADGROUP BLOCK; re-issued while running (no client-side polling)
_RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)  # backoff after a lost connection


@dataclasses.dataclass(frozen=True)
class Batch:
    """One committed batch, given to ``on_batch`` after the commit and before the XACK.

    ``events`` were written (``written`` of them new; the others were already in the
    table), ``trimmed`` pending entries were gone from the stream (lost: see
    docs/eventlog.md)."""

    events: Sequence[JobEvent]
    written: int
    trimmed: int


@dataclasses.dataclass
class EventLogStats:
    """Counters of one :class:`EventLog` since it was made."""

    batches: int = 0
    written: int = 0  # rows inserted
    duplicates: int = 0  # entries whose row was already there (redelivered after a crash)
    trimmed: int = 0  # pending entries trimmed away before they were copied
    claimed: int = 0  # pending entries taken over from idle consumers
    retries: int = 0  # errors retried (lost connections, a locked database)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """XREADGROUP's reply as ``[(key, [(id, fields), ...])]``; a pending entry that was
    trimmed from the stream has empty fields."""
    if not reply:
        return []
    items = reply.items() if isinstance(reply, dict) else reply
    out = []
    for key, entries in items:
        out.append((_text(key), [
            (_text(i), {_text(k): _text(v) for k, v in (f or {}).items()})
            for i, f in entries]))
    return out


class EventLog:
    """Copy the lifecycle events of ``queues`` into ``sink``, durably::

        async with EventLog(omniq, ["emails", "orders"], SQLiteSink("events.db")) as log:
            await log.run()  # until stop() or cancelled

    A partitioned queue is read in every partition (its layout is read once, at the
    first run). ``group`` is the Redis consumer group (one per destination table: two logs
    with the same group share the work), ``consumer`` this reader's name in it (default:
    the host name; keep it stable across restarts so a restart re-reads its own pending
    entries at once). ``batch`` entries per stream per read, written in one transaction.
    ``start`` is where a new group starts: ``"0"`` (every event the streams still hold)
    or ``"$"`` (only new ones). Entries pending at a consumer idle for ``claim_idle_ms``
    (one that died under another name) are taken over. ``on_batch(batch)`` (plain or async)
    runs after each commit, before the XACK.
    """

    def __init__(
        self,
        client: AsyncOmniq,
        queues: str | Sequence[str],
        sink: Sink,
        *,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        batch: int = DEFAULT_BATCH,
        start: Literal["0", "$"] = "0",
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        on_batch: Callable[[Batch], Awaitable[None] | None] | None = None,
    ) -> None:
        names = [queues] if isinstance(queues, str) else list(queues)
        if not names:
            raise InvalidArgument("EventLog needs at least one queue")
        self.queues = [validate_queue_name(q) for q in dict.fromkeys(names)]
        if not isinstance(sink, Sink):
            raise InvalidArgument(f"sink must be a Sink, not {type(sink).__name__}")
        consumer = (socket.gethostname() or "omniq") if consumer is None else consumer
        for what, value in (("group", group), ("consumer", consumer)):
            if not isinstance(value, str) or not value or len(value) > 200:
                raise InvalidArgument(f"{what} must be a non-empty str of at most 200 "
                                      "characters")
        if start not in ("0", "$"):
            raise InvalidArgument("start must be '0' (everything kept) or '$' (new events)")
        self.client = client
        self.sink = sink
        self.group = group
        self.consumer = consumer
        self.batch = check_up_to(batch, "batch", MAX_BATCH)
        self.start = start
        self.claim_idle_ms = check_non_negative(claim_idle_ms, "claim_idle_ms")
        self.on_batch = on_batch
        self.stats = EventLogStats()
        self._where: dict[str, tuple[str, str]] = {}  # stream key -> (physical, logical)
        self._stop = asyncio.Event()
        self._write_lock = asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the sink (the client is the caller's)."""
        await self.sink.aclose()

    def stop(self) -> None:
        """Make :meth:`run` return: at once when it waits for events, else after the batch
        in progress (its entries stay pending when it was not committed)."""
        self._stop.set()

    async def run(self) -> None:
        """Copy events as they come until :meth:`stop` (or cancellation). A lost
        connection to Redis or the database is retried with backoff, from the pending
        entries."""
        try:
            await self._prepare()
            readers = self._readers()
            if len(readers) == 1:
                await self._pass(readers[0], block=True)
            else:
                async with asyncio.TaskGroup() as tg:
                    for keys in readers:
                        tg.create_task(self._pass(keys, block=True))
        finally:
            self._stop = asyncio.Event()  # a later run() runs again

    async def run_once(self) -> int:
        """Copy what the streams hold now (pending entries first) and return the number of
        rows written; errors are raised, not retried."""
        before = self.stats.written
        await self._prepare()
        for keys in self._readers():
            await self._pass(keys, block=False)
        return self.stats.written - before

    # -- internals -------------------------------------------------------------------

    async def _prepare(self) -> None:
        if not self._where:
            for queue in self.queues:
                for part in (await self.client.routing.targets(queue)).parts:
                    self._where.setdefault(events_key(part), (part, queue))
        await self.sink.open()

    def _readers(self) -> list[list[str]]:
        """One XREADGROUP over every stream; one per stream on a cluster (no command spans
        slots)."""
        keys = list(self._where)
        if isinstance(self.client.redis, RedisCluster):
            return [[k] for k in keys]
        return [keys]

    def _block_ms(self) -> int:
        timeout = self.client.socket_timeout
        if timeout is None:
            return _BLOCK_MS
        return max(1, min(_BLOCK_MS, int(timeout * 1000) - 500))

    def _retryable(self, exc: Exception) -> bool:
        if isinstance(exc, ConnectionFailed):
            return True
        if isinstance(exc, ServerError) and "NOGROUP" in str(exc):
            return True  # the stream was deleted (FLUSHDB ...): the group is made again
        return self.sink.transient(exc)

    async def _pass(self, keys: list[str], *, block: bool) -> None:
        """Read, write, acknowledge: until stopped (``block``) or until nothing is left."""
        recover = True
        attempt = 0
        last_claim = time.monotonic()
        while not self._stop.is_set():
            try:
                if recover:
                    await self._create_groups(keys)
                    await self._claim(keys)
                    last_claim = time.monotonic()
                    while not self._stop.is_set() and await self._step(keys, "0", None):
                        pass
                    recover = False
                    continue
                got = await self._step(keys, ">", self._block_ms() if block else None)
                attempt = 0
                if not got and not block:
                    return
                if (time.monotonic() - last_claim) * 1000 >= max(self.claim_idle_ms,
                                                                 _BLOCK_MS):
                    recover = True  # now and then: entries of consumers that died
            except Exception as exc:
                if not block or not self._retryable(exc):
                    raise
                delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
                attempt += 1
                self.stats.retries += 1
                recover = True
                logger.warning("omniq eventlog: %s; retrying in %.2f s from the pending "
                               "entries", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def _create_groups(self, keys: list[str]) -> None:
        redis = self.client.redis
        for key in keys:
            with map_errors():
                try:
                    await redis.xgroup_create(key, self.group, id=self.start, mkstream=True)
                except rexc.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    async def _claim(self, keys: list[str]) -> None:
        """Take over the entries pending at consumers idle for ``claim_idle_ms``."""
        redis = self.client.redis
        for key in keys:
            cursor = "0-0"
            while True:
                with map_errors():
                    reply = await redis.xautoclaim(key, self.group, self.consumer,
                                                   self.claim_idle_ms, start_id=cursor,
                                                   count=self.batch)
                cursor = _text(reply[0])
                self.stats.claimed += sum(1 for e in reply[1] if e and e[0] is not None)
                if len(reply) > 2 and reply[2]:  # deleted from the stream while pending
                    self._lost(key, len(reply[2]))
                if cursor == "0-0":
                    break

    def _lost(self, key: str, n: int) -> None:
        self.stats.trimmed += n
        logger.warning("omniq eventlog: %d pending events of %s were trimmed from the stream "
                       "before they were copied (lost): raise events_maxlen", n, key)

    async def _read(self, keys: list[str], start: str, block_ms: int | None) -> Any:
        streams: dict[Any, Any] = dict.fromkeys(keys, start)
        call = self.client.redis.xreadgroup(self.group, self.consumer, streams,
                                            count=self.batch, block=block_ms)
        if block_ms is None:
            with map_errors():
                return await call
        read = asyncio.ensure_future(call)
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not read.done():
                # stopped or cancelled: what this read took stays pending for the next run
                read.cancel()
                with contextlib.suppress(BaseException):
                    await read
        if read.cancelled():
            return None
        with map_errors():
            return read.result()

    async def _step(self, keys: list[str], start: str, block_ms: int | None) -> bool:
        """One read, then its write and XACK; False when it read nothing."""
        entries = _entries(await self._read(keys, start, block_ms))
        events: list[JobEvent] = []
        acks: dict[str, list[str]] = {}
        trimmed = 0
        for key, items in entries:
            if not items:
                continue
            part, logical = self._where[key]
            acks[key] = [entry_id for entry_id, _ in items]
            gone = 0
            for entry_id, fields in items:
                if fields:
                    events.append(parse_entry(part, logical, entry_id, fields))
                else:
                    gone += 1
            if gone:
                self._lost(key, gone)
                trimmed += gone
        if not acks:
            return False
        async with self._write_lock:  # cluster readers share the sink
            written = await self.sink.write(events)
        if self.on_batch is not None:
            result = self.on_batch(Batch(events=events, written=written, trimmed=trimmed))
            if inspect.isawaitable(result):
                await result
        await self._ack(acks)
        self.stats.batches += 1
        self.stats.written += written
        self.stats.duplicates += len(events) - written
        return True

    async def _ack(self, acks: dict[str, list[str]]) -> None:
        with map_errors():
            pipe = self.client.redis.pipeline(transaction=False)
            for key, ids in acks.items():
                pipe.xack(key, self.group, *ids)
            await pipe.execute()
