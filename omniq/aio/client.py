"""The asyncio client: every queue operation as one script call (or one pipelined batch)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from omniq import _protocol as p
from omniq._keys import (
    QueueKeys,
    child_anchor,
    queue_anchor,
    split_partition,
    validate_job_id,
    validate_queue_name,
)
from omniq._scripts import SCRIPTS
from omniq.aio._connect import AnyRedis, ConnectionSettings
from omniq.aio._partitioned import PartitionedOps
from omniq.aio._transport import Call, ScriptRunner, map_errors
from omniq.codec import DEFAULT_MAX_PAYLOAD_BYTES, encode_payload, encode_result, to_json_value
from omniq.codec import truncate_error as _truncate_error
from omniq.errors import DuplicateJobError, InvalidArgument, PartitionError, ScriptError
from omniq.types import (
    Ack,
    BatchResult,
    FailOutcome,
    JobInfo,
    JobSpec,
    Lease,
    QueueStats,
    ReservedJob,
    ReserveResult,
)

if TYPE_CHECKING:
    from omniq.aio.worker import Worker

__all__ = ["DEFAULT_BACKOFF_MS", "DEFAULT_MAX_ATTEMPTS", "DEFAULT_TIMEOUT_MS", "AsyncOmniq"]

DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_TIMEOUT_MS = 30_000
DEFAULT_BACKOFF_MS = 5_000
PUBLISH_CHUNK = 1000
DEFAULT_CHILD_TTL_MS = 7 * 24 * 3600 * 1000

_S = SCRIPTS
_ENQUEUE = _S["enqueue"]
_RESERVE = _S["reserve"]
_HEARTBEAT = _S["heartbeat"]
_ACK_SUCCESS = _S["ack_success"]
_ACK_FAIL = _S["ack_fail"]
_ACK_RESERVE = _S["ack_reserve"]


class AsyncOmniq(PartitionedOps):
    """Asyncio OmniQ client, wire-compatible with the official OmniQ v1 clients.

    Use it as ``async with AsyncOmniq(url="redis://localhost:6379/0") as omniq:`` or call
    :meth:`aclose` when done. Pass ``redis=`` to share an existing ``redis.asyncio.Redis``
    or ``RedisCluster`` (it is then not closed by :meth:`aclose`).

    Redis Cluster: a ``redis+cluster://host:port`` URL (``rediss+cluster://`` for TLS) or
    ``cluster=True`` connects to a cluster through any of its nodes. Every queue lives in
    one slot (its keys share the hash tag ``{name}``); batches that span queues
    (heartbeats, ``reserve`` over several queues) are split by node, one round trip per
    node.

    ``now_ms`` on any method overrides the clock (tests, replays); 0 uses the server clock.

    Retention: ``keep_completed`` (default 100) and ``keep_failed`` (default None = keep
    every failed job, as the official clients do) bound the completed and failed lists;
    the oldest jobs beyond them are deleted. ``child_ttl_ms`` (default 7 days, 0 = never)
    is the expiry of parent/child counters started without an explicit ``ttl_ms``.

    Network: a command whose connection breaks is never re-sent (it may have run):
    :class:`~omniq.errors.ConnectionFailed` then means "unknown outcome". Set
    ``socket_timeout`` (seconds) so that a link whose peer vanished without closing it
    (a black hole) fails the command instead of waiting until TCP gives up. TLS: a
    ``rediss://`` URL or ``ssl=True``, with ``ssl_ca_certs`` (and ``ssl_certfile`` /
    ``ssl_keyfile`` for client certificates).

    Partitioned queues (:meth:`partition_queue`): every method takes the logical name
    and acts on all its partitions, except the lease operations (``heartbeat*``,
    ``ack_*``), which take the partition name that ``ReservedJob.queue`` carries.

    Script calls (every queue operation) go over one multiplexed connection of omniq's own
    (:mod:`omniq.aio._resp`, lower overhead per call than redis-py) when the client builds
    its connections from ``url`` or ``host``/``port``; other commands (pub/sub, reads,
    stats) use redis-py. ``lean_transport=False`` sends everything through redis-py, as
    does a client built around ``redis=``.
    """

    def __init__(
        self,
        redis: AnyRedis | None = None,
        *,
        url: str | None = None,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        ssl: bool = False,
        client_name: str | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        keep_completed: int = 100,
        keep_failed: int | None = None,
        child_ttl_ms: int = DEFAULT_CHILD_TTL_MS,
        socket_timeout: float | None = None,
        max_connections: int | None = None,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        cluster: bool = False,
        lean_transport: bool = True,
    ) -> None:
        settings: ConnectionSettings | None = None
        if redis is not None:
            self.redis: AnyRedis = redis
            self._owns_redis = False
        else:
            settings = ConnectionSettings.from_options(
                url=url, host=host, port=port, db=db, username=username, password=password,
                ssl=ssl, client_name=client_name, socket_timeout=socket_timeout,
                max_connections=max_connections, ssl_ca_certs=ssl_ca_certs,
                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, cluster=cluster,
            )
            self.redis = settings.redis()
            self._owns_redis = True
        self.max_payload_bytes = check_limit(max_payload_bytes)
        self.keep_completed = p.check_non_negative(keep_completed, "keep_completed")
        self.keep_failed = (
            None if keep_failed is None else p.check_non_negative(keep_failed, "keep_failed")
        )
        self._keep_failed_arg = "" if keep_failed is None else str(self.keep_failed)
        self.child_ttl_ms = p.check_non_negative(child_ttl_ms, "child_ttl_ms")
        # scripts over the lean connection (None: redis-py) when we own the connections
        self._lean = settings.lean() if settings is not None and lean_transport else None
        self._runner = ScriptRunner(self.redis, self._lean)
        self._anchors: dict[str, str] = {}
        self._init_partitions()
        self._pid = os.getpid()

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (not a Redis client that was passed in)."""
        if self._lean is not None:
            await self._lean.aclose()
        if self._owns_redis:
            await self.redis.aclose()

    async def ping(self) -> bool:
        """Check the connection."""
        with map_errors():
            return bool(await self.redis.ping())

    def _anchor(self, queue: str) -> str:
        a = self._anchors.get(queue)
        if a is None:
            a = queue_anchor(queue)
            if len(self._anchors) < 10_000:
                self._anchors[queue] = a
        return a

    @staticmethod
    def queue_base(queue: str) -> str:
        """``{queue}``: the hash-tagged key prefix of a queue."""
        return "{" + validate_queue_name(queue) + "}"

    # -- publishing --------------------------------------------------------------------

    async def publish(
        self,
        queue: str,
        payload: Any,
        *,
        job_id: str | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        backoff_ms: int = DEFAULT_BACKOFF_MS,
        due_ms: int = 0,
        delay_ms: int = 0,
        gid: str | None = None,
        group_limit: int = 0,
        now_ms: int = 0,
    ) -> str:
        """Enqueue one job and return its id (a new ULID unless ``job_id`` is given).

        ``payload`` must be a JSON object or array (dict or list). ``due_ms`` is an absolute
        epoch time, ``delay_ms`` a delay from now. Jobs with the same ``gid`` run FIFO with
        at most ``group_limit`` (first writer wins; default 1) at a time.

        :raises InvalidArgument: bad options or payload (nothing is written).
        :raises DuplicateJobError: ``job_id`` already exists (it is left untouched).
        """
        n = self._layouts.get(queue)
        if n is None:  # not seen yet: publish as unpartitioned, the script refuses otherwise
            validate_queue_name(queue)
        opts = p.JobOptions(
            max_attempts=max_attempts, timeout_ms=timeout_ms, backoff_ms=backoff_ms,
            due_ms=due_ms, delay_ms=delay_ms, gid=gid, group_limit=group_limit,
        )
        jid = p.new_job_id() if job_id is None else validate_job_id(job_id)
        data = encode_payload(payload, self.max_payload_bytes)
        args = [p.check_now(now_ms), 1, *p.enqueue_fields(jid, data, opts)]
        if n:
            await self._publish_to(queue, n, jid, job_id is not None, args, opts.gid)
            return jid
        try:
            p.parse_ok("enqueue", await self._runner.call(_ENQUEUE, self._anchor(queue), args),
                       jid)
        except PartitionError as exc:  # a partitioned queue (nothing was written)
            if exc.code != "PARTITIONED":
                raise
            n = await self._read_layout(queue)
            await self._publish_to(queue, n, jid, job_id is not None, args, opts.gid)
        else:
            if n is None:
                self._known_unpartitioned(queue)
        return jid

    async def publish_json(self, queue: str, payload: Any, **options: Any) -> str:
        """Publish a msgspec Struct, dataclass, pydantic model or plain JSON value.

        The value is converted to JSON builtins first and must become an object or array.
        Options are those of :meth:`publish`.
        """
        if not isinstance(payload, dict | list):
            payload = to_json_value(payload)
        return await self.publish(queue, payload, **options)

    async def publish_many(
        self,
        queue: str,
        jobs: Iterable[JobSpec | Mapping[str, Any] | Sequence[Any]],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        backoff_ms: int = DEFAULT_BACKOFF_MS,
        gid: str | None = None,
        group_limit: int = 0,
        delay_ms: int = 0,
        now_ms: int = 0,
    ) -> list[str]:
        """Enqueue many jobs in one round trip; returns their ids in order.

        Each item is a payload (dict or list) or a :class:`JobSpec` for per-job options.
        Everything is validated before anything is sent. Jobs are written by chunks of
        1,000, each chunk all-or-nothing; a duplicate id raises
        :class:`DuplicateJobError` and no job of its chunk is written. On a partitioned
        queue each partition gets its own calls (in the same round trip); partitions
        cannot be written atomically together, so when one refuses, the others' jobs
        may be written: the exception's ``published_ids`` lists them.
        """
        n = self._layouts.get(queue)
        if n is None:  # not seen yet: publish as unpartitioned, the script refuses otherwise
            validate_queue_name(queue)
        now = p.check_now(now_ms)
        defaults: dict[str, Any] = {
            "max_attempts": max_attempts, "timeout_ms": timeout_ms, "backoff_ms": backoff_ms,
            "gid": gid, "group_limit": group_limit, "delay_ms": delay_ms,
        }
        base_opts = p.JobOptions(**defaults)
        ids: list[str] = []
        fields: list[Any] = []
        seen: set[str] = set()
        routes: list[tuple[str, bool]] = []
        limit = self.max_payload_bytes
        for job in jobs:
            explicit = False
            if isinstance(job, JobSpec):
                explicit = job.job_id is not None
                jid = p.new_job_id() if job.job_id is None else validate_job_id(job.job_id)
                given = {
                    k: getattr(job, k)
                    for k in ("max_attempts", "timeout_ms", "backoff_ms", "gid", "group_limit",
                              "delay_ms", "due_ms")
                    if getattr(job, k) is not None
                }
                opts = p.JobOptions(**{**defaults, **given}) if given else base_opts
                payload = job.payload
                if not isinstance(payload, dict | list):
                    payload = to_json_value(payload)
            else:
                jid, opts, payload = p.new_job_id(), base_opts, job
            if jid in seen:
                raise DuplicateJobError("publish_many", "DUPLICATE", "repeated in batch", jid)
            seen.add(jid)
            ids.append(jid)
            routes.append((opts.gid, explicit))
            fields.extend(p.enqueue_fields(jid, encode_payload(payload, limit), opts))
        if not ids:
            return ids
        if n:
            await self._publish_many_to(queue, n, now, ids, fields, routes, PUBLISH_CHUNK)
            return ids
        anchor = self._anchor(queue)
        step = PUBLISH_CHUNK * p.ENQUEUE_FIELDS
        calls: list[Call] = []
        for start in range(0, len(fields), step):
            chunk = fields[start : start + step]
            calls.append((_ENQUEUE, anchor, [now, len(chunk) // p.ENQUEUE_FIELDS, *chunk]))
        try:
            for reply in await self._call_all(calls):
                p.parse_ok("publish_many", reply)
        except PartitionError as exc:  # a partitioned queue: every chunk was refused
            if exc.code != "PARTITIONED":
                raise
            n = await self._read_layout(queue)
            await self._publish_many_to(queue, n, now, ids, fields, routes, PUBLISH_CHUNK)
        else:
            if n is None:
                self._known_unpartitioned(queue)
        return ids

    # -- consuming ---------------------------------------------------------------------

    async def consume(
        self,
        queue: str | Sequence[str],
        handler: Callable[..., Any],
        *,
        concurrency: int = 1,
        drain: bool = False,
        verbose: bool = False,
        handle_signals: bool | None = None,
        **worker_options: Any,
    ) -> Worker:
        """Run a :class:`~omniq.aio.worker.Worker` on ``queue`` (or several queues, in
        priority order) until it is stopped or, with ``drain=True``, until nothing is ready
        and nothing is in flight. Returns the finished worker (see ``worker.stats``).

        SIGINT/SIGTERM stop it gracefully when called from the main thread (a second
        signal stops at once); pass ``handle_signals=False`` to leave signals alone.
        """
        from omniq.aio.worker import Worker

        worker = Worker(
            self, queue, handler, concurrency=concurrency, drain=drain, verbose=verbose,
            handle_signals=True if handle_signals is None else handle_signals,
            **worker_options,
        )
        await worker.run()
        return worker

    # -- leasing -----------------------------------------------------------------------

    async def reserve(self, queue: str, *, now_ms: int = 0) -> ReservedJob | None:
        """Lease the next job of the queue, or return None (empty or paused)."""
        res = await self.reserve_many(queue, 1, now_ms=now_ms)
        return res.jobs[0] if res.jobs else None

    async def reserve_many(self, queue: str, count: int, *, now_ms: int = 0) -> ReserveResult:
        """Lease up to ``count`` (1-1000) jobs in one round trip.

        Groups are served round-robin, FIFO within a group, alternating with ungrouped jobs.
        On a partitioned queue the batch is filled from several partitions, starting at a
        partition that rotates on every call; each job's ``queue`` is its partition.
        """
        n = await self._layout(queue)
        count = p.check_positive(count, "count")
        if count > 1000:
            raise InvalidArgument("count must be at most 1000")
        if n:
            _, res = await self._reserve_across(
                queue, self._parts(queue, n), count, {}, p.check_now(now_ms))
            assert res is not None
            return res
        anchor = self._anchor(queue)
        reply = await self._runner.call(_RESERVE, anchor, (p.check_now(now_ms), count))
        return p.parse_reserve(queue, reply)

    async def heartbeat(
        self, queue: str, job_id: str, lease_token: str, *, now_ms: int = 0
    ) -> int:
        """Extend a lease to now + the job's timeout; returns the new ``lock_until_ms``.

        :raises LeaseLost: the lease is no longer held by this token.
        """
        self._lease_queue(queue)
        anchor = self._anchor(queue)
        _lease_id(job_id)
        reply = await self._runner.call(
            _HEARTBEAT, anchor, (p.check_now(now_ms), 1, job_id, lease_token)
        )
        result = p.parse_heartbeats(reply, (job_id,))[0]
        if isinstance(result, ScriptError):
            raise result
        return result

    async def heartbeat_many(
        self, leases: Sequence[Lease | tuple[str, str, str]], *, now_ms: int = 0
    ) -> list[int | ScriptError]:
        """Extend many leases, over any number of queues, in one round trip.

        Returns, in order, the new ``lock_until_ms`` or the error (``LeaseLost``) of each.
        """
        now = p.check_now(now_ms)
        by_queue: dict[str, list[int]] = {}
        for i, (queue, _job_id, _token) in enumerate(leases):
            by_queue.setdefault(queue, []).append(i)
        for queue in by_queue:
            self._lease_queue(queue)
        calls: list[Call] = []
        for queue, idx in by_queue.items():
            args: list[Any] = [now, len(idx)]
            for i in idx:
                args += (leases[i][1], leases[i][2])
            calls.append((_HEARTBEAT, self._anchor(queue), args))
        replies = await self._call_all(calls)
        out: list[int | ScriptError] = [0] * len(leases)
        for (_queue, idx), reply in zip(by_queue.items(), replies, strict=True):
            parsed = p.parse_heartbeats(reply, [leases[i][1] for i in idx])
            for i, r in zip(idx, parsed, strict=True):
                out[i] = r
        return out

    async def _call_all(self, calls: Sequence[Call]) -> list[Any]:
        if len(calls) == 1:
            return [await self._runner.call(*calls[0])]
        replies = await self._runner.call_many(calls)
        for r in replies:
            if isinstance(r, Exception):
                with map_errors():
                    raise r
        return replies

    async def ack_success(
        self,
        queue: str,
        job_id: str,
        lease_token: str,
        *,
        result: Any = None,
        now_ms: int = 0,
    ) -> None:
        """Complete a leased job; ``result`` (any JSON value) is stored with it.

        :raises LeaseLost: the lease was lost (the job will run again elsewhere).
        """
        self._lease_queue(queue)
        anchor = self._anchor(queue)
        _lease_id(job_id)
        data = b"" if result is None else encode_result(result, self.max_payload_bytes)
        reply = await self._runner.call(
            _ACK_SUCCESS,
            anchor,
            (job_id, p.check_now(now_ms), lease_token, data, self.keep_completed),
        )
        p.parse_ok("ack_success", reply, job_id)

    async def ack_fail(
        self,
        queue: str,
        job_id: str,
        lease_token: str,
        error: str | None = None,
        *,
        final: bool = False,
        now_ms: int = 0,
    ) -> FailOutcome:
        """Fail a leased job: it retries after its backoff or, out of attempts (or with
        ``final=True``), ends failed.

        ``error`` is stored as ``last_error`` (cut to 4096 bytes on a character boundary).
        :raises LeaseLost: the lease was lost.
        """
        self._lease_queue(queue)
        anchor = self._anchor(queue)
        _lease_id(job_id)
        text = "" if error is None else _truncate_error(str(error))
        reply = await self._runner.call(
            _ACK_FAIL,
            anchor,
            (job_id, p.check_now(now_ms), lease_token, text, "1" if final else "0",
             self._keep_failed_arg),
        )
        return p.parse_fail(reply, job_id)

    async def ack_reserve(
        self,
        queue: str,
        acks: Sequence[Ack],
        reserve_count: int,
        *,
        now_ms: int = 0,
    ) -> tuple[list[FailOutcome | ScriptError | None], ReserveResult | None]:
        """Settle finished leases and reserve the next jobs in one round trip.

        Each :class:`Ack` is a success (``text`` = encoded result) or a failure (``text`` =
        error; ``final`` = no retry). Returns per ack None (completed), a FailOutcome or
        the error, and the reservation (None when ``reserve_count`` is 0). This is the
        worker's hot path. On a partitioned queue, ``queue`` is one partition.
        """
        self._lease_queue(queue)
        anchor = self._anchor(queue)
        args: list[Any] = [p.check_now(now_ms), self.keep_completed, len(acks)]
        for ack in acks:
            kind = "S" if ack.ok else ("X" if ack.final else "F")
            args += (ack.job_id, ack.lease_token, kind, ack.text)
        args += (p.check_non_negative(reserve_count, "reserve_count"), self._keep_failed_arg)
        reply = await self._runner.call(_ACK_RESERVE, anchor, args)
        return p.parse_ack_reserve(queue, reply, [a.job_id for a in acks])

    # -- maintenance -------------------------------------------------------------------

    async def promote_delayed(
        self, queue: str, *, max_promote: int = 1000, now_ms: int = 0
    ) -> int:
        """Move delayed jobs that are due to their lane; returns how many moved
        (on a partitioned queue: at most ``max_promote`` per partition, summed)."""
        n = await self._layout(queue)
        args = (p.check_now(now_ms), p.check_positive(max_promote, "max_promote"))
        if n:
            replies = await self._fan_out(self._parts(queue, n), "promote_delayed", args)
            return sum(p.parse_count("promote_delayed", r) for r in replies)
        anchor = self._anchor(queue)
        return p.parse_count("promote_delayed", await self._runner.call(
            _S["promote_delayed"], anchor, args))

    async def reap_expired(self, queue: str, *, max_reap: int = 1000, now_ms: int = 0) -> int:
        """Retry or fail jobs whose lease expired; returns how many were reaped
        (on a partitioned queue: at most ``max_reap`` per partition, summed)."""
        n = await self._layout(queue)
        args = (p.check_now(now_ms), p.check_positive(max_reap, "max_reap"),
                self._keep_failed_arg)
        if n:
            replies = await self._fan_out(self._parts(queue, n), "reap_expired", args)
            return sum(p.parse_count("reap_expired", r) for r in replies)
        anchor = self._anchor(queue)
        return p.parse_count("reap_expired", await self._runner.call(
            _S["reap_expired"], anchor, args))

    # -- pause -------------------------------------------------------------------------

    async def pause(self, queue: str) -> None:
        """Stop new reservations on the queue (running and delayed jobs are untouched).

        A partitioned queue is paused partition by partition (one round trip)."""
        n = await self._layout(queue)
        if n:
            for r in await self._fan_out(self._parts(queue, n), "pause", ()):
                p.parse_ok("pause", r)
            return
        p.parse_ok("pause", await self._runner.call(_S["pause"], self._anchor(queue), ()))

    async def resume(self, queue: str) -> bool:
        """Allow reservations again; returns whether the queue (any partition) was paused."""
        n = await self._layout(queue)
        if n:
            replies = await self._fan_out(self._parts(queue, n), "resume", ())
            return any([p.parse_ok("resume", r)[1] == "1" for r in replies])
        r = p.parse_ok("resume", await self._runner.call(_S["resume"], self._anchor(queue), ()))
        return r[1] == "1"

    async def is_paused(self, queue: str) -> bool:
        """Whether the queue (on a partitioned queue: any partition) is paused."""
        n = await self._layout(queue)
        if n:
            flags = await self._pipe_each(self._parts(queue, n), _exists_paused)
            return any(flags)
        key = QueueKeys(queue).paused
        with map_errors():
            return bool(await self.redis.exists(key))

    # -- admin -------------------------------------------------------------------------

    async def retry_failed(self, queue: str, job_id: str, *, now_ms: int = 0) -> None:
        """Move a failed job back to its lane with its attempt count reset.

        :raises JobNotFound: no such job. :raises LaneMismatch: it is not failed.
        """
        n = await self._layout(queue)
        validate_job_id(job_id)
        if n:
            queue = await self._job_partition(self._parts(queue, n), job_id, "failed")
        anchor = self._anchor(queue)
        reply = await self._runner.call(_S["retry_failed"], anchor, (job_id, p.check_now(now_ms)))
        p.parse_ok("retry_failed", reply, job_id)

    async def retry_failed_batch(
        self, queue: str, job_ids: Sequence[str], *, now_ms: int = 0
    ) -> list[BatchResult]:
        """retry_failed for up to 100 jobs atomically (on a partitioned queue: atomically per
        partition); one ``(job_id, status, reason)`` each."""
        n = await self._layout(queue)
        ids = p.check_batch(job_ids)
        if not ids:
            return []
        now = p.check_now(now_ms)
        if n:
            return await self._batch_across(
                self._parts(queue, n), "retry_failed_batch", ids, "failed",
                lambda sel: (now, len(sel), *sel))
        anchor = self._anchor(queue)
        reply = await self._runner.call(_S["retry_failed_batch"], anchor, (now, len(ids), *ids))
        return p.parse_batch("retry_failed_batch", reply)

    async def remove_job(self, queue: str, job_id: str, lane: str, *, now_ms: int = 0) -> None:
        """Delete a job that is in ``lane`` (wait, delayed, failed, completed or gwait).

        Active jobs are never removed. A refusal changes nothing.
        :raises JobNotFound: no such job. :raises LaneMismatch: not in that lane, or active.
        """
        n = await self._layout(queue)
        validate_job_id(job_id)
        lane = p.check_lane(lane)
        if n:
            queue = await self._job_partition(
                self._parts(queue, n), job_id, self._lane_state(lane))
        anchor = self._anchor(queue)
        reply = await self._runner.call(
            _S["remove_job"], anchor, (job_id, lane, p.check_now(now_ms))
        )
        p.parse_ok("remove_job", reply, job_id)

    async def remove_jobs_batch(
        self, queue: str, lane: str, job_ids: Sequence[str], *, now_ms: int = 0
    ) -> list[BatchResult]:
        """remove_job for up to 100 jobs of one lane; one ``(job_id, status, reason)`` each."""
        n = await self._layout(queue)
        lane = p.check_lane(lane)
        ids = p.check_batch(job_ids)
        if not ids:
            return []
        now = p.check_now(now_ms)
        if n:
            return await self._batch_across(
                self._parts(queue, n), "remove_jobs_batch", ids, self._lane_state(lane),
                lambda sel: (lane, len(sel), *sel, now))
        anchor = self._anchor(queue)
        reply = await self._runner.call(
            _S["remove_jobs_batch"], anchor, (lane, len(ids), *ids, now)
        )
        return p.parse_batch("remove_jobs_batch", reply)

    # -- parent / child ----------------------------------------------------------------

    async def childs_init(self, key: str, expected: int, *, ttl_ms: int = 0) -> None:
        """Start a completion counter expecting ``expected`` children.

        An unfinished counter (and its set of counted children) expires after ``ttl_ms``;
        0 (the default) uses the client's ``child_ttl_ms`` (7 days unless configured; a
        client built with ``child_ttl_ms=0`` creates counters that never expire).
        :raises CounterError: ALREADY_INIT.
        """
        anchor = child_anchor(key)
        ttl = p.check_non_negative(ttl_ms, "ttl_ms") or self.child_ttl_ms
        args = (p.check_positive(expected, "expected"), ttl)
        p.parse_ok("childs_init", await self._runner.call(_S["childs_init"], anchor, args))

    async def child_ack(self, key: str, child_id: str) -> int:
        """Count ``child_id`` as done (idempotent); returns how many children remain.

        0 means every child is done, also for a late repeat after completion.
        :raises CounterError: NO_COUNTER when the counter was never initialised.
        """
        anchor = child_anchor(key)
        _lease_id(child_id)
        r = p.parse_ok("child_ack", await self._runner.call(_S["child_ack"], anchor, (child_id,)))
        return int(r[1])

    # -- inspection --------------------------------------------------------------------

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The full stored record of a job, or None when it does not exist.

        On a partitioned queue every partition is looked at (one round trip) and
        ``JobInfo.queue`` is the partition that holds the job."""
        n = await self._layout(queue)
        if n:
            return await self._get_job_across(self._parts(queue, n), job_id)
        key = QueueKeys(queue).job(validate_job_id(job_id))
        with map_errors():
            raw = await self.redis.hgetall(key)
        if not raw:
            return None
        return job_info(queue, job_id, raw)

    async def result(self, queue: str, job_id: str) -> Any:
        """The decoded result a handler returned for a completed job, or None."""
        info = await self.get_job(queue, job_id)
        return None if info is None else info.result

    async def stats(self, queue: str) -> QueueStats:
        """Exact counts of every lane, read from the real containers in one round trip.

        A partitioned queue sums its partitions (``last_*`` times: the latest; ``paused``:
        any partition); a partition name ``queue.pI`` gives that partition alone."""
        n = await self._layout(queue)
        if n:
            return await self._stats_across(queue, self._parts(queue, n))
        k = QueueKeys(queue)
        with map_errors():
            pipe = self.redis.pipeline(transaction=False)
            stats_commands(pipe, k)
            results = await pipe.execute()
        return queue_stats_from(queue, results)

    async def queues(self) -> list[str]:
        """Names of the queues on the server (found by their ``{name}:stats`` hashes).

        A partitioned queue is listed once, by its logical name (found by its
        ``{name}:partitions`` layout key)."""
        names: set[str] = set()
        layouts: dict[str, int] = {}
        with map_errors():
            async for key in self.redis.scan_iter(match="*:stats", count=1000, _type="hash"):
                with contextlib.suppress(InvalidArgument):
                    names.add(validate_queue_name(_base_name(key, ":stats")))
            async for key in self.redis.scan_iter(match="*:partitions", count=1000,
                                                  _type="string"):
                with contextlib.suppress(InvalidArgument):
                    name = validate_queue_name(_base_name(key, ":partitions"))
                    layouts[name] = await self._layout(name)
        out: set[str] = set(layouts)
        for name in names:
            base, index = split_partition(name)
            if index is None or index >= layouts.get(base, 0):
                out.add(name)
        return sorted(out)


STATS_READS = 9


def stats_commands(pipe: Any, k: QueueKeys) -> None:
    """Queue the reads of :meth:`AsyncOmniq.stats` (``STATS_READS`` commands) on a pipeline."""
    pipe.exists(k.paused)
    pipe.llen(k.wait)
    pipe.zcard(k.idx_wait)
    pipe.zcard(k.active)
    pipe.zcard(k.delayed)
    pipe.llen(k.failed)
    pipe.llen(k.completed)
    pipe.zcard(k.groups_ready)
    pipe.hmget(k.stats, "last_activity_ms", "last_enqueue_ms", "last_reserve_ms",
               "last_finish_ms")


def queue_stats_from(queue: str, results: Sequence[Any]) -> QueueStats:
    """Build :class:`QueueStats` from the replies of :func:`stats_commands`."""
    paused, wait, idx_wait, active, delayed, failed, completed, ready, times = results
    total = max(int(idx_wait), int(wait))
    t = [_opt_int(v) for v in times]
    return QueueStats(
        queue=queue, paused=bool(paused), waiting=int(wait), group_waiting=total - int(wait),
        waiting_total=total, active=int(active), delayed=int(delayed), failed=int(failed),
        completed_kept=int(completed), groups_ready=int(ready), last_activity_ms=t[0],
        last_enqueue_ms=t[1], last_reserve_ms=t[2], last_finish_ms=t[3],
    )


def _exists_paused(pipe: Any, k: QueueKeys) -> None:
    pipe.exists(k.paused)


def _base_name(key: str | bytes, suffix: str) -> str:
    """``{name}<suffix>`` -> ``name``."""
    k = key.decode() if isinstance(key, bytes) else key
    name = k[: -len(suffix)]
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1]
    return name


def check_limit(value: int) -> int:
    """Validate a byte limit."""
    return p.check_positive(value, "max_payload_bytes")


def _lease_id(job_id: object) -> str:
    """A job id as ``reserve`` returned it: any non-empty str. Other clients (the official
    ones) create ids without our publish rules, and their jobs must still heartbeat and ack."""
    if not isinstance(job_id, str) or not job_id:
        raise InvalidArgument("job id must be a non-empty str")
    return job_id


def _opt_int(v: Any) -> int | None:
    if v is None or v == "" or v == b"":
        return None
    try:
        return int(v)
    except ValueError:
        return None


def _opt_str(v: str | None) -> str | None:
    return v if v else None


def job_info(queue: str, job_id: str, raw: Mapping[Any, Any]) -> JobInfo:
    """Build a :class:`JobInfo` from an HGETALL reply."""
    f = {
        (k.decode() if isinstance(k, bytes) else k): (
            v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        )
        for k, v in raw.items()
    }
    return JobInfo(
        queue=queue,
        job_id=f.get("id") or job_id,
        state=f.get("state", ""),
        payload_raw=f.get("payload", ""),
        gid=_opt_str(f.get("gid")),
        attempt=_opt_int(f.get("attempt")) or 0,
        max_attempts=_opt_int(f.get("max_attempts")) or 0,
        timeout_ms=_opt_int(f.get("timeout_ms")) or 0,
        backoff_ms=_opt_int(f.get("backoff_ms")) or 0,
        created_ms=_opt_int(f.get("created_ms")),
        updated_ms=_opt_int(f.get("updated_ms")),
        queued_ms=_opt_int(f.get("queued_ms")),
        first_started_ms=_opt_int(f.get("first_started_ms")),
        last_started_ms=_opt_int(f.get("last_started_ms")),
        completed_ms=_opt_int(f.get("completed_ms")),
        failed_ms=_opt_int(f.get("failed_ms")),
        due_ms=_opt_int(f.get("due_ms")),
        lock_until_ms=_opt_int(f.get("lock_until_ms")),
        lease_token=_opt_str(f.get("lease_token")),
        last_error=_opt_str(f.get("last_error")),
        last_error_ms=_opt_int(f.get("last_error_ms")),
        result_raw=_opt_str(f.get("result")),
        fields=f,
    )

