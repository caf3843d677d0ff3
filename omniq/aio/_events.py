"""Reading the event streams: :class:`EventStream` (``AsyncOmniq.events``) and
:class:`Waiters` (``AsyncOmniq.wait``).

Both read ``{queue}:events`` with ``XREAD BLOCK`` and only ever advance past entries they
have parsed, so a broken connection or a server restart resumes from the last entry seen:
no gaps, no repeats (as long as the stream still holds that entry's successors).

Streams of one server are read with one ``XREAD`` over all their keys. On Redis Cluster a
command cannot span slots, so each stream of a multi-queue reader gets its own reader task
(and connection) feeding one queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from redis.asyncio.cluster import RedisCluster

from omniq._keys import QueueKeys
from omniq._protocol import events as ev
from omniq._protocol.reads import opt_int
from omniq.aio._transport import map_errors
from omniq.codec import decode_payload
from omniq.errors import ConnectionFailed, JobFailed, JobNotFound, OmniqError
from omniq.types import JobEvent

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq

__all__ = ["EventStream", "Waiters"]

logger = logging.getLogger("omniq")

_BLOCK_MS = 5_000  # one XREAD BLOCK; a reader re-issues it (no client-side polling)
_COUNT = 1_000  # entries per stream per read
_RETRY_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)  # reconnect backoff
_BACKSTOP_S = 2.0  # a waiter re-reads its job this often even without an event
_HUB_LINGER_S = 10.0  # a wait reader with no waiters left stops after this long


def _entries(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """XREAD's reply (RESP2: ``[[key, [(id, fields), ...]], ...]``) as tuples."""
    if not reply:
        return []
    return [(str(k), [(str(i), f) for i, f in entries]) for k, entries in reply]


def _block_ms(client: AsyncOmniq) -> int:
    """How long one XREAD may block: under the client's socket timeout, if it has one."""
    timeout = client.socket_timeout
    if timeout is None:
        return _BLOCK_MS
    return max(1, min(_BLOCK_MS, int(timeout * 1000) - 500))


async def _last_ids(client: AsyncOmniq, keys: Sequence[str]) -> list[str]:
    """The id of each stream's newest entry ("0-0" when empty), one round trip."""
    with map_errors():
        pipe = client.redis.pipeline(transaction=False)
        for key in keys:
            pipe.xrevrange(key, "+", "-", count=1)
        replies = await pipe.execute()
    return [ev.start_ids(r) for r in replies]


async def _xread(
    client: AsyncOmniq,
    positions: Mapping[str, str],
    block_ms: int,
    who: str,
    retry: type[OmniqError] = ConnectionFailed,
    give_up: Callable[[], bool] | None = None,
) -> Any:
    """One XREAD from ``positions``. A ``retry`` error (a broken connection, a restart) is
    logged and the same read is tried again with backoff, until it answers or ``give_up()``
    says to stop (then None, as a read that timed out)."""
    streams: dict[Any, Any] = dict(positions)
    attempt = 0
    while True:
        try:
            with map_errors():
                return await client.redis.xread(streams, count=_COUNT, block=block_ms)
        except retry as exc:
            delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
            attempt += 1
            logger.warning("omniq: %s cannot read events (%s); retrying in %.2f s from "
                           "where it was", who, exc, delay)
            await asyncio.sleep(delay)
            if give_up is not None and give_up():
                return None


