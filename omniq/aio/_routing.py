"""Routing: which physical queues an operation talks to, and calling them.

A logical queue is a list of physical queues (:class:`Targets`): ``[name]`` when it is not
partitioned, ``[name.p0, ..., name.pN-1]`` when it is (see docs/protocol.md, 2.6). Every
client operation is written once as "targets -> script calls -> combine", and a plain queue
is simply the one-partition case; the single-target paths send exactly the one call they
always did.

:class:`Routing` owns the layout cache, the anchors, the rotation counters, the fan-out of
one call to every partition, the location of a job among partitions, and reservation over
several partitions (rotation and top-up). The worker uses it too (``AsyncOmniq.routing``).

Nothing here sends keys of two partitions in one script call: every operation is one
script call (or single-key reads) per partition, pipelined; a cluster pipeline splits
them by node.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from omniq._keys import (
    QueueKeys,
    layout_key,
    partition_index,
    partition_name,
    queue_anchor,
    validate_job_id,
    validate_queue_name,
)
from omniq._limits import MAX_PARTITIONS
from omniq._protocol import leases, reads
from omniq._protocol.admin import PARTITION, parse_partition, partition_args
from omniq._protocol.reads import Command
from omniq._scripts import Script
from omniq.aio._connect import AnyRedis
from omniq.aio._transport import ScriptRunner, map_errors
from omniq.errors import InvalidArgument, JobNotFound, OmniqError, PartitionError
from omniq.types import Ack, QueueStats, ReservedJob, ReserveResult

__all__ = ["CallDefaults", "QueueCall", "Routing", "Targets"]

_CACHE_MAX = 10_000  # queue names remembered (layouts, anchors)

QueueCall = tuple[Script, str, Sequence[Any]]
"""A script call on one physical queue: (script, queue name, ARGV)."""


class Targets(NamedTuple):
    """The physical queues of a queue name: ``parts == [queue]`` unless it is partitioned."""

    queue: str
    parts: list[str]

    @property
    def partitioned(self) -> bool:
        """Whether ``queue`` is a logical queue spread over partitions."""
        return self.parts[0] != self.queue


class CallDefaults:
    """What a client sends with its script calls: how many finished jobs the scripts keep
    (with every ack and reap), the event stream's length (with every call that changes a
    job; 0: no events) and the age limits new jobs get unless a publish gives its own."""

    __slots__ = ("events_maxlen", "keep_completed", "keep_completed_ms", "keep_failed",
                 "keep_failed_arg", "keep_failed_ms")

    def __init__(
        self, keep_completed: int, keep_failed: int | None, *, events_maxlen: int = 0,
        keep_completed_ms: int = 0, keep_failed_ms: int = 0,
    ) -> None:
        self.keep_completed = keep_completed
        self.keep_failed = keep_failed
        # the scripts' text form: '' keeps every failed job
        self.keep_failed_arg = "" if keep_failed is None else str(keep_failed)
        self.events_maxlen = events_maxlen
        self.keep_completed_ms = keep_completed_ms
        self.keep_failed_ms = keep_failed_ms

    def ages(self, keep_completed_ms: int | None, keep_failed_ms: int | None) -> dict[str, int]:
        """A publish's age limits (``JobOptions`` keywords): None takes the client's."""
        return {
            "keep_completed_ms": self.keep_completed_ms if keep_completed_ms is None
            else keep_completed_ms,
            "keep_failed_ms": self.keep_failed_ms if keep_failed_ms is None else keep_failed_ms,
        }


def _split(count: int, order: Sequence[str]) -> dict[str, int]:
    """Share ``count`` over ``order`` as evenly as possible, the first ones first."""
    k = len(order)
    base, extra = divmod(count, k)
    return {part: base + (1 if i < extra else 0) for i, part in enumerate(order)
            if base or i < extra}


def _collect(part: str, res: ReserveResult, jobs: list[ReservedJob], paused: set[str],
             limited: dict[str, ReserveResult], more: set[str]) -> int:
    """Add one partition's reservation to ``jobs`` (and to ``paused``, ``limited`` or
    ``more``, an EMPTY reply that says to call again); returns its size."""
    if res.status == "PAUSED":
        paused.add(part)
    elif res.status == "LIMITED":
        limited[part] = res
    elif res.more:
        more.add(part)
    jobs += res.jobs
    return len(res.jobs)


def _limited(limited: dict[str, ReserveResult], paused: set[str], k: int) -> ReserveResult:
    """The LIMITED reservation of a partitioned queue: ``"queue"`` only when every
    partition is paused or stopped by its share of the queue-wide limit (else a wake-up
    may bring a job another partition can lease), due at the earliest partition's time."""
    whole = len(paused) + sum(r.limited_by == "queue" for r in limited.values()) == k
    return ReserveResult("LIMITED", [], min(r.retry_after_ms for r in limited.values()),
                         "queue" if whole else "group")


