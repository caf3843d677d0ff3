"""Partitioned queues: one logical queue spread over N physical queues ``name.p0`` ...
``name.p<N-1>``.

Each partition is a plain OmniQ v1 queue with its own hash tag ``{name.pI}`` (a name the
official clients accept), so a logical
queue can use several cluster shards. Nothing here sends keys of two partitions in one
script call: every operation is one script call (or plain single-key reads) per
partition, pipelined. See ``docs/protocol.md`` (section "Partitioned queues").
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from omniq import _protocol as p
from omniq._keys import (
    MAX_PARTITIONS,
    QueueKeys,
    layout_key,
    partition_index,
    partition_name,
    validate_job_id,
    validate_queue_name,
)
from omniq._scripts import SCRIPTS
from omniq.aio._transport import Call, map_errors
from omniq.errors import InvalidArgument, JobNotFound, OmniqError, PartitionError, ScriptError
from omniq.types import (
    Ack,
    BatchResult,
    FailOutcome,
    JobInfo,
    QueueStats,
    ReservedJob,
    ReserveResult,
)

if TYPE_CHECKING:
    from omniq.aio._connect import AnyRedis
    from omniq.aio._transport import ScriptRunner

__all__ = ["PartitionedOps"]

_RESERVE = SCRIPTS["reserve"]
_ACK_RESERVE = SCRIPTS["ack_reserve"]
_ENQUEUE = SCRIPTS["enqueue"]
_LAYOUT_CACHE_MAX = 10_000

AckOutcome = FailOutcome | ScriptError | None


def _parse_layout(queue: str, value: Any) -> int:
    if value is None:
        return 0
    text = value.decode() if isinstance(value, bytes) else str(value)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PARTITIONS:
        raise OmniqError(f"corrupt partition layout of queue {queue!r}: {text!r}")
    return int(text)


def _probe_commands(pipe: Any, k: QueueKeys) -> None:
    pipe.exists(k.paused)
    pipe.llen(k.wait)
    pipe.zcard(k.groups_ready)


def _split(count: int, order: Sequence[str]) -> dict[str, int]:
    """Share ``count`` over ``order`` as evenly as possible, the first ones first."""
    k = len(order)
    base, extra = divmod(count, k)
    return {part: base + (1 if i < extra else 0) for i, part in enumerate(order)
            if base or i < extra}


class PartitionedOps:
    """The partition-aware half of :class:`~omniq.aio.client.AsyncOmniq` (a mixin)."""

    if TYPE_CHECKING:
        redis: AnyRedis
        _runner: ScriptRunner
        keep_completed: int
        _keep_failed_arg: str

        def _anchor(self, queue: str) -> str: ...

        async def _call_all(self, calls: Sequence[Call]) -> list[Any]: ...

    _layouts: dict[str, int]
    _rr: dict[str, int]

    def _init_partitions(self) -> None:
        self._layouts = {}  # logical queue -> partition count (0: unpartitioned)
        self._rr = {}  # rotation counters: publish spreading and reserve fairness

    # -- layout ------------------------------------------------------------------------

    async def partition_queue(self, queue: str, partitions: int) -> bool:
        """Spread ``queue`` over ``partitions`` (1-1024) physical queues ``queue.p0`` ...

        The layout is stored in Redis (``{queue}:partitions``) so every client sees it.
        Declaring the same count again is a no-op (returns False; True when stored now).
        A layout is permanent: re-partitioning would break FIFO per group for jobs in
        flight, so a different count raises :class:`~omniq.errors.PartitionError`
        (``PARTITION_CONFLICT``), and so does a queue that already holds jobs in its
        unpartitioned form, or a plain queue already named like one of its partitions
        (``QUEUE_NOT_EMPTY``): declare the layout before first use.
        """
        anchor = "{" + validate_queue_name(queue) + "}:meta"
        n = p.check_positive(partitions, "partitions")
        if n > MAX_PARTITIONS:
            raise InvalidArgument(f"partitions must be at most {MAX_PARTITIONS}, got {n}")
        parts = self._parts(queue, n)  # validates the length of the partition names
        if await self._read_layout(queue) == 0:
            # Partition names are ordinary queue names: refuse to adopt queues that already
            # hold jobs (checked before the layout is stored; not atomic with it).
            s = await self._stats_pipelined(parts)
            held = sum(x.waiting_total + x.active + x.delayed + x.failed + x.completed_kept
                       for x in s)
            if held:
                raise PartitionError("partition", "QUEUE_NOT_EMPTY",
                                     f"{held} jobs in queues named like its partitions")
        r = p.parse_ok("partition", await self._runner.call(SCRIPTS["partition"], anchor, (n,)))
        self._layouts[queue] = n
        return r[2] == "1"

    async def queue_partitions(self, queue: str) -> list[str]:
        """The physical queues of ``queue``: ``[queue]`` when it is not partitioned, else
        ``[queue.p0, ..., queue.p<N-1>]`` (the layout is read once and cached)."""
        n = await self._layout(queue)
        return [queue] if n == 0 else [partition_name(queue, i) for i in range(n)]

    async def _layout(self, queue: str) -> int:
        """Partition count of a queue name (0: unpartitioned or a partition name)."""
        n = self._layouts.get(queue)
        if n is not None:
            return n
        return await self._read_layout(queue)

    async def _read_layout(self, queue: str) -> int:
        key = layout_key(queue)  # validates the logical name
        with map_errors():
            value = await self.redis.get(key)
        n = _parse_layout(queue, value)
        if n or len(self._layouts) < _LAYOUT_CACHE_MAX:
            self._layouts[queue] = n
        return n

    def _known_unpartitioned(self, queue: str) -> None:
        """An enqueue on the logical anchor succeeded: the queue is not partitioned."""
        if len(self._layouts) < _LAYOUT_CACHE_MAX:
            self._layouts[queue] = 0

    def _lease_queue(self, queue: str) -> None:
        """Lease operations need the physical queue (``job.queue``); no I/O."""
        if self._layouts.get(queue):
            raise InvalidArgument(
                f"queue {queue!r} is partitioned: settle a lease on its partition "
                f"(ReservedJob.queue / ctx.queue, such as {partition_name(queue, 0)})"
            )

    def _next_rr(self, key: str) -> int:
        i = self._rr.get(key)
        if i is None:
            i = random.randrange(MAX_PARTITIONS)  # clients do not all start at partition 0
        self._rr[key] = i + 1
        return i

    def _route(self, queue: str, n: int, gid: str, job_id: str | None) -> str:
        """The partition of one job: by gid, else by explicit job id, else round-robin."""
        if gid:
            i = partition_index(gid, n)
        elif job_id is not None:
            i = partition_index(job_id, n)
        else:
            i = self._next_rr("p:" + queue) % n
        return partition_name(queue, i)

    def _parts(self, queue: str, n: int) -> list[str]:
        return [partition_name(queue, i) for i in range(n)]

    # -- publish -----------------------------------------------------------------------

    async def _publish_to(
        self, queue: str, n: int, jid: str, explicit: bool, args: list[Any], gid: str
    ) -> None:
        part = self._route(queue, n, gid, jid if explicit else None)
        p.parse_ok("enqueue", await self._runner.call(_ENQUEUE, self._anchor(part), args), jid)

    async def _publish_many_to(
        self, queue: str, n: int, now: int, ids: list[str], fields: list[Any],
        routes: list[tuple[str, bool]], chunk: int,
    ) -> None:
        by_part: dict[str, list[int]] = {}
        for k, (gid, explicit) in enumerate(routes):
            part = self._route(queue, n, gid, ids[k] if explicit else None)
            by_part.setdefault(part, []).append(k)
        f = p.ENQUEUE_FIELDS
        calls: list[Call] = []
        call_ids: list[list[str]] = []
        for part, idx in by_part.items():
            anchor = self._anchor(part)
            for start in range(0, len(idx), chunk):
                sel = idx[start : start + chunk]
                args: list[Any] = [now, len(sel)]
                for k in sel:
                    args += fields[k * f : (k + 1) * f]
                calls.append((_ENQUEUE, anchor, args))
                call_ids.append([ids[k] for k in sel])
        replies = (await self._runner.call_many(calls) if len(calls) > 1
                   else [await self._runner.call(*calls[0])])
        first: BaseException | None = None
        written: list[str] = []
        for reply, jids in zip(replies, call_ids, strict=True):
            try:
                if isinstance(reply, Exception):
                    with map_errors():
                        raise reply
                p.parse_ok("publish_many", reply)
                written += jids
            except OmniqError as exc:
                first = first or exc
        if first is not None:
            # partitions cannot be written atomically together: say what was written
            first.published_ids = written  # type: ignore[attr-defined]
            raise first

    # -- reserve -----------------------------------------------------------------------

    async def _reserve_across(
        self,
        queue: str,
        parts: Sequence[str],
        count: int,
        acks: Mapping[str, Sequence[Ack]],
        now: int,
    ) -> tuple[dict[str, list[AckOutcome]], ReserveResult | None]:
        """Settle ``acks`` (per partition) and reserve up to ``count`` jobs over ``parts``.

        The starting partition rotates on every call; the count is shared evenly from
        there (one pipelined round trip). When that comes back short and some partitions
        got no share (a count smaller than the partitions), they are probed with plain
        reads (one round trip); later rounds give what is missing to partitions the
        probe found ready or that filled their share.
        """
        k = len(parts)
        start = self._next_rr("r:" + queue) % k
        order = [parts[(start + i) % k] for i in range(k)]
        shares = _split(count, order) if count else {}
        outcomes: dict[str, list[AckOutcome]] = {}
        jobs: list[ReservedJob] = []
        paused: set[str] = set()
        calls: list[Call] = []
        asked: list[tuple[str, int, list[str] | None]] = []
        for part in order:
            c = shares.get(part, 0)
            a = acks.get(part)
            if a:
                args: list[Any] = [now, self.keep_completed, len(a)]
                for ack in a:
                    kind = "S" if ack.ok else ("X" if ack.final else "F")
                    args += (ack.job_id, ack.lease_token, kind, ack.text)
                args += (c, self._keep_failed_arg)
                calls.append((_ACK_RESERVE, self._anchor(part), args))
                asked.append((part, c, [x.job_id for x in a]))
            elif c:
                calls.append((_RESERVE, self._anchor(part), (now, c)))
                asked.append((part, c, None))
        replies = await self._call_all(calls)
        full: list[str] = []
        remaining = count
        for (part, c, ack_ids), reply in zip(asked, replies, strict=True):
            res: ReserveResult | None
            if ack_ids is not None:
                outcomes[part], res = p.parse_ack_reserve(part, reply, ack_ids)
            else:
                res = p.parse_reserve(part, reply)
            if res is None or c == 0:
                continue
            if res.status == "PAUSED":
                paused.add(part)
            jobs += res.jobs
            remaining -= len(res.jobs)
            if len(res.jobs) == c:
                full.append(part)
        try:
            if remaining > 0:
                remaining = await self._top_up(order, shares, full, remaining, now, jobs,
                                               paused)
        except OmniqError:
            if not jobs:
                raise
            # jobs are leased already: hand them out rather than leave them to expire
        if not count:
            return outcomes, None
        if jobs:
            return outcomes, ReserveResult("JOB", jobs)
        return outcomes, ReserveResult("PAUSED" if len(paused) == k else "EMPTY", [])

    async def _top_up(
        self, order: list[str], shares: dict[str, int], full: list[str], remaining: int,
        now: int, jobs: list[ReservedJob], paused: set[str],
    ) -> int:
        """Later rounds of :meth:`_reserve_across`; appends to ``jobs`` and ``paused``."""
        # some partitions were not asked: look which have work
        probe = [part for part in order if part not in shares]
        ready = await self._probe(probe)
        paused.update(part for part in probe if ready.get(part) is None)
        # partitions known to have work first; a partition not asked in a round keeps its
        # place, one that filled its share may have more and goes to the back
        candidates = [part for part in probe if ready.get(part)] + full
        while remaining > 0 and candidates:
            shares = _split(remaining, candidates)
            calls: list[Call] = [
                (_RESERVE, self._anchor(part), (now, c)) for part, c in shares.items()]
            replies = await self._call_all(calls)
            candidates = [part for part in candidates if part not in shares]
            for (part, c), reply in zip(shares.items(), replies, strict=True):
                res = p.parse_reserve(part, reply)
                if res.status == "PAUSED":
                    paused.add(part)
                jobs += res.jobs
                remaining -= len(res.jobs)
                if len(res.jobs) == c:
                    candidates.append(part)
        return remaining

    async def _probe(self, parts: Sequence[str]) -> dict[str, bool | None]:
        """Per partition: None if paused, else whether it has reservable-looking work."""
        if not parts:
            return {}
        r = await self._pipe_each(parts, _probe_commands)
        out: dict[str, bool | None] = {}
        for i, part in enumerate(parts):
            paused, wait, ready = r[3 * i : 3 * i + 3]
            out[part] = None if paused else bool(int(wait) or int(ready))
        return out

    # -- per-partition fan-out -----------------------------------------------------------

    async def _fan_out(self, parts: Sequence[str], script: str, args: Sequence[Any]) -> list[Any]:
        """The same script call on every partition, one pipelined round trip."""
        s = SCRIPTS[script]
        return await self._call_all([(s, self._anchor(part), args) for part in parts])

    async def _pipe_each(self, parts: Sequence[str], build: Any) -> list[Any]:
        with map_errors():
            pipe = self.redis.pipeline(transaction=False)
            for part in parts:
                build(pipe, QueueKeys(part))
            return list(await pipe.execute())

    async def _locate(
        self, parts: Sequence[str], job_ids: Sequence[str]
    ) -> list[list[tuple[str, str]]]:
        """For each id: ``(partition, state)`` of every partition holding it."""
        with map_errors():
            pipe = self.redis.pipeline(transaction=False)
            for jid in job_ids:
                for part in parts:
                    pipe.hget(QueueKeys(part).job(jid), "state")
            states = await pipe.execute()
        k = len(parts)
        out: list[list[tuple[str, str]]] = []
        for i in range(len(job_ids)):
            row = states[i * k : (i + 1) * k]
            out.append([(parts[j], str(s)) for j, s in enumerate(row) if s is not None])
        return out

    @staticmethod
    def _pick(found: list[tuple[str, str]], want_state: str | None) -> str | None:
        """The partition to act on: the one in the wanted state, else the first."""
        if not found:
            return None
        for part, state in found:
            if want_state is None or state == want_state:
                return part
        return found[0][0]

    async def _job_partition(self, parts: Sequence[str], job_id: str, want: str | None) -> str:
        part = self._pick((await self._locate(parts, [validate_job_id(job_id)]))[0], want)
        if part is None:
            raise JobNotFound("locate", "NO_JOB", None, job_id)
        return part

    async def _batch_across(
        self, parts: Sequence[str], script: str, ids: list[str], want: str | None,
        build: Any,
    ) -> list[BatchResult]:
        """A batch admin script, each id sent to the partition holding it."""
        found = await self._locate(parts, ids)
        by_part: dict[str, list[int]] = {}
        out: list[BatchResult | None] = [None] * len(ids)
        for i, f in enumerate(found):
            part = self._pick(f, want)
            if part is None:
                out[i] = BatchResult(ids[i], "ERR", "NO_JOB")
            else:
                by_part.setdefault(part, []).append(i)
        s = SCRIPTS[script]
        calls: list[Call] = [
            (s, self._anchor(part), build([ids[i] for i in idx])) for part, idx in by_part.items()
        ]
        replies = await self._call_all(calls) if calls else []
        for (_part, idx), reply in zip(by_part.items(), replies, strict=True):
            for i, r in zip(idx, p.parse_batch(script, reply), strict=True):
                out[i] = r
        return [r for r in out if r is not None]

    @staticmethod
    def _lane_state(lane: str) -> str:
        return "wait" if lane == "gwait" else lane

    async def _stats_across(self, queue: str, parts: Sequence[str]) -> QueueStats:
        each = await self._stats_pipelined(parts)

        def last(name: str) -> int | None:
            values = [getattr(s, name) for s in each if getattr(s, name) is not None]
            return max(values) if values else None

        return QueueStats(
            queue=queue, paused=any(s.paused for s in each),
            waiting=sum(s.waiting for s in each),
            group_waiting=sum(s.group_waiting for s in each),
            waiting_total=sum(s.waiting_total for s in each),
            active=sum(s.active for s in each), delayed=sum(s.delayed for s in each),
            failed=sum(s.failed for s in each),
            completed_kept=sum(s.completed_kept for s in each),
            groups_ready=sum(s.groups_ready for s in each),
            last_activity_ms=last("last_activity_ms"), last_enqueue_ms=last("last_enqueue_ms"),
            last_reserve_ms=last("last_reserve_ms"), last_finish_ms=last("last_finish_ms"),
        )

    async def _stats_pipelined(self, parts: Sequence[str]) -> list[QueueStats]:
        from omniq.aio.client import STATS_READS, queue_stats_from, stats_commands

        r = await self._pipe_each(parts, stats_commands)
        return [queue_stats_from(part, r[i * STATS_READS : (i + 1) * STATS_READS])
                for i, part in enumerate(parts)]

    async def _get_job_across(self, parts: Sequence[str], job_id: str) -> JobInfo | None:
        from omniq.aio.client import job_info

        jid = validate_job_id(job_id)
        rows = await self._pipe_each(parts, lambda pipe, k: pipe.hgetall(k.job(jid)))
        for part, raw in zip(parts, rows, strict=True):
            if raw:
                return job_info(part, job_id, raw)
        return None