class EventStream:
    """An async iterator of :class:`~omniq.types.JobEvent` over one or more queues
    (see :meth:`AsyncOmniq.events <omniq.AsyncOmniq.events>`).

    Where ``since="$"`` starts is fixed when the reader starts: on ``async with`` (or
    :meth:`start`), else on the first iteration.

    ``cursor`` is ``{physical queue: id of the last event yielded}``: pass it as ``since``
    to a new reader to continue exactly after the last event this one gave. Close it with
    :meth:`aclose` (or ``async with``) to stop its reader tasks on Redis Cluster.
    """

    def __init__(
        self,
        client: AsyncOmniq,
        queues: Sequence[str],
        since: ev.Since,
        types: frozenset[str] | None,
    ) -> None:
        self._client = client
        self._queues = list(queues)
        self._since = since
        self._logical: dict[str, str] = {}  # physical queue -> logical name
        self._keys: dict[str, str] = {}  # physical queue -> stream key
        self._parts: dict[str, str] = {}  # stream key -> physical queue
        self._types = types
        self._read_pos: dict[str, str] = {}  # stream key -> last entry read
        self._cursor: dict[str, str] = {}  # physical queue -> last entry yielded
        # (physical queue, entry id, the event or None for one the types filter skips)
        self._buffer: deque[tuple[str, str, JobEvent | None]] = deque()
        self._started = False
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._inbox: asyncio.Queue[tuple[str, list[tuple[str, dict[str, str]]]]] | None = None

    @property
    def cursor(self) -> dict[str, str]:
        """Where a new reader continues after the last event yielded (``since=cursor``)."""
        return dict(self._cursor)

    def __aiter__(self) -> EventStream:
        return self

    async def __aenter__(self) -> EventStream:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop reading (cancels the reader tasks of a multi-stream cluster reader)."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):  # cancelled, or failed: nothing to do
                await task
        self._tasks = []

    async def start(self) -> None:
        """Fix where reading starts (``since="$"``: the streams' ends now). Done by
        ``async with`` and by the first iteration; idempotent."""
        if not self._started:
            await self._start()

    async def _start(self) -> None:
        for queue in self._queues:
            for part in (await self._client.routing.targets(queue)).parts:
                if part not in self._logical:
                    self._logical[part] = queue
                    self._keys[part] = ev.events_key(part)
                    self._parts[self._keys[part]] = part
        begin = ev.starts(self._since, list(self._logical))
        unresolved = [part for part, start in begin.items() if start is None]
        if unresolved:
            ids = await _last_ids(self._client, [self._keys[p] for p in unresolved])
            begin.update(zip(unresolved, ids, strict=True))
        for part, start in begin.items():
            assert start is not None
            self._read_pos[self._keys[part]] = start
            self._cursor[part] = start
        self._started = True
        if isinstance(self._client.redis, RedisCluster) and len(self._keys) > 1:
            self._inbox = asyncio.Queue(maxsize=len(self._keys) * 2)
            self._tasks = [asyncio.get_running_loop().create_task(self._feed(key))
                           for key in self._read_pos]

    async def __anext__(self) -> JobEvent:
        if self._closed:
            raise StopAsyncIteration
        await self.start()
        while True:
            while not self._buffer:
                if self._inbox is not None:
                    key, entries = await self._inbox.get()
                    self._take(key, entries)
                else:
                    await self._read_once()
            part, entry_id, event = self._buffer.popleft()
            # skipped events move the cursor too (a resume does not read them again), but
            # only in their turn, after the events read before them were yielded
            self._cursor[part] = entry_id
            if event is not None:
                return event

    def _take(self, key: str, entries: list[tuple[str, dict[str, str]]]) -> None:
        part = self._parts[key]
        logical = self._logical[part]
        types = self._types
        feeding = self._inbox is not None  # the feeder task owns the read position then
        for entry_id, fields in entries:
            if not feeding:
                self._read_pos[key] = entry_id
            if types is not None and fields.get("type") not in types:
                self._buffer.append((part, entry_id, None))
                continue
            self._buffer.append((part, entry_id, ev.parse_entry(part, logical, entry_id, fields)))

    async def _read_once(self) -> None:
        """One XREAD over every stream."""
        reply = await _xread(self._client, self._read_pos, _block_ms(self._client),
                             "an event reader")
        for key, entries in _entries(reply):
            self._take(key, entries)

    async def _feed(self, key: str) -> None:
        """Cluster reader task of one stream."""
        assert self._inbox is not None
        while True:
            reply = await _xread(self._client, {key: self._read_pos[key]},
                                 _block_ms(self._client), f"the event reader of {key}")
            for k, entries in _entries(reply):
                if entries:
                    self._read_pos[k] = entries[-1][0]
                    await self._inbox.put((k, entries))


# -- waiting for results ---------------------------------------------------------------