class Routing:
    """Layouts, targets and calls of one client (see the module docstring)."""

    def __init__(self, redis: AnyRedis, runner: ScriptRunner, defaults: CallDefaults) -> None:
        self.redis = redis
        self.runner = runner
        self.defaults = defaults
        self._layouts: dict[str, int] = {}  # logical queue -> partition count (0: plain)
        self._anchors: dict[str, str] = {}
        self._rr: dict[str, int] = {}  # rotation counters: publish spreading, reserve fairness
        # physical queues whose acks left dependency work for other queues (the worker
        # delivers it, docs/workflows.md)
        self.deps_due: set[str] = set()

    # -- names -------------------------------------------------------------------------

    def anchor(self, queue: str) -> str:
        """``{queue}:meta`` of a physical queue (validated, cached)."""
        a = self._anchors.get(queue)
        if a is None:
            a = queue_anchor(queue)
            if len(self._anchors) < _CACHE_MAX:
                self._anchors[queue] = a
        return a

    @staticmethod
    def parts(queue: str, n: int) -> list[str]:
        """The partition names of a queue with ``n`` partitions (``[queue]`` for 0)."""
        if n == 0:
            return [queue]
        return [partition_name(queue, i) for i in range(n)]

    # -- layouts -----------------------------------------------------------------------

    async def targets(self, queue: str) -> Targets:
        """The physical queues of ``queue`` (the layout is read once, then cached)."""
        n = self._layouts.get(queue)
        if n is None:
            n = await self.read_layout(queue)
        return Targets(queue, self.parts(queue, n))

    async def read_layout(self, queue: str) -> int:
        """Read the partition count of ``queue`` from Redis (0: not partitioned)."""
        key = layout_key(queue)  # validates the name
        with map_errors():
            value = await self.redis.get(key)
        n = reads.parse_layout(queue, value)
        if n or len(self._layouts) < _CACHE_MAX:
            self._layouts[queue] = n
        return n

    def note_unpartitioned(self, queue: str) -> None:
        """An enqueue on the logical anchor succeeded: the queue is not partitioned."""
        if queue not in self._layouts and len(self._layouts) < _CACHE_MAX:
            self._layouts[queue] = 0

    def check_lease_queue(self, queue: str) -> None:
        """Lease operations need the physical queue (``job.queue``); no I/O."""
        if self._layouts.get(queue):
            raise InvalidArgument(
                f"queue {queue!r} is partitioned: settle a lease on its partition "
                f"(ReservedJob.queue / ctx.queue, such as {partition_name(queue, 0)})"
            )

    async def declare(self, queue: str, partitions: int) -> bool:
        """Store the layout of ``queue`` (see ``AsyncOmniq.partition_queue``)."""
        parts = self.parts(queue, partitions)  # validates the partition names' length
        if await self.read_layout(queue) == 0:
            # Partition names are ordinary queue names: refuse to adopt queues that already
            # hold jobs (checked before the layout is stored; not atomic with it).
            each = await self.stats_each(parts)
            held = sum(s.waiting_total + s.waiting_deps + s.active + s.delayed + s.failed
                       + s.completed_kept
                       for s in each)
            if held:
                raise PartitionError("partition", "QUEUE_NOT_EMPTY",
                                     f"{held} jobs in queues named like its partitions")
        stored = parse_partition(await self.call(PARTITION, queue, partition_args(partitions)))
        self._layouts[queue] = partitions
        return stored

    # -- publish -----------------------------------------------------------------------

    def publish_target(self, queue: str, gid: str, job_id: str | None,
                       dedup_key: str | None = None) -> str:
        """The physical queue a job goes to, without I/O: ``queue`` itself unless it is
        known to be partitioned, else the gid's partition, else the dedup key's (so every
        publish of one logical job meets its holder), else the explicit job id's, else the
        next one in turn. (A queue not known yet is published to as plain; the enqueue
        script refuses a partitioned one with ``PARTITIONED``.)"""
        n = self._layouts.get(queue)
        if not n:
            if n is None:
                validate_queue_name(queue)
            return queue
        if gid:
            i = partition_index(gid, n)
        elif dedup_key is not None:
            i = partition_index(dedup_key, n)
        elif job_id is not None:
            i = partition_index(job_id, n)
        else:
            i = self._next_rr("p:" + queue) % n
        return partition_name(queue, i)

    def _next_rr(self, key: str) -> int:
        i = self._rr.get(key)
        if i is None:
            i = random.randrange(MAX_PARTITIONS)  # clients do not all start at partition 0
        self._rr[key] = i + 1
        return i

    # -- calls -------------------------------------------------------------------------

    async def call(self, script: Script, queue: str, args: Sequence[Any]) -> Any:
        """One script call on a physical queue."""
        return await self.runner.call(script, self.anchor(queue), args)

    async def call_all(self, calls: Sequence[QueueCall]) -> list[Any]:
        """Several script calls in one round trip; the first error is raised."""
        replies = await self.call_all_results(calls)
        for r in replies:
            if isinstance(r, BaseException):
                raise r
        return replies

    async def call_all_results(self, calls: Sequence[QueueCall]) -> list[Any]:
        """Several script calls in one round trip; errors are returned in place (as omniq
        exceptions)."""
        if len(calls) == 1:
            script, queue, args = calls[0]
            try:
                return [await self.call(script, queue, args)]
            except OmniqError as exc:
                return [exc]
        anchored = [(s, self.anchor(q), a) for s, q, a in calls]
        replies = await self.runner.call_many(anchored)
        out: list[Any] = []
        for r in replies:
            if isinstance(r, Exception):
                try:
                    with map_errors():
                        raise r
                except OmniqError as exc:
                    r = exc
            out.append(r)
        return out

    async def call_each(self, t: Targets, script: Script, args: Sequence[Any]) -> list[Any]:
        """The same call on every physical queue of ``t``, in one round trip."""
        if len(t.parts) == 1:
            return [await self.call(script, t.parts[0], args)]
        return await self.call_all([(script, part, args) for part in t.parts])

    async def read_each(
        self, parts: Sequence[str], commands: Callable[[QueueKeys], list[Command]]
    ) -> list[list[Any]]:
        """Plain reads of each physical queue in one pipelined round trip; the replies of
        each queue in a list of their own."""
        with map_errors():
            pipe = self.redis.pipeline(transaction=False)
            sizes = []
            for part in parts:
                cmds = commands(QueueKeys(part))
                sizes.append(len(cmds))
                for cmd in cmds:
                    pipe.execute_command(*cmd)
            results = list(await pipe.execute())
        out: list[list[Any]] = []
        i = 0
        for size in sizes:
            out.append(results[i : i + size])
            i += size
        return out

    async def stats_each(self, parts: Sequence[str]) -> list[QueueStats]:
        """:class:`QueueStats` of each physical queue, one round trip."""
        rows = await self.read_each(parts, reads.stats_commands)
        return [reads.queue_stats_from(part, row) for part, row in zip(parts, rows, strict=True)]

    # -- locating jobs -----------------------------------------------------------------

    async def locate(
        self, t: Targets, job_ids: Sequence[str], want_state: str | None
    ) -> tuple[dict[str, list[int]], list[int]]:
        """Which physical queue holds each id: ``({queue: [indexes]}, [indexes not
        found])``. A plain queue needs no lookup (its scripts say NO_JOB themselves);
        among partitions, the one where the job is in ``want_state`` wins, else the lowest."""
        if not t.partitioned:
            return {t.parts[0]: list(range(len(job_ids)))}, []
        parts = t.parts
        with map_errors():
            pipe = self.redis.pipeline(transaction=False)
            for jid in job_ids:
                for part in parts:
                    pipe.hget(QueueKeys(part).job(jid), "state")
            states = await pipe.execute()
        k = len(parts)
        by_part: dict[str, list[int]] = {}
        missing: list[int] = []
        for i in range(len(job_ids)):
            row = states[i * k : (i + 1) * k]
            found = [(parts[j], str(s)) for j, s in enumerate(row) if s is not None]
            if not found:
                missing.append(i)
                continue
            part = next((p for p, s in found if want_state is None or s == want_state),
                        found[0][0])
            by_part.setdefault(part, []).append(i)
        return by_part, missing

    async def job_partition(self, t: Targets, job_id: str, want_state: str | None) -> str:
        """The physical queue holding one job. :raises JobNotFound: in no partition."""
        by_part, _ = await self.locate(t, [validate_job_id(job_id)], want_state)
        if not by_part:
            raise JobNotFound("locate", "NO_JOB", None, job_id)
        return next(iter(by_part))

    # -- reserving ---------------------------------------------------------------------

    async def reserve(
        self, t: Targets, count: int, acks: Mapping[str, Sequence[Ack]], now: int
    ) -> tuple[dict[str, list[leases.AckOutcome]], ReserveResult | None]:
        """Settle ``acks`` (per physical queue) and reserve up to ``count`` jobs of ``t``.

        Returns the ack outcomes per physical queue and the reservation (None when
        ``count`` is 0). A plain queue is one call (``reserve``, or ``ack_reserve`` when
        there are acks). Over partitions, the starting partition rotates on every call
        and the count is shared evenly from there (one pipelined round trip); when that
        comes back short and some partitions got no share (a count smaller than the
        partitions), they are probed with plain reads (one round trip), and later rounds
        give what is missing to partitions the probe found ready or that filled their
        share.
        """
        if not t.partitioned:
            return await self._reserve_one(t.parts[0], count, acks, now)
        parts = t.parts
        k = len(parts)
        start = self._next_rr("r:" + t.queue) % k
        order = [parts[(start + i) % k] for i in range(k)]
        shares = _split(count, order) if count else {}
        outcomes: dict[str, list[leases.AckOutcome]] = {}
        jobs: list[ReservedJob] = []
        paused: set[str] = set()
        limited: dict[str, ReserveResult] = {}
        more: set[str] = set()
        calls: list[QueueCall] = []
        asked: list[tuple[str, int, list[str] | None]] = []
        for part in order:
            c = shares.get(part, 0)
            a = acks.get(part)
            if a:
                calls.append((leases.ACK_RESERVE, part, self._ack_reserve_args(now, a, c)))
                asked.append((part, c, [x.job_id for x in a]))
            elif c:
                calls.append((leases.RESERVE, part, self._reserve_args(now, c)))
                asked.append((part, c, None))
        replies = await self.call_all(calls) if calls else []
        full: list[str] = []
        remaining = count
        for (part, c, ack_ids), reply in zip(asked, replies, strict=True):
            res: ReserveResult | None
            if ack_ids is not None:
                outcomes[part], res = leases.parse_ack_reserve(part, reply, ack_ids,
                                                               self.deps_due)
            else:
                res = leases.parse_reserve(part, reply)
            if res is None or c == 0:
                continue
            remaining -= _collect(part, res, jobs, paused, limited, more)
            if len(res.jobs) == c:
                full.append(part)
        try:
            if remaining > 0:
                await self._top_up(order, shares, full, remaining, now, jobs, paused, limited,
                                   more)
        except OmniqError:
            if not jobs:
                raise
            # jobs are leased already: hand them out rather than leave them to expire
        if not count:
            return outcomes, None
        if jobs:
            return outcomes, ReserveResult("JOB", jobs)
        if len(paused) < k and limited:
            return outcomes, _limited(limited, paused, k)
        if more:
            return outcomes, ReserveResult("EMPTY", [], more=True)
        return outcomes, ReserveResult("PAUSED" if len(paused) == k else "EMPTY", [])

    def _reserve_args(self, now: int, count: int) -> tuple[int, int, int]:
        return leases.reserve_args(now, count, self.defaults.events_maxlen)

    def _ack_reserve_args(self, now: int, acks: Sequence[Ack], count: int) -> list[Any]:
        d = self.defaults
        return leases.ack_reserve_args(now, d.keep_completed, acks, count, d.keep_failed_arg,
                                       d.events_maxlen)

    async def _reserve_one(
        self, queue: str, count: int, acks: Mapping[str, Sequence[Ack]], now: int
    ) -> tuple[dict[str, list[leases.AckOutcome]], ReserveResult | None]:
        a = acks.get(queue)
        if a:
            args = self._ack_reserve_args(now, a, count)
            reply = await self.call(leases.ACK_RESERVE, queue, args)
            outcomes, res = leases.parse_ack_reserve(queue, reply, [x.job_id for x in a],
                                                     self.deps_due)
            return {queue: outcomes}, res
        if not count:
            return {}, None
        reply = await self.call(leases.RESERVE, queue, self._reserve_args(now, count))
        return {}, leases.parse_reserve(queue, reply)

    async def _top_up(
        self, order: list[str], shares: dict[str, int], full: list[str], remaining: int,
        now: int, jobs: list[ReservedJob], paused: set[str],
        limited: dict[str, ReserveResult], more: set[str],
    ) -> None:
        """Later rounds of :meth:`reserve`; appends to ``jobs``, ``paused``, ``limited``
        and ``more``."""
        # some partitions were not asked: look which have work
        probe = [part for part in order if part not in shares]
        ready: dict[str, bool | None] = {}
        if probe:
            rows = await self.read_each(probe, reads.probe_commands)
            ready = {part: reads.parse_probe(row) for part, row in zip(probe, rows, strict=True)}
        paused.update(part for part in probe if ready.get(part) is None)
        # partitions known to have work first; a partition not asked in a round keeps its
        # place, one that filled its share may have more and goes to the back
        candidates = [part for part in probe if ready.get(part)] + full
        while remaining > 0 and candidates:
            round_shares = _split(remaining, candidates)
            calls: list[QueueCall] = [(leases.RESERVE, part, self._reserve_args(now, c))
                                 for part, c in round_shares.items()]
            replies = await self.call_all(calls)
            candidates = [part for part in candidates if part not in round_shares]
            for (part, c), reply in zip(round_shares.items(), replies, strict=True):
                got = _collect(part, leases.parse_reserve(part, reply), jobs, paused, limited,
                               more)
                remaining -= got
                if got == c:
                    candidates.append(part)