class _Hub:
    """The reader of one physical queue's stream for the waits on its jobs."""

    def __init__(self, client: AsyncOmniq, part: str, owner: Waiters) -> None:
        self.client = client
        self.owner = owner
        self.part = part
        self.key = ev.events_key(part)
        self.waiting: dict[str, set[asyncio.Event]] = {}
        self.task: asyncio.Task[None] | None = None
        self.idle_since: float | None = None
        self._ready = asyncio.Event()
        self._start_error: BaseException | None = None

    async def started(self) -> None:
        """Wait until the reader knows its start position (raises what prevented it)."""
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())
        await self._ready.wait()
        if self._start_error is not None:
            error, self._start_error = self._start_error, None
            self._ready.clear()
            self.task = None
            raise error

    def add(self, job_id: str) -> asyncio.Event:
        flag = asyncio.Event()
        self.waiting.setdefault(job_id, set()).add(flag)
        self.idle_since = None
        return flag

    def remove(self, job_id: str, flag: asyncio.Event) -> None:
        flags = self.waiting.get(job_id)
        if flags is not None:
            flags.discard(flag)
            if not flags:
                del self.waiting[job_id]
        if not self.waiting:
            self.idle_since = time.monotonic()

    async def _run(self) -> None:
        try:
            (pos,) = await _last_ids(self.client, [self.key])
        except BaseException as exc:
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        while not self._idle_too_long():
            # any error is retried: the waits re-read their jobs meanwhile (their backstop)
            reply = await _xread(self.client, {self.key: pos},
                                 min(_block_ms(self.client), int(_HUB_LINGER_S * 1000)),
                                 f"the result waiter of {self.part}", retry=OmniqError,
                                 give_up=self._idle_too_long)
            for _, entries in _entries(reply):
                for entry_id, fields in entries:
                    pos = entry_id
                    if fields.get("type") in ev.FINAL_TYPES:
                        for flag in self.waiting.get(fields.get("id", ""), ()):
                            flag.set()
        self.owner.forget(self)

    def _idle_too_long(self) -> bool:
        """No wait for longer than the linger time: the reader may stop."""
        return self.idle_since is not None and time.monotonic() - self.idle_since > _HUB_LINGER_S


class Waiters:
    """The :class:`_Hub` of each physical queue with waits, for one client."""

    def __init__(self, client: AsyncOmniq) -> None:
        self.client = client
        self.hubs: dict[str, _Hub] = {}

    def forget(self, hub: _Hub) -> None:
        if self.hubs.get(hub.part) is hub:
            del self.hubs[hub.part]

    async def aclose(self) -> None:
        hubs, self.hubs = list(self.hubs.values()), {}
        for hub in hubs:
            if hub.task is not None:
                hub.task.cancel()
        for hub in hubs:
            if hub.task is not None:
                with contextlib.suppress(BaseException):  # cancelled: nothing to report
                    await hub.task

    async def wait(self, part: str, job_id: str, timeout: float | None) -> Any:  # noqa: ASYNC109
        """The result of ``job_id`` in physical queue ``part`` once it completed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        hub = self.hubs.get(part)
        if hub is None:
            hub = self.hubs[part] = _Hub(self.client, part, self)
        flag = hub.add(job_id)
        broken = 0  # job reads in a row that met a broken connection
        try:
            await hub.started()  # the reader's position is fixed before the first read
            while True:
                flag.clear()  # before the read: an event after it sets the flag again
                wait_s = _BACKSTOP_S
                try:
                    done, value = await self._check(part, job_id)
                except ConnectionFailed as exc:  # a restart, say: read again soon
                    delay = _RETRY_S[min(broken, len(_RETRY_S) - 1)]
                    broken += 1
                    logger.warning("omniq: wait for %s/%s cannot read the job (%s); "
                                   "retrying in %.2f s", part, job_id, exc, delay)
                    done, value, wait_s = False, None, delay
                else:
                    broken = 0
                if done:
                    return value
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(
                            f"job {job_id} of queue {part!r} did not finish within "
                            f"{timeout} s")
                    wait_s = min(wait_s, left)
                with contextlib.suppress(TimeoutError):  # the backstop: read the job again
                    await asyncio.wait_for(flag.wait(), wait_s)
        finally:
            hub.remove(job_id, flag)

    async def _check(self, part: str, job_id: str) -> tuple[bool, Any]:
        with map_errors():
            state, result, error, attempt = await self.client.redis.hmget(
                QueueKeys(part).job(job_id), "state", "result", "last_error", "attempt")
        if state is None:
            raise JobNotFound(
                "wait", "NO_JOB",
                "no such job: it never existed, was removed, or its record was already "
                "deleted by keep_completed / keep_completed_ms", job_id)
        if state == "completed":
            return True, None if not result else decode_payload(result)
        if state == "failed":
            raise JobFailed(part, job_id, str(error) if error else None, opt_int(attempt) or 0)
        return False, None
