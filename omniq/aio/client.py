"""The asyncio client: every queue operation as one script call (or one pipelined batch).

Each method is "targets -> script calls -> combine": :mod:`omniq.aio._routing` gives the
physical queues of a name (one for a plain queue, N for a partitioned one) and sends the
calls; :mod:`omniq._protocol` builds their arguments and parses their replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self, Unpack

import msgspec

from omniq._keys import (
    QueueKeys,
    child_anchor,
    queue_base,
    split_partition,
    validate_job_id,
    validate_queue_name,
)
from omniq._limits import (
    DEFAULT_BACKOFF_MS,
    DEFAULT_CHILD_TTL_MS,
    DEFAULT_EVENTS_MAXLEN,
    DEFAULT_KEEP_COMPLETED,
    DEFAULT_MAINTENANCE_BATCH,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MISFIRE_GRACE_MS,
    DEFAULT_TIMEOUT_MS,
    ENQUEUE_FIELDS,
    MAX_DEPENDENTS,
    MAX_DEPS_OPS,
    MAX_PAGE,
    MAX_SCHEDULES_DUE,
    PUBLISH_CHUNK,
)
from omniq._protocol import admin, children, deps, enqueue, rate_limits, reads
from omniq._protocol import events as events_proto
from omniq._protocol import leases as leasing
from omniq._protocol import schedules as schedule_proto
from omniq._protocol.common import (
    check_batch,
    check_lane,
    check_non_negative,
    check_now,
    check_positive,
    lease_id,
    new_job_id,
    pick_now,
)
from omniq._protocol.events import Since, check_events_maxlen, check_since, check_types
from omniq._protocol.reads import Command
from omniq.aio._connect import AnyRedis, ConnectionSettings
from omniq.aio._events import EventStream, Waiters
from omniq.aio._routing import CallDefaults, QueueCall, Routing, Targets
from omniq.aio._transport import ScriptRunner, map_errors
from omniq.codec import encode_payload, encode_result, to_json_value, truncate_error
from omniq.errors import (
    DependencyCycle,
    DependencyError,
    DependencyNotFound,
    DuplicateJobError,
    InvalidArgument,
    OmniqError,
    PartialPublishError,
    PartitionError,
    ScheduleNotFound,
    ScriptError,
)
from omniq.settings import Settings, resolve
from omniq.types import (
    Ack,
    Backoff,
    BatchResult,
    CancelResult,
    DedupMode,
    DependencyPolicy,
    DependencyRef,
    FailOutcome,
    FireResult,
    FlowInfo,
    FlowJob,
    FlowNode,
    GroupOrder,
    GroupState,
    JobInfo,
    JobPage,
    JobSpec,
    Lease,
    Misfire,
    OnFailure,
    PublishOptions,
    QueueStats,
    RateLimit,
    ReservedJob,
    ReserveResult,
    ScheduleInfo,
)

if TYPE_CHECKING:
    from omniq.aio.worker import Worker

__all__ = ["DEFAULT_BACKOFF_MS", "DEFAULT_MAX_ATTEMPTS", "DEFAULT_TIMEOUT_MS", "AsyncOmniq"]

logger = logging.getLogger("omniq")

# how often a change that met a concurrent change (CHANGED) is read and tried again
_SCHEDULE_TRIES = 5

# the publish options of a FlowJob
_FLOW_OPTIONS = ("gid", "group_limit", "max_attempts", "timeout_ms", "backoff_ms", "delay_ms",
                 "keep_completed_ms", "keep_failed_ms", "expire_in_ms", "run_timeout_ms",
                 "backoff", "backoff_max_ms", "backoff_jitter")


# most queues one delivery follows a failure cascade to (the rest: their maintenance)
_CASCADE_QUEUES = 100


_SPEC_OPTIONS = ("max_attempts", "timeout_ms", "backoff_ms", "gid", "group_limit", "delay_ms",
                 "due_ms", "keep_completed_ms", "keep_failed_ms", "dedup_key", "dedup_ttl_ms",
                 "dedup", "expires_ms", "expire_in_ms", "run_timeout_ms", "backoff",
                 "backoff_max_ms", "backoff_jitter", "group_order", "on_failure")


class AsyncOmniq:
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
    the oldest jobs beyond them are deleted. ``keep_completed_ms`` and ``keep_failed_ms``
    (default 0 = no age limit) are the age limits the jobs this client publishes get
    unless a publish gives its own: a job is deleted that long after it finished (or
    earlier, by the count limits).

    Events: every script call that changes a job appends one entry to the queue's event
    stream (:meth:`events`, :meth:`wait`), kept to about ``events_maxlen`` entries per
    queue (default 10,000; 0 writes no events). ``child_ttl_ms`` (default 7 days, 0 = never)
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
        keep_completed: int = DEFAULT_KEEP_COMPLETED,
        keep_failed: int | None = None,
        keep_completed_ms: int = 0,
        keep_failed_ms: int = 0,
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
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
        self.socket_timeout = socket_timeout
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
        self.max_payload_bytes = check_positive(max_payload_bytes, "max_payload_bytes")
        self.defaults = CallDefaults(
            check_non_negative(keep_completed, "keep_completed"),
            None if keep_failed is None else check_non_negative(keep_failed, "keep_failed"),
            events_maxlen=check_events_maxlen(events_maxlen),
            keep_completed_ms=check_non_negative(keep_completed_ms, "keep_completed_ms"),
            keep_failed_ms=check_non_negative(keep_failed_ms, "keep_failed_ms"),
        )
        self.child_ttl_ms = check_non_negative(child_ttl_ms, "child_ttl_ms")
        # scripts over the lean connection (None: redis-py) when we own the connections
        self._lean = settings.lean() if settings is not None and lean_transport else None
        self._runner = ScriptRunner(self.redis, self._lean)
        self.routing = Routing(self.redis, self._runner, self.defaults)
        self._waiters: Waiters | None = None
        # (queue, schedule, rev) whose definition this client could not evaluate: logged once
        self._unplannable: set[tuple[str, str, int]] = set()

    @classmethod
    def from_settings(
        cls, settings: Settings | Mapping[str, Any] | None = None, **overrides: Any
    ) -> AsyncOmniq:
        """A client from :class:`~omniq.settings.Settings` (or a dict of them; None:
        ``Settings.load()``, the ``OMNIQ_*`` environment and the defaults), with keyword
        ``overrides`` on top (None values ignored). Nothing connects until the first call.

        :raises SettingsError: a bad setting, naming the key and its source.
        """
        return cls(**resolve(settings, overrides).client_options())

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (not a Redis client that was passed in)."""
        if self._waiters is not None:
            await self._waiters.aclose()
            self._waiters = None
        if self._lean is not None:
            await self._lean.aclose()
        if self._owns_redis:
            await self.redis.aclose()

    async def ping(self) -> bool:
        """Check the connection."""
        with map_errors():
            return bool(await self.redis.ping())

    @property
    def keep_completed(self) -> int:
        """Completed jobs kept per queue."""
        return self.defaults.keep_completed

    @property
    def keep_failed(self) -> int | None:
        """Failed jobs kept per queue (None: all)."""
        return self.defaults.keep_failed

    @property
    def events_maxlen(self) -> int:
        """About how many events each queue's stream keeps (0: this client writes none)."""
        return self.defaults.events_maxlen

    @staticmethod
    def queue_base(queue_name: str) -> str:
        """``{queue_name}``: the hash-tagged key prefix of a queue."""
        return queue_base(queue_name)

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
        keep_completed_ms: int | None = None,
        keep_failed_ms: int | None = None,
        dedup_key: str | None = None,
        dedup_ttl_ms: int = 0,
        dedup: DedupMode = "keep",
        expires_ms: int = 0,
        expire_in_ms: int = 0,
        run_timeout_ms: int = 0,
        backoff: Backoff = "fixed",
        backoff_max_ms: int = 0,
        backoff_jitter: bool = False,
        group_order: GroupOrder = "fifo",
        on_failure: OnFailure = "release",
        depends_on: Sequence[DependencyRef] | None = None,
        on_dependency_failure: DependencyPolicy = "fail",
        now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> str:
        """Enqueue one job and return its id (a new ULID unless ``job_id`` is given; with a
        ``dedup_key`` that a live job holds, that job's id, and nothing is written).

        ``payload`` must be a JSON object or array (dict or list). ``due_ms`` is an absolute
        epoch time, ``delay_ms`` a delay from now. Jobs with the same ``gid`` run FIFO, at
        most ``group_limit`` at a time: the first job of a burst that gives a limit sets it
        (0, the default, keeps the group's current limit, or 1 when it has none).
        ``keep_completed_ms`` / ``keep_failed_ms``: delete the job that long after it
        completed / failed for good (None: the client's setting; 0: only the count limits).

        Job control (docs/control.md): ``dedup_key`` (with ``dedup_ttl_ms`` and
        ``dedup="replace"``) publishes a logical job once; ``expires_ms`` (absolute) or
        ``expire_in_ms`` (relative) fails a job not started by then; ``run_timeout_ms``
        bounds one attempt's run time; ``backoff="exp"`` doubles ``backoff_ms`` per retry up
        to ``backoff_max_ms`` (0: no cap), ``backoff_jitter`` spreads it; ``group_order=
        "strict"`` keeps a failed attempt at the head of its group (``on_failure="block"``:
        a job that fails for good holds the group until it is retried or removed).

        ``depends_on`` (docs/workflows.md): job ids of this queue or ``(queue, job_id)``
        pairs; the job waits in state ``waiting_deps`` until they have all completed, and
        ``on_dependency_failure`` says what it does when one fails (``fail``, ``ignore``,
        ``wait``).

        :raises InvalidArgument: bad options or payload (nothing is written).
        :raises DuplicateJobError: ``job_id`` already exists (it is left untouched).
        :raises DependencyNotFound: a dependency does not exist (nothing is written).
        """
        routing = self.routing
        opts = enqueue.JobOptions(
            max_attempts=max_attempts, timeout_ms=timeout_ms, backoff_ms=backoff_ms,
            due_ms=due_ms, delay_ms=delay_ms, gid=gid, group_limit=group_limit,
            **self.defaults.ages(keep_completed_ms, keep_failed_ms),
            dedup_key=dedup_key, dedup_ttl_ms=dedup_ttl_ms, dedup=dedup,
            expires_ms=expires_ms, expire_in_ms=expire_in_ms, run_timeout_ms=run_timeout_ms,
            backoff=backoff, backoff_max_ms=backoff_max_ms, backoff_jitter=backoff_jitter,
            group_order=group_order, on_failure=on_failure,
        )
        # validates the name
        target = routing.publish_target(queue, opts.gid, job_id, opts.dedup_key)
        jid = new_job_id() if job_id is None else validate_job_id(job_id)
        data = encode_payload(payload, self.max_payload_bytes)
        cross: set[str] = set()
        if depends_on is not None:
            policy = deps.check_policy(on_dependency_failure)
            if depends_on:
                if target == queue:  # the layout decides where the job and its deps go
                    await routing.targets(queue)
                    target = routing.publish_target(queue, opts.gid, job_id, opts.dedup_key)
                found = await self._locate_dependencies(queue, jid, depends_on, {})
                # those on other queues first register this job, which is written after
                # (so no outcome can be lost in between: docs/workflows.md)
                other = [(q, i) for q, i in found if q != target]
                if other:
                    await self._link_dependencies([(target, jid, policy, other)])
                opts.extras = deps.with_dependencies(
                    opts.extras, [(q, i, q != target) for q, i in found], policy)
                cross = {q for q, _ in other}
        elif on_dependency_failure != "fail":
            deps.check_policy(on_dependency_failure)
        now = pick_now(now_ms, now_ms_override)
        args = enqueue.args(now, enqueue.job_fields(jid, data, opts),
                            self.defaults.events_maxlen)
        try:
            now_ids = enqueue.parse(await routing.call(enqueue.ENQUEUE, target, args), jid)
        except PartitionError as exc:  # a partitioned queue (nothing was written)
            if exc.code != "PARTITIONED" or target != queue:
                raise
            await routing.read_layout(queue)
            target = routing.publish_target(queue, opts.gid, job_id, opts.dedup_key)
            now_ids = enqueue.parse(await routing.call(enqueue.ENQUEUE, target, args), jid)
        else:
            if target == queue:
                routing.note_unpartitioned(queue)
        if cross:  # outcomes of dependencies that ended before this job was written
            await self._deliver_after_write(sorted(cross), every=True)
        return now_ids[0] if now_ids else jid

    async def publish_json(
        self, queue: str, payload: Any, **options: Unpack[PublishOptions]
    ) -> str:
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
        keep_completed_ms: int | None = None,
        keep_failed_ms: int | None = None,
        dedup_ttl_ms: int = 0,
        dedup: DedupMode = "keep",
        expires_ms: int = 0,
        expire_in_ms: int = 0,
        run_timeout_ms: int = 0,
        backoff: Backoff = "fixed",
        backoff_max_ms: int = 0,
        backoff_jitter: bool = False,
        group_order: GroupOrder = "fifo",
        on_failure: OnFailure = "release",
        now_ms: int = 0,
    ) -> list[str]:
        """Enqueue many jobs in one round trip; returns their ids in order (for a job whose
        ``dedup_key`` a live job holds, or an earlier job of the batch, that job's id).

        Each item is a payload (dict or list) or a :class:`JobSpec` for per-job options.
        Everything is validated before anything is sent. Jobs are written by chunks of
        1,000, each chunk all-or-nothing; a duplicate id raises
        :class:`DuplicateJobError` and no job of its chunk is written. On a partitioned
        queue each partition gets its own calls (in the same round trip); partitions
        cannot be written atomically together, so when some are refused after others
        were written, :class:`~omniq.errors.PartialPublishError` says which ids were.
        The job-control options are those of :meth:`publish` (``dedup_key`` per job, in
        its :class:`JobSpec`; the batch's ``dedup`` and ``dedup_ttl_ms`` apply to the jobs
        that have one).
        """
        routing = self.routing
        now = check_now(now_ms)
        defaults: dict[str, Any] = {
            "max_attempts": max_attempts, "timeout_ms": timeout_ms, "backoff_ms": backoff_ms,
            "gid": gid, "group_limit": group_limit, "delay_ms": delay_ms,
            **self.defaults.ages(keep_completed_ms, keep_failed_ms),
            "dedup_ttl_ms": dedup_ttl_ms, "dedup": dedup, "expires_ms": expires_ms,
            "expire_in_ms": expire_in_ms, "run_timeout_ms": run_timeout_ms, "backoff": backoff,
            "backoff_max_ms": backoff_max_ms, "backoff_jitter": backoff_jitter,
            "group_order": group_order, "on_failure": on_failure,
        }
        enqueue.check_dedup_options(dedup, dedup_ttl_ms)
        base_opts = enqueue.batch_job_options(defaults, {})
        ids: list[str] = []
        fields: list[Any] = []
        seen: set[str] = set()
        routes: list[tuple[str, str | None, str | None]] = []  # gid, explicit id, dedup key
        limit = self.max_payload_bytes
        with_deps: list[tuple[int, JobSpec]] = []
        for job in jobs:
            explicit: str | None = None
            if isinstance(job, JobSpec):
                if job.depends_on or job.on_dependency_failure is not None:
                    with_deps.append((len(ids), job))
                explicit = job.job_id
                jid = new_job_id() if job.job_id is None else validate_job_id(job.job_id)
                given = {k: getattr(job, k) for k in _SPEC_OPTIONS if getattr(job, k) is not None}
                opts = enqueue.batch_job_options(defaults, given) if given else base_opts
                payload = job.payload
                if not isinstance(payload, dict | list):
                    payload = to_json_value(payload)
            else:
                jid, opts, payload = new_job_id(), base_opts, job
            if jid in seen:
                raise DuplicateJobError("publish_many", "DUPLICATE", "repeated in batch", jid)
            seen.add(jid)
            ids.append(jid)
            routes.append((opts.gid, explicit, opts.dedup_key))
            fields.extend(enqueue.job_fields(jid, encode_payload(payload, limit), opts))
        if not ids:
            return ids
        if with_deps:  # (the targets are needed first: a dependency may be in the batch)
            await routing.targets(queue)
            fixed = [routing.publish_target(queue, *r) for r in routes]
            cross = await self._batch_dependencies(queue, ids, fields, fixed, with_deps)
            await self._enqueue_routed(queue, now, ids, fields, routes, fixed)
            if cross:  # link ops of the batch, and outcomes that came before the jobs
                await self._deliver_after_write(sorted(cross), every=True)
            return ids
        try:
            await self._enqueue_routed(queue, now, ids, fields, routes)
        except PartitionError as exc:  # a partitioned queue: every chunk was refused
            if exc.code != "PARTITIONED":
                raise
            await routing.read_layout(queue)
            await self._enqueue_routed(queue, now, ids, fields, routes)
        return ids

    async def _enqueue_routed(
        self, queue: str, now: int, ids: list[str], fields: list[Any],
        routes: list[tuple[str, str | None, str | None]], fixed: list[str] | None = None,
    ) -> None:
        """Send the jobs of ``publish_many`` to their physical queues, one round trip.
        ``ids`` gets the id each job has now (a deduplicated job: its holder's). ``fixed``:
        each job's physical queue, when the caller chose them already."""
        routing = self.routing
        by_target: dict[str, list[int]] = {}
        for k, (gid, explicit, dedup_key) in enumerate(routes):
            target = fixed[k] if fixed else routing.publish_target(queue, gid, explicit,
                                                                   dedup_key)
            by_target.setdefault(target, []).append(k)
        f = ENQUEUE_FIELDS
        calls: list[QueueCall] = []
        call_jobs: list[list[int]] = []  # per call: the jobs' positions in ids
        for target, idx in by_target.items():
            if len(by_target) == 1:
                sel_fields = fields
            else:
                sel_fields = [x for k in idx for x in fields[k * f : (k + 1) * f]]
            for start, args in zip(range(0, len(idx), PUBLISH_CHUNK),
                                   enqueue.chunks(now, sel_fields,
                                                  self.defaults.events_maxlen), strict=True):
                calls.append((enqueue.ENQUEUE, target, args))
                call_jobs.append(idx[start : start + PUBLISH_CHUNK])
        replies = await routing.call_all_results(calls)
        errors: list[OmniqError] = []
        written: list[str] = []
        for reply, positions in zip(replies, call_jobs, strict=True):
            try:
                if isinstance(reply, BaseException):
                    raise reply
                now_ids = enqueue.parse(reply)
                if now_ids is not None:
                    for k, now_id in zip(positions, now_ids, strict=True):
                        ids[k] = now_id
                written += [ids[k] for k in positions]
            except OmniqError as exc:
                errors.append(exc)
        if errors:
            if written:  # partitions cannot be written atomically together
                raise PartialPublishError(written, errors) from errors[0]
            raise errors[0]
        if list(by_target) == [queue]:
            routing.note_unpartitioned(queue)

    # -- dependencies and flows --------------------------------------------------------

    async def _locate_dependencies(
        self, queue: str, job_id: str, refs: Sequence[DependencyRef],
        batch: Mapping[tuple[str, str], str], added: dict[tuple[str, str], int] | None = None,
    ) -> list[tuple[str, str]]:
        """The physical queue and id of each dependency of job ``job_id`` of ``queue``
        (``batch``: jobs of the same call, (logical queue, id) -> physical queue, which
        need not exist yet; ``added``: the dependents earlier jobs of the call give each
        dependency, updated). :raises DependencyNotFound: one does not exist.
        :raises DependencyError: one has ``MAX_DEPENDENTS`` dependents (DEP_LIMIT)."""
        if isinstance(refs, str | bytes):
            raise InvalidArgument(
                "depends_on takes a list of job ids or (queue, job_id) pairs, not a str")
        pairs: list[tuple[str, str]] = []
        for r in refs:
            if isinstance(r, str):
                q, i = queue, validate_job_id(r)
            elif isinstance(r, tuple | list) and len(r) == 2:
                q, i = deps.check_ref_parts(r[0], r[1])
            else:
                raise InvalidArgument(
                    f"a dependency is a job id or a (queue, job_id) pair, not {r!r}")
            if (q, i) == (queue, job_id):
                raise DependencyCycle("publish", "DEP_CYCLE", deps.ref(q, i), job_id)
            pairs.append((q, i))
        if len(set(pairs)) != len(pairs):
            raise InvalidArgument("a dependency is given twice")
        deps.check_dependency_count(len(pairs))
        out: dict[tuple[str, str], str] = {p: batch[p] for p in pairs if p in batch}
        wanted: dict[str, list[str]] = {}
        for q, i in pairs:
            if (q, i) not in out:
                wanted.setdefault(q, []).append(i)
        for q, wanted_ids in wanted.items():
            t = await self.routing.targets(q)
            if t.partitioned:
                by_part, _ = await self.routing.locate(t, wanted_ids, None)
                for part, idx in by_part.items():
                    for k in idx:
                        out[(q, wanted_ids[k])] = part
            else:
                def exists_commands(k: QueueKeys, ids: list[str] = wanted_ids) -> list[Command]:
                    return [("EXISTS", k.job(i)) for i in ids]

                (row,) = await self.routing.read_each([q], exists_commands)
                for i, exists in zip(wanted_ids, row, strict=True):
                    if exists:
                        out[(q, i)] = q
        for q, i in pairs:
            if (q, i) not in out:
                raise DependencyNotFound("publish", "DEP_NOT_FOUND", deps.ref(q, i), job_id)
        found = [(out[p], p[1]) for p in pairs]
        by_queue: dict[str, list[str]] = {}
        for q, i in found:
            by_queue.setdefault(q, []).append(i)
        parts = list(by_queue)
        rows = await self.routing.read_each(
            parts, lambda k: [("HLEN", k.dependents(i)) for i in by_queue[k.name]])
        for q, row in zip(parts, rows, strict=True):
            for i, n in zip(by_queue[q], row, strict=True):
                count = int(n) + 1 + (added or {}).get((q, i), 0)
                if count > MAX_DEPENDENTS:  # (the script checks it again on its queue)
                    raise DependencyError("publish", "DEP_LIMIT", deps.ref(q, i), job_id)
                if added is not None:
                    added[(q, i)] = added.get((q, i), 0) + 1
        return found

    async def _batch_dependencies(
        self, queue: str, ids: list[str], fields: list[Any], targets: list[str],
        with_deps: list[tuple[int, JobSpec]],
    ) -> set[str]:
        """Put the dependencies of the jobs of a ``publish_many`` batch in their extras
        fields, and register the jobs with their dependencies on other queues (those of the
        batch on another partition get a link op instead); returns the physical queues
        whose outboxes to deliver once the batch is written."""
        batch = {(queue, jid): targets[k] for k, jid in enumerate(ids)}
        written = {(targets[k], jid) for k, jid in enumerate(ids)}
        position = {jid: k for k, jid in enumerate(ids)}
        added: dict[tuple[str, str], int] = {}  # dependents the batch gives each dependency
        deliver: set[str] = set()
        links: list[tuple[str, str, str, list[tuple[str, str]]]] = []
        for k, spec in with_deps:
            policy = deps.check_policy(spec.on_dependency_failure or "fail")
            if not spec.depends_on:
                continue
            for r in spec.depends_on:  # a job of the batch must come before its dependents
                dep_id = r if isinstance(r, str) else r[1]
                later = (isinstance(r, str) or r[0] == queue) and position.get(dep_id, -1) > k
                if later:
                    raise DependencyCycle("publish_many", "DEP_CYCLE",
                                          f"{deps.ref(queue, dep_id)} comes later in the batch",
                                          ids[k])
            found = await self._locate_dependencies(queue, ids[k], spec.depends_on, batch,
                                                    added)
            other = [(q, i) for q, i in found if q != targets[k] and (q, i) not in written]
            if other:
                links.append((targets[k], ids[k], policy, other))
                deliver.update(q for q, _ in other)
            if any(q != targets[k] and (q, i) in written for q, i in found):
                deliver.add(targets[k])  # its link ops
            slot = (k + 1) * ENQUEUE_FIELDS - 1
            fields[slot] = deps.with_dependencies(
                fields[slot], [(q, i, q != targets[k] and (q, i) not in written)
                               for q, i in found], policy)
        if links:
            await self._link_dependencies(links)
        return deliver

    async def _link_dependencies(
        self, items: Sequence[tuple[str, str, str, Sequence[tuple[str, str]]]]
    ) -> None:
        """Register jobs not written yet as dependents of existing jobs of other queues:
        items of (the job's physical queue, its id, its policy, its dependencies there).
        :raises DependencyNotFound: a dependency does not exist (any registration made
            for it is harmless: an outcome for a job that never appears is dropped)."""
        per_queue: dict[str, list[tuple[str, str, str, str]]] = {}
        for queue, job_id, policy, pairs in items:
            for q, i in pairs:
                per_queue.setdefault(q, []).append((i, deps.ref(queue, job_id), policy, job_id))
        calls: list[QueueCall] = []
        sent: list[tuple[str, list[tuple[str, str, str, str]]]] = []
        for q, links in per_queue.items():
            for start in range(0, len(links), MAX_DEPS_OPS):
                chunk = links[start : start + MAX_DEPS_OPS]
                calls.append((deps.DEPS_LINK, q, deps.link_args(
                    0, [(i, dependent, policy) for i, dependent, policy, _ in chunk])))
                sent.append((q, chunk))
        for (q, chunk), reply in zip(sent, await self.routing.call_all(calls), strict=True):
            for (i, _, _, job_id), outcome in zip(chunk, deps.parse_link(reply), strict=True):
                if outcome == "gone":
                    raise DependencyNotFound("publish", "DEP_NOT_FOUND", deps.ref(q, i), job_id)

    async def _deliver_after_write(self, parts: Sequence[str], *, every: bool) -> None:
        """Deliver dependency work right after a write that committed: a failure here is
        logged, not raised (the write stands; maintenance delivers it later)."""
        try:
            await self._deliver_dependencies(parts, every=every)
        except OmniqError as exc:
            logger.warning("omniq: delivering dependency work of %s failed (%s); "
                           "maintenance delivers it later", ", ".join(parts), exc)

    async def publish_flow(self, flow: FlowJob) -> FlowNode:
        """Publish a flow: a job that runs once all its ``children`` have completed (each
        of them a flow in turn, on any queues), and reads their results with
        ``ctx.children_results()``. Returns the published tree's ids.

        Children are written before their parents (a child's parent on another queue is
        its dependent from the start), each physical queue's share in one script call per
        round (chunks of 1,000), so a flow on one queue is written at once and a failure
        part-way never leaves a parent waiting for children that do not exist
        (docs/workflows.md "Publishing a flow").

        :raises InvalidArgument: a bad option or payload (nothing is written).
        :raises DuplicateJobError: a job id repeated in the flow or that exists already
            (nothing is written).
        """
        (node,) = await self._publish_forest([flow])
        return node

    async def chain(self, *jobs: FlowJob) -> list[str]:
        """Publish jobs that run one after the other: each waits for the one before it
        (and reads its result with ``ctx.children_results()``); a failure stops the rest
        (``on_dependency_failure`` of the next job). Returns the ids in order."""
        if not jobs:
            raise InvalidArgument("chain() needs at least one job")
        linked: FlowJob | None = None
        copies: list[FlowJob] = []
        for job in jobs:
            if not isinstance(job, FlowJob):
                raise InvalidArgument(f"chain() takes FlowJob values, not {type(job).__name__}")
            copy = msgspec.structs.replace(
                job, children=[*job.children, linked] if linked else list(job.children))
            copies.append(copy)
            linked = copy
        (top,) = await self._publish_forest([copies[-1]])
        out = [top.job_id]
        node = top
        for _ in copies[1:]:  # down the chain: the job before is each one's last child
            node = node.children[-1]
            out.append(node.job_id)
        return out[::-1]

    async def group(self, jobs: Sequence[FlowJob]) -> list[FlowNode]:
        """Publish independent jobs (each may be a flow) in as few calls as possible:
        ``await omniq.wait_all(await omniq.group([...]))`` runs them all and collects their
        results. Returns the published nodes in order."""
        for job in jobs:
            if not isinstance(job, FlowJob):
                raise InvalidArgument(f"group() takes FlowJob values, not {type(job).__name__}")
        return await self._publish_forest(list(jobs)) if jobs else []

    async def wait_all(
        self, jobs: Sequence[FlowNode | tuple[str, str]], *,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> list[Any]:
        """Wait until every job finishes and return their results in order (see
        :meth:`wait`; the first failure raises :class:`~omniq.errors.JobFailed`)."""
        pairs = [(j.queue, j.job_id) if isinstance(j, FlowNode) else (j[0], j[1])
                 for j in jobs]
        tasks = [asyncio.ensure_future(self.wait(q, i, timeout=timeout)) for q, i in pairs]
        try:
            return list(await asyncio.gather(*tasks))
        finally:  # the first failure ends the call: stop the other waits
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _publish_forest(self, roots: list[FlowJob]) -> list[FlowNode]:
        """Publish flows (see :meth:`publish_flow`)."""
        now = 0
        routing = self.routing
        nodes: list[FlowJob] = []
        parent_of: list[int] = []  # per node: its parent's index, -1 for a root
        stack: list[tuple[FlowJob, int]] = [(r, -1) for r in reversed(roots)]
        while stack:
            job, parent = stack.pop()
            if not isinstance(job, FlowJob):
                raise InvalidArgument(f"a flow is made of FlowJob values, not {job!r}")
            nodes.append(job)
            parent_of.append(parent)
            here = len(nodes) - 1
            deps.check_dependency_count(len(job.children))
            stack.extend((c, here) for c in reversed(job.children))
        children: list[list[int]] = [[] for _ in nodes]
        for k, p in enumerate(parent_of):
            if p >= 0:
                children[p].append(k)
        for q in {n.queue for n in nodes}:
            await routing.targets(q)  # validates, and loads the layout
        ids: list[str] = []
        seen: set[tuple[str, str]] = set()
        for n in nodes:
            jid = new_job_id() if n.job_id is None else validate_job_id(n.job_id)
            if (n.queue, jid) in seen:
                raise DuplicateJobError("publish_flow", "DUPLICATE", "repeated in the flow", jid)
            seen.add((n.queue, jid))
            ids.append(jid)
        targets = [routing.publish_target(n.queue, n.gid or "", n.job_id) for n in nodes]
        explicit: dict[str, list[int]] = {}
        for k, n in enumerate(nodes):
            if n.job_id is not None:
                explicit.setdefault(targets[k], []).append(k)
        if explicit:  # refused before anything is written (the enqueue would refuse later)
            parts = list(explicit)
            rows = await routing.read_each(
                parts, lambda k: [("EXISTS", k.job(ids[i])) for i in explicit[k.name]])
            for part, row in zip(parts, rows, strict=True):
                for i, exists in zip(explicit[part], row, strict=True):
                    if exists:
                        raise DuplicateJobError("publish_flow", "DUPLICATE", None, ids[i])
        limit = self.max_payload_bytes
        fields: list[list[Any]] = []
        for k, n in enumerate(nodes):
            policy = deps.check_policy(n.on_dependency_failure)
            given = {name: getattr(n, name) for name in _FLOW_OPTIONS
                     if getattr(n, name) is not None}
            opts = enqueue.JobOptions(**{
                "max_attempts": DEFAULT_MAX_ATTEMPTS, "timeout_ms": DEFAULT_TIMEOUT_MS,
                "backoff_ms": DEFAULT_BACKOFF_MS,
                **self.defaults.ages(given.pop("keep_completed_ms", None),
                                     given.pop("keep_failed_ms", None)),
                **given})
            payload = n.payload if isinstance(n.payload, dict | list) else to_json_value(n.payload)
            on = [(targets[c], ids[c], targets[c] != targets[k]) for c in children[k]]
            p = parent_of[k]
            up = ([(targets[p], ids[p], nodes[p].on_dependency_failure)]
                  if p >= 0 and targets[p] != targets[k] else [])
            opts.extras = deps.with_dependencies(opts.extras, on, policy, up)
            fields.append(enqueue.job_fields(ids[k], encode_payload(payload, limit), opts))
        # rounds of units: a unit is a job with its descendants on the same physical queue
        # reached without leaving it; it is written in one call (children before parents),
        # once every child of its jobs on another queue (another unit) is written
        depth = [0] * len(nodes)
        unit = list(range(len(nodes)))
        for k, p in enumerate(parent_of):  # (a parent comes before its children)
            depth[k] = depth[p] + 1 if p >= 0 else 0
            if p >= 0 and targets[p] == targets[k]:
                unit[k] = unit[p]
        # deeper first (children before their parents), else in the order given
        order = sorted(range(len(nodes)), key=lambda k: (-depth[k], k))
        members: dict[int, list[int]] = {}
        for k in order:
            members.setdefault(unit[k], []).append(k)
        written = [False] * len(nodes)
        cross: set[str] = set()
        pending = set(members)
        while pending:
            ready = [u for u in pending if all(
                written[c] for k in members[u] for c in children[k] if unit[c] != u)]
            if not ready:  # (a tree always has a unit ready)
                raise DependencyCycle("publish_flow", "DEP_CYCLE", None, None)
            by_target: dict[str, list[int]] = {}  # the ready units of a queue: one call
            for u in sorted(ready):
                by_target.setdefault(targets[u], []).extend(members[u])
            calls: list[QueueCall] = []
            for target, ks in by_target.items():
                flat = [x for k in ks for x in fields[k]]
                calls += [(enqueue.ENQUEUE, target, a)
                          for a in enqueue.chunks(now, flat, self.defaults.events_maxlen)]
            for reply in await routing.call_all(calls):
                enqueue.parse(reply)
            for u in ready:
                pending.discard(u)
                for k in members[u]:
                    written[k] = True
                if parent_of[u] >= 0:  # (a unit's top has its parent on another queue)
                    cross.add(targets[u])
        if cross:  # children that finished before their parent existed (their acks'
            # delivery found no parent and put the op off: take it now)
            await self._deliver_after_write(sorted(cross), every=True)

        # the FlowNode tree, built bottom up (no recursion: a chain may be long)
        built: list[FlowNode | None] = [None] * len(nodes)
        for k in order:  # (deeper first)
            built[k] = FlowNode(queue=targets[k], job_id=ids[k],
                                children=[b for c in children[k] if (b := built[c])])
        return [b for k, p in enumerate(parent_of) if p < 0 and (b := built[k])]

    async def dependency_results(self, queue: str, job_id: str) -> dict[str, Any]:
        """The results of a job's completed dependencies (a flow's children), by their job
        ids, decoded (None for a handler that returned nothing). They are copied into the
        job when each completes, so they outlive the dependencies' own records. Handlers
        call ``ctx.children_results()``. Empty for a job without dependencies or that does
        not exist."""
        t = await self.routing.targets(queue)
        jid = validate_job_id(job_id)
        rows = await self.routing.read_each(t.parts, lambda k: [("HGETALL", k.job(jid))])
        for row in rows:
            if row[0]:
                return deps.dependency_results(row[0])
        return {}

    async def resolve_dependencies(
        self, queue: str, *, repair: bool = True, now_ms: int = 0
    ) -> int:
        """Deliver the dependency work ``queue`` owes other queues (its outbox,
        docs/workflows.md): outcomes of its jobs to their dependents elsewhere, and links of
        its jobs to dependencies elsewhere. With ``repair``, jobs with dependents that
        another client ended (an official worker's ack) are settled first. Workers call it
        after an ack that leaves such work and in their maintenance; call it yourself only
        for queues no omniq worker consumes. Returns how many ops were delivered."""
        t = await self.routing.targets(queue)
        return await self._deliver_dependencies(t.parts, repair=repair, now=check_now(now_ms))

    async def _deliver_dependencies(
        self, parts: Sequence[str], *, repair: bool = False, now: int = 0, every: bool = False
    ) -> int:
        """Deliver the outboxes of ``parts`` (``every``: a first batch of their ops due or
        not), then those of the queues where the delivery left work (a failure cascade, or
        the outcome of a dependency that had ended when it was linked)."""
        done = 0
        todo = list(dict.fromkeys(parts))
        seen = set(todo)
        first = set(todo) if every else set()
        while todo:
            part = todo.pop(0)
            while True:
                n, more, follow = await self._deliver_once(part, repair, now, part in first)
                first.discard(part)  # (then only the due ops: a full batch of ops that
                done += n            # cannot be delivered yet must not loop)
                for q in follow:
                    if q not in seen and len(seen) < _CASCADE_QUEUES:
                        seen.add(q)
                        todo.append(q)
                if not more:
                    break
        return done

    async def _deliver_once(
        self, part: str, repair: bool, now: int, every: bool
    ) -> tuple[int, bool, list[str]]:
        """One batch of ``part``'s outbox: (ops delivered, whether it was a full batch, the
        queues whose own outbox got work from it)."""
        routing = self.routing
        maxlen = self.defaults.events_maxlen
        ops = deps.parse_pending(await routing.call(
            deps.DEPS_PENDING, part,
            deps.pending_args(now, MAX_DEPS_OPS, repair, maxlen, every=every)))
        follow: list[str] = []
        if not ops:
            return 0, False, follow
        links: dict[str, list[deps.Op]] = {}
        outcomes: dict[str, list[tuple[deps.Op, tuple[str, str, str, str]]]] = {}
        acks: list[tuple[str, str]] = []
        for op in ops:
            if op.kind == "R":  # tell the dependent on its queue
                outcomes.setdefault(op.other_queue, []).append(
                    (op, (op.other_id, deps.ref(part, op.job_id), op.word, op.result)))
            elif op.kind == "L":
                links.setdefault(op.other_queue, []).append(op)
            else:
                logger.warning("omniq: unknown dependency op %r on %s", op.raw, part)
        if links:
            queues = list(links)
            replies = await routing.call_all_results([
                (deps.DEPS_LINK, q, deps.link_args(
                    now, [(op.other_id, deps.ref(part, op.job_id), op.word) for op in links[q]]))
                for q in queues])
            for q, reply in zip(queues, replies, strict=True):
                if isinstance(reply, BaseException):  # (the op is due again later)
                    logger.warning("omniq: linking dependencies on %s failed (%s)", q, reply)
                    continue
                for op, outcome in zip(links[q], deps.parse_link(reply), strict=True):
                    if outcome == "gone":  # the dependency no longer exists
                        outcomes.setdefault(part, []).append(
                            (op, (op.job_id, deps.ref(q, op.other_id), "gone", "")))
                        continue
                    if outcome == "queued" and q not in follow:  # its outcome is an op there
                        follow.append(q)
                    acks.append((op.raw, "done"))
        calls: list[QueueCall] = []
        batches: list[tuple[str, list[deps.Op]]] = []
        for q, items in outcomes.items():
            for chunk in deps.outcome_chunks(items):
                calls.append((deps.DEPS_RESOLVE, q, deps.resolve_args(
                    now, [o for _, o in chunk], maxlen)))
                batches.append((q, [op for op, _ in chunk]))
        if calls:
            replies = await routing.call_all_results(calls)
            for (q, chunk_ops), reply in zip(batches, replies, strict=True):
                if isinstance(reply, BaseException):  # (the ops are due again later)
                    logger.warning("omniq: settling dependents on %s failed (%s)", q, reply)
                    continue
                statuses, more_work = deps.parse_resolve(reply)
                if more_work and q not in follow:
                    follow.append(q)
                for op, status in zip(chunk_ops, statuses, strict=True):
                    # NO_JOB: the dependent does not exist (yet: a flow's parent is written
                    # after its children); the op is tried again until it is too old
                    acks.append((op.raw, "done" if status == "OK" else "retry"))
        if acks:
            dropped = deps.parse_ack(await routing.call(
                deps.DEPS_ACK, part, deps.ack_args(now, acks)))
            if dropped:
                logger.warning("omniq: %s: dropped %d dependency ops whose job never "
                               "appeared", part, dropped)
        return sum(1 for _, a in acks if a == "done"), len(ops) == MAX_DEPS_OPS, follow

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
        logger: Callable[[str], None] | None = None,
        poll_interval_s: float | None = None,
        promote_interval_s: float | None = None,
        promote_batch: int | None = None,
        reap_interval_s: float | None = None,
        reap_batch: int | None = None,
        heartbeat_interval_s: float | None = None,
        **worker_options: Any,
    ) -> Worker:
        """Run a :class:`~omniq.aio.worker.Worker` on ``queue`` (or several queues, in
        priority order) until it is stopped or, with ``drain=True``, until nothing is ready
        and nothing is in flight. Returns the finished worker (see ``worker.stats``).

        SIGINT/SIGTERM stop it gracefully when called from the main thread (a second
        signal stops at once); pass ``handle_signals=False`` to leave signals alone.
        ``logger`` (a callable taking one line) receives the worker's log lines for this
        run. The other keywords are the official SDK's; docs/sync.md says what each does.
        """
        from omniq.aio.worker import Worker

        worker_options.update(official_consume_options(
            logger=logger, poll_interval_s=poll_interval_s,
            promote_interval_s=promote_interval_s, promote_batch=promote_batch,
            reap_interval_s=reap_interval_s, reap_batch=reap_batch,
            heartbeat_interval_s=heartbeat_interval_s, given=worker_options,
        ))
        worker = Worker(
            self, queue, handler, concurrency=concurrency, drain=drain, verbose=verbose,
            handle_signals=True if handle_signals is None else handle_signals,
            **worker_options,
        )
        await worker.run()
        return worker

    # -- leasing -----------------------------------------------------------------------

    async def reserve(self, queue: str, *, now_ms: int = 0,
                      now_ms_override: int = 0) -> ReservedJob | None:
        """Lease the next job of the queue, or return None (empty, paused or held by a
        rate limit)."""
        res = await self.reserve_many(queue, 1, now_ms=pick_now(now_ms, now_ms_override))
        return res.jobs[0] if res.jobs else None

    async def reserve_many(self, queue: str, count: int, *, now_ms: int = 0) -> ReserveResult:
        """Lease up to ``count`` (1-1000) jobs in one round trip.

        Groups are served round-robin, FIFO within a group, alternating with ungrouped jobs.
        On a partitioned queue the batch is filled from several partitions, starting at a
        partition that rotates on every call; each job's ``queue`` is its partition.
        ``"LIMITED"`` (nothing leased because of rate limits) says when to ask again
        (``retry_after_ms``, ``limited_by``).
        """
        t = await self.routing.targets(queue)
        _, res = await self.routing.reserve(
            t, leasing.check_reserve_count(count), {}, check_now(now_ms))
        assert res is not None  # a count >= 1 always gives a reservation
        return res

    async def heartbeat(
        self, queue: str, job_id: str, lease_token: str, *, now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> int:
        """Extend a lease to now + the job's timeout; returns the new ``lock_until_ms``.

        :raises LeaseLost: the lease is no longer held by this token.
        """
        self.routing.check_lease_queue(queue)
        lease_id(job_id)
        now = pick_now(now_ms, now_ms_override)
        args = leasing.heartbeat_args(now, [(job_id, lease_token)])
        reply = await self.routing.call(leasing.HEARTBEAT, queue, args)
        result = leasing.parse_heartbeats(reply, (job_id,))[0]
        if isinstance(result, ScriptError):
            raise result
        return result

    async def heartbeat_many(
        self, leases: Sequence[Lease | tuple[str, str, str]], *, now_ms: int = 0
    ) -> list[int | ScriptError]:
        """Extend many leases, over any number of queues, in one round trip.

        Returns, in order, the new ``lock_until_ms`` or the error (``LeaseLost``) of each.
        """
        now = check_now(now_ms)
        by_queue: dict[str, list[int]] = {}
        for i, (queue, _job_id, _token) in enumerate(leases):
            by_queue.setdefault(queue, []).append(i)
        calls: list[QueueCall] = []
        for queue, idx in by_queue.items():
            self.routing.check_lease_queue(queue)
            pairs = [(leases[i][1], leases[i][2]) for i in idx]
            calls.append((leasing.HEARTBEAT, queue, leasing.heartbeat_args(now, pairs)))
        replies = await self.routing.call_all(calls) if calls else []
        out: list[int | ScriptError] = [0] * len(leases)
        for idx, reply in zip(by_queue.values(), replies, strict=True):
            parsed = leasing.parse_heartbeats(reply, [leases[i][1] for i in idx])
            for i, r in zip(idx, parsed, strict=True):
                out[i] = r
        return out

    async def ack_success(
        self,
        queue: str,
        job_id: str,
        lease_token: str,
        *,
        result: Any = None,
        now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> None:
        """Complete a leased job; ``result`` (any JSON value) is stored with it.

        :raises LeaseLost: the lease was lost (the job will run again elsewhere).
        """
        self.routing.check_lease_queue(queue)
        lease_id(job_id)
        data = b"" if result is None else encode_result(result, self.max_payload_bytes)
        now = pick_now(now_ms, now_ms_override)
        d = self.defaults
        args = leasing.ack_success_args(job_id, now, lease_token, data, d.keep_completed,
                                       d.events_maxlen)
        reply = await self.routing.call(leasing.ACK_SUCCESS, queue, args)
        if leasing.parse_ack_success(reply, job_id):  # dependents on other queues
            await self._deliver_after_write([queue], every=False)

    async def ack_fail(
        self,
        queue: str,
        job_id: str,
        lease_token: str,
        error: str | None = None,
        *,
        final: bool = False,
        now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> FailOutcome:
        """Fail a leased job: it retries after its backoff or, out of attempts (or with
        ``final=True``), ends failed.

        ``error`` is stored as ``last_error`` (cut to 4096 bytes on a character boundary).
        :raises LeaseLost: the lease was lost.
        """
        self.routing.check_lease_queue(queue)
        lease_id(job_id)
        text = "" if error is None else truncate_error(str(error))
        now = pick_now(now_ms, now_ms_override)
        d = self.defaults
        args = leasing.ack_fail_args(job_id, now, lease_token, text, final, d.keep_failed_arg,
                                    d.events_maxlen)
        reply = await self.routing.call(leasing.ACK_FAIL, queue, args)
        outcome = leasing.parse_fail(reply, job_id)
        if leasing.fail_left_dependency_work(reply):  # dependents on other queues
            await self._deliver_after_write([queue], every=False)
        return outcome

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
        self.routing.check_lease_queue(queue)
        count = check_non_negative(reserve_count, "reserve_count")
        if count:
            leasing.check_reserve_count(count)
        outcomes, res = await self.routing.reserve(
            Targets(queue, [queue]), count, {queue: acks} if acks else {}, check_now(now_ms))
        return outcomes.get(queue, []), res

    # -- maintenance -------------------------------------------------------------------

    async def promote_delayed(
        self, queue: str, *, max_promote: int = DEFAULT_MAINTENANCE_BATCH, now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> int:
        """Move delayed jobs that are due to their lane; returns how many moved
        (on a partitioned queue: at most ``max_promote`` per partition, summed)."""
        t = await self.routing.targets(queue)
        args = admin.promote_args(pick_now(now_ms, now_ms_override), max_promote,
                                  self.defaults.events_maxlen)
        replies = await self.routing.call_each(t, admin.PROMOTE_DELAYED, args)
        return sum(admin.parse_count("promote_delayed", r) for r in replies)

    async def reap_expired(
        self, queue: str, *, max_reap: int = DEFAULT_MAINTENANCE_BATCH, now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> int:
        """Retry or fail jobs whose lease expired; returns how many were reaped
        (on a partitioned queue: at most ``max_reap`` per partition, summed)."""
        t = await self.routing.targets(queue)
        now = pick_now(now_ms, now_ms_override)
        d = self.defaults
        args = admin.reap_args(now, max_reap, d.keep_failed_arg, d.events_maxlen)
        replies = await self.routing.call_each(t, admin.REAP_EXPIRED, args)
        return sum(admin.parse_count("reap_expired", r) for r in replies)

    # -- pause -------------------------------------------------------------------------

    async def pause(self, queue: str) -> None:
        """Stop new reservations on the queue (running and delayed jobs are untouched).

        A partitioned queue is paused partition by partition (one round trip)."""
        t = await self.routing.targets(queue)
        args = admin.pause_args(self.defaults.events_maxlen)
        for r in await self.routing.call_each(t, admin.PAUSE, args):
            admin.parse_pause(r)

    async def resume(self, queue: str) -> bool:
        """Allow reservations again; returns whether the queue (any partition) was paused."""
        t = await self.routing.targets(queue)
        replies = await self.routing.call_each(
            t, admin.RESUME, admin.pause_args(self.defaults.events_maxlen))
        return any([admin.parse_resume(r) for r in replies])

    async def is_paused(self, queue: str) -> bool:
        """Whether the queue (on a partitioned queue: any partition) is paused."""
        t = await self.routing.targets(queue)
        rows = await self.routing.read_each(t.parts, lambda k: [("EXISTS", k.paused)])
        return any(bool(row[0]) for row in rows)

    # -- admin -------------------------------------------------------------------------

    async def retry_failed(self, queue: str, job_id: str, *, now_ms: int = 0,
                           now_ms_override: int = 0) -> None:
        """Move a failed job back to its lane with its attempt count reset.

        :raises JobNotFound: no such job. :raises LaneMismatch: it is not failed.
        """
        t = await self.routing.targets(queue)
        validate_job_id(job_id)
        now = pick_now(now_ms, now_ms_override)
        part = await self.routing.job_partition(t, job_id, "failed")
        reply = await self.routing.call(admin.RETRY_FAILED, part,
                                        admin.retry_failed_args(job_id, now,
                                                                self.defaults.events_maxlen))
        admin.parse_retry_failed(reply, job_id)

    async def retry_failed_batch(
        self, queue: str, job_ids: Sequence[str], *, now_ms: int = 0, now_ms_override: int = 0
    ) -> list[BatchResult]:
        """retry_failed for up to 100 jobs atomically (on a partitioned queue: atomically per
        partition); one ``(job_id, status, reason)`` each."""
        t = await self.routing.targets(queue)
        ids = check_batch(job_ids)
        now = pick_now(now_ms, now_ms_override)
        return await self._batch(t, admin.RETRY_FAILED_BATCH, ids, "failed",
                                 lambda sel: admin.retry_batch_args(
                                     now, sel, self.defaults.events_maxlen))

    async def remove_job(self, queue: str, job_id: str, lane: str, *, now_ms: int = 0) -> None:
        """Delete a job that is in ``lane`` (wait, delayed, failed, completed or gwait).

        Active jobs are never removed. A refusal changes nothing.
        :raises JobNotFound: no such job. :raises LaneMismatch: not in that lane, or active.
        """
        t = await self.routing.targets(queue)
        validate_job_id(job_id)
        lane = check_lane(lane)
        now = check_now(now_ms)
        part = await self.routing.job_partition(t, job_id, admin.lane_state(lane))
        reply = await self.routing.call(admin.REMOVE_JOB, part,
                                        admin.remove_job_args(job_id, lane, now,
                                                              self.defaults.events_maxlen))
        admin.parse_remove_job(reply, job_id)

    async def remove_jobs_batch(
        self, queue: str, lane: str, job_ids: Sequence[str], *, now_ms: int = 0
    ) -> list[BatchResult]:
        """remove_job for up to 100 jobs of one lane; one ``(job_id, status, reason)`` each."""
        t = await self.routing.targets(queue)
        lane = check_lane(lane)
        ids = check_batch(job_ids)
        now = check_now(now_ms)
        return await self._batch(t, admin.REMOVE_JOBS_BATCH, ids, admin.lane_state(lane),
                                 lambda sel: admin.remove_batch_args(
                                     lane, sel, now, self.defaults.events_maxlen))

    async def cancel(self, queue: str, job_id: str, *, now_ms: int = 0) -> CancelResult:
        """Cancel a job. A waiting, delayed or group-waiting job leaves its lane at once
        and never runs (``"cancelled"``); a running job is flagged and its worker told
        (``"cancelling"``): the worker stops the handler and the job ends failed with error
        ``cancelled``, without retry. ``"finished"``: it had completed or failed already;
        ``"not_found"``: no such job. Emits a ``cancelled`` event (docs/control.md).

        :raises InvalidArgument: a malformed queue name or job id.
        """
        t = await self.routing.targets(queue)
        validate_job_id(job_id)
        now = check_now(now_ms)
        by_part, _ = await self.routing.locate(t, [job_id], None)
        if not by_part:
            return "not_found"
        d = self.defaults
        reply = await self.routing.call(admin.CANCEL, next(iter(by_part)),
                                        admin.cancel_args(job_id, now, d.keep_failed_arg,
                                                          d.events_maxlen))
        return admin.parse_cancel(reply, job_id)

    async def _batch(
        self, t: Targets, script: Any, ids: list[str], want_state: str,
        build: Callable[[list[str]], Sequence[Any]],
    ) -> list[BatchResult]:
        """A batch admin script, each id sent to the physical queue holding it."""
        if not ids:
            return []
        by_part, missing = await self.routing.locate(t, ids, want_state)
        out: list[BatchResult | None] = [None] * len(ids)
        for i in missing:
            out[i] = BatchResult(ids[i], "ERR", "NO_JOB")
        calls: list[QueueCall] = [(script, part, build([ids[i] for i in idx]))
                                  for part, idx in by_part.items()]
        replies = await self.routing.call_all(calls) if calls else []
        for idx, reply in zip(by_part.values(), replies, strict=True):
            for i, r in zip(idx, admin.parse_batch(script.name, reply), strict=True):
                out[i] = r
        return [r for r in out if r is not None]

    # -- parent / child ----------------------------------------------------------------

    async def childs_init(self, key: str, expected: int, *, ttl_ms: int = 0) -> None:
        """Start a completion counter expecting ``expected`` children.

        An unfinished counter (and its set of counted children) expires after ``ttl_ms``;
        0 (the default) uses the client's ``child_ttl_ms`` (7 days unless configured; a
        client built with ``child_ttl_ms=0`` creates counters that never expire).
        :raises CounterError: ALREADY_INIT.
        """
        anchor = child_anchor(key)
        ttl = check_non_negative(ttl_ms, "ttl_ms") or self.child_ttl_ms
        args = children.childs_init_args(expected, ttl)
        children.parse_childs_init(await self._runner.call(children.CHILDS_INIT, anchor, args))

    async def child_ack(self, key: str, child_id: str) -> int:
        """Count ``child_id`` as done (idempotent); returns how many children remain.

        0 means every child is done, also for a late repeat after completion; -1 means the
        counter does not exist (never initialised, or expired), as in OmniQ v1.
        """
        anchor = child_anchor(key)
        lease_id(child_id)
        return children.parse_child_ack(
            await self._runner.call(children.CHILD_ACK, anchor, (child_id,)))

    # -- inspection --------------------------------------------------------------------

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The full stored record of a job, or None when it does not exist.

        On a partitioned queue every partition is looked at (one round trip) and
        ``JobInfo.queue`` is the partition that holds the job. The jobs waiting on it
        (``JobInfo.dependents``) are read in the same round trip."""
        t = await self.routing.targets(queue)
        jid = validate_job_id(job_id)
        rows = await self.routing.read_each(t.parts, lambda k: reads.job_commands(k, jid))
        for part, row in zip(t.parts, rows, strict=True):
            if row[0]:
                return reads.job_info(part, job_id, row[0], row[1])
        return None

    async def get_flow(
        self, queue: str, job_id: str, *, max_nodes: int = 10_000
    ) -> FlowInfo | None:
        """The job and, recursively, the jobs it depends on, as a tree (a flow read from
        its parent down), or None when the job does not exist.

        One round trip per level of the tree (every physical queue of the level read in
        one pipeline). A job reached twice (a shared dependency, or a cycle) has its
        dependencies listed once; at most ``max_nodes`` nodes are returned (see
        :class:`~omniq.types.FlowInfo`, ``truncated``). A dependency whose record is gone
        has the state ``"missing"``.
        """
        t = await self.routing.targets(queue)
        jid = validate_job_id(job_id)
        max_nodes = check_positive(max_nodes, "max_nodes")
        rows = await self.routing.read_each(t.parts, lambda k: reads.flow_node_commands(k, jid))
        for part, row in zip(t.parts, rows, strict=True):
            state, deps = reads.parse_flow_node(row[0])
            if state is not None:
                walk = reads.FlowWalk((part, jid), state, deps, max_nodes)
                while names := walk.next_level():
                    walk.take(names, await self.routing.read_each(names, walk.commands))
                return walk.tree()
        return None

    async def jobs(
        self, queue: str, lane: str, *, limit: int = 25, cursor: str | None = None,
        reverse: bool = False,
    ) -> JobPage:
        """One page of a lane (``wait``, ``active``, ``delayed``, ``failed``,
        ``completed``, ``waiting_deps``) in the order of its index (oldest first;
        ``reverse``: newest first).

        Pass the returned ``cursor`` to get the next page (None after the last). On a
        partitioned queue the partitions' indexes are merged by (time, id) and the cursor
        holds the position in each. Jobs removed between the two reads are left out.
        """
        t = await self.routing.targets(queue)
        lane = reads.check_index_lane(lane)
        limit = reads.check_page_limit(limit)
        offsets = reads.decode_cursor(cursor, len(t.parts))
        at = dict(zip(t.parts, offsets, strict=True))
        rows = await self.routing.read_each(t.parts, lambda k: reads.index_page_commands(
            k, lane, at[k.name], limit, reverse))
        picked, nxt = reads.merge_index_pages(
            [reads.parse_scored(r[0]) for r in rows], offsets, limit, reverse)
        wanted: dict[str, list[str]] = {}
        for i, jid, _ in picked:
            wanted.setdefault(t.parts[i], []).append(jid)
        parts = list(wanted)
        hashes = await self.routing.read_each(
            parts, lambda k: [("HGETALL", k.job(j)) for j in wanted[k.name]]) if parts else []
        found = {(part, jid): h for part, got in zip(parts, hashes, strict=True)
                 for jid, h in zip(wanted[part], got, strict=True)}
        infos: list[JobInfo] = []
        scores: list[int] = []
        for i, jid, score in picked:
            h = found.get((t.parts[i], jid))
            if h:
                infos.append(reads.job_info(t.parts[i], jid, h))
                scores.append(score)
        return JobPage(jobs=infos, index_ms=scores, cursor=nxt)

    async def index_times(
        self, queue: str, lane: str, job_ids: Sequence[str]
    ) -> list[int | None]:
        """The score of each job in the lane's index (the time it entered the lane), None
        for a job that is not in that lane (one round trip)."""
        t = await self.routing.targets(queue)
        lane = reads.check_index_lane(lane)
        ids = list(job_ids)
        if not all(isinstance(j, str) and j for j in ids):
            raise InvalidArgument("job_ids must be non-empty strings")
        if not ids:
            return []
        rows = await self.routing.read_each(
            t.parts, lambda k: reads.index_score_commands(k, lane, ids))
        out: list[int | None] = []
        for j in range(len(ids)):
            found = [reads.parse_score(r[j]) for r in rows if r[j] is not None]
            out.append(found[0] if found else None)
        return out

    async def ready_groups(
        self, queue: str, *, offset: int = 0, limit: int = 200
    ) -> list[tuple[str, int]]:
        """Groups offered to reserve (``groups:ready``) as ``(gid, score_ms)``, oldest
        first, from ``offset`` (partitions merged by score)."""
        t = await self.routing.targets(queue)
        offset = check_non_negative(offset, "offset")
        limit = reads.check_page_limit(limit)
        rows = await self.routing.read_each(
            t.parts, lambda k: reads.ready_groups_commands(k, 0 if t.partitioned else offset,
                                                           offset + limit if t.partitioned
                                                           else limit))
        merged = sorted((pair for r in rows for pair in reads.parse_scored(r[0])),
                        key=lambda p: (p[1], p[0]))
        return merged[offset:offset + limit] if t.partitioned else merged

    async def group_states(self, queue: str, gids: Sequence[str]) -> list[GroupState]:
        """The :class:`GroupState` of each gid, in order (one round trip)."""
        t = await self.routing.targets(queue)
        names = list(gids)
        if not all(isinstance(g, str) and g for g in names):
            raise InvalidArgument("gids must be non-empty strings")
        if not names:
            return []
        rows = await self.routing.read_each(
            t.parts, lambda k: [c for g in names for c in reads.group_state_commands(k, g)])
        n = reads.GROUP_READS
        return [reads.combine_group_states(g, [
            reads.parse_group_state(g, r[j * n:(j + 1) * n]) for r in rows])
            for j, g in enumerate(names)]

    # -- events, results, progress ----------------------------------------------------

    def events(
        self,
        queue: str | Sequence[str],
        *,
        since: Since = "$",
        types: Iterable[str] | None = None,
    ) -> EventStream:
        """The lifecycle events of one or more queues, as they happen::

            async for event in omniq.events("emails", types=["completed", "failed"]):
                print(event.type, event.job_id)

        ``since``: ``"$"`` (default: events from now on), ``"0"`` (every event the stream
        still keeps), a stream id (the events after it: ``event.id`` resumes right after
        that event), epoch milliseconds (events at or after that time), or the ``cursor``
        of an earlier reader (``{physical queue: id}``, for several queues or partitions).
        ``types`` keeps only those event types (see ``omniq._protocol.events.EVENT_TYPES``).
        A partitioned queue is read in all its partitions; events of different physical
        queues are not ordered among each other. A broken connection is retried from the
        last event read, without gaps or repeats.

        :raises InvalidArgument: a bad queue name, ``since`` or event type (at once).
        """
        names = [queue] if isinstance(queue, str) else list(queue)
        if not names:
            raise InvalidArgument("events() needs at least one queue")
        for name in names:
            validate_queue_name(name)
        return EventStream(self, names, check_since(since), check_types(types))

    # timeout= is the API of the peers' waits (arq, Celery); ruff prefers asyncio.timeout
    async def wait(
        self, queue: str, job_id: str, *, timeout: float | None = None  # noqa: ASYNC109
    ) -> Any:
        """Wait until the job finishes and return its handler's result (None when the
        handler returned nothing): ``await omniq.wait(q, await omniq.publish(q, payload))``.

        Works whether the job finished before or after the call: the job is read once the
        event reader is in place, then again each time its queue reports that job
        completed, failed or was removed (and every 2 s, in case the client that finished
        it writes no events).

        :raises JobFailed: the job ended failed (its ``error`` and ``attempts``).
        :raises JobNotFound: no such job (never published, removed, or its record already
            deleted by ``keep_completed`` / ``keep_completed_ms``).
        :raises TimeoutError: ``timeout`` seconds passed first (the job is left alone).
        """
        t = await self.routing.targets(queue)
        jid = validate_job_id(job_id)
        if timeout is not None and (isinstance(timeout, bool)
                                    or not isinstance(timeout, int | float) or timeout < 0):
            raise InvalidArgument("timeout must be a number of seconds >= 0, or None")
        part = await self.routing.job_partition(t, jid, None)  # no lookup for a plain queue
        if self._waiters is None:
            self._waiters = Waiters(self)
        return await self._waiters.wait(part, jid, timeout)

    async def progress(
        self, queue: str, job_id: str, lease_token: str, value: Any, *, now_ms: int = 0
    ) -> None:
        """Store ``value`` (any JSON value, at most 64 KiB encoded) as the job's latest
        progress and emit a ``progress`` event. Handlers call ``ctx.progress(value)``.

        :raises InvalidArgument: not JSON, or too large (nothing is written).
        :raises LeaseLost: the lease is no longer held.
        """
        self.routing.check_lease_queue(queue)
        lease_id(job_id)
        data = events_proto.encode_progress(value)
        args = events_proto.progress_args(job_id, lease_token, data, check_now(now_ms),
                                          self.defaults.events_maxlen)
        events_proto.parse_progress(
            await self.routing.call(events_proto.PROGRESS, queue, args), job_id)

    async def result(self, queue: str, job_id: str) -> Any:
        """The decoded result a handler returned for a completed job, or None."""
        info = await self.get_job(queue, job_id)
        return None if info is None else info.result

    async def stats(self, queue: str) -> QueueStats:
        """Exact counts of every lane, read from the real containers in one round trip.

        A partitioned queue sums its partitions (``last_*`` times: the latest; ``paused``:
        any partition); a partition name ``queue.pI`` gives that partition alone."""
        t = await self.routing.targets(queue)
        return reads.combine_stats(queue, await self.routing.stats_each(t.parts))

    async def queues(self) -> list[str]:
        """Names of the queues on the server (found by their ``{name}:stats`` hashes).

        A partitioned queue is listed once, by its logical name (found by its
        ``{name}:partitions`` layout key)."""
        names: set[str] = set()
        layouts: dict[str, int] = {}
        with map_errors():
            async for key in self.redis.scan_iter(match="*:stats", count=1000, _type="hash"):
                with contextlib.suppress(InvalidArgument):
                    names.add(_base_name(key, ":stats"))
            async for key in self.redis.scan_iter(match="*:partitions", count=1000,
                                                  _type="string"):
                with contextlib.suppress(InvalidArgument):
                    name = _base_name(key, ":partitions")
                    layouts[name] = len((await self.routing.targets(name)).parts)
        out: set[str] = set(layouts)
        for name in names:
            base, index = split_partition(name)
            if index is None or index >= layouts.get(base, 0):
                out.add(name)
        return sorted(out)

    # -- partitions --------------------------------------------------------------------

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
        queue_base(queue)  # validates the name
        return await self.routing.declare(queue, admin.check_partitions(partitions))

    async def queue_partitions(self, queue: str) -> list[str]:
        """The physical queues of ``queue``: ``[queue]`` when it is not partitioned, else
        ``[queue.p0, ..., queue.p<N-1>]`` (the layout is read once and cached)."""
        return list((await self.routing.targets(queue)).parts)

    # -- rate limits -------------------------------------------------------------------

    async def set_rate_limit(
        self, queue: str, max_jobs: int, per_ms: int, *, gid: str | None = None,
        now_ms: int = 0,
    ) -> None:
        """Let at most ``max_jobs`` (1-100000) jobs of the queue, or of group ``gid``, be
        reserved in any ``per_ms`` window (sliding), across every worker; replaces the
        limit there was. Group limits hold beside ``group_limit`` (concurrency); a limited
        group waits parked and never blocks the others (docs/control.md, "Rate limits").

        On a partitioned queue a group's limit lives on the group's partition, and a
        queue-wide limit is shared among the partitions (``max_jobs`` split as evenly as
        possible, so they never lease more than ``max_jobs`` together per window).

        :raises InvalidArgument: a bad value, or (partitioned queue, queue-wide limit)
            ``max_jobs`` below the partition count.
        """
        g = rate_limits.check_gid(gid)
        now = check_now(now_ms)
        args = rate_limits.set_args(now, g, max_jobs, per_ms)  # validated before any I/O
        t = await self.routing.targets(queue)
        if g or not t.partitioned:
            part = self.routing.publish_target(queue, g, None) if g else t.parts[0]
            rate_limits.parse_set(
                await self.routing.call(rate_limits.SET_RATE_LIMIT, part, args))
            return
        shares = rate_limits.split_max_jobs(max_jobs, len(t.parts))
        calls: list[QueueCall] = [
            (rate_limits.SET_RATE_LIMIT, part, rate_limits.set_args(now, "", n, per_ms))
            for part, n in zip(t.parts, shares, strict=True)]
        for r in await self.routing.call_all(calls):
            rate_limits.parse_set(r)

    async def clear_rate_limit(
        self, queue: str, *, gid: str | None = None, now_ms: int = 0
    ) -> bool:
        """Remove the queue-wide rate limit (or group ``gid``'s); returns whether there
        was one. A group parked by its limit is back in line at once."""
        g = rate_limits.check_gid(gid)
        args = rate_limits.clear_args(check_now(now_ms), g)
        t = await self.routing.targets(queue)
        if g:
            part = self.routing.publish_target(queue, g, None)
            return rate_limits.parse_clear(
                await self.routing.call(rate_limits.CLEAR_RATE_LIMIT, part, args))
        replies = await self.routing.call_each(t, rate_limits.CLEAR_RATE_LIMIT, args)
        return any([rate_limits.parse_clear(r) for r in replies])

    async def get_rate_limit(
        self, queue: str, *, gid: str | None = None, now_ms: int = 0
    ) -> RateLimit | None:
        """The queue-wide rate limit (or group ``gid``'s), with the reservations its window
        holds now (``in_window``), or None. On a partitioned queue the queue-wide limit is
        the sum of the partitions' shares."""
        g = rate_limits.check_gid(gid)
        now = check_now(now_ms)
        t = await self.routing.targets(queue)
        args = rate_limits.get_args(now, g)
        if g:
            part = self.routing.publish_target(queue, g, None)
            found = rate_limits.parse_get(
                await self.routing.call(rate_limits.GET_RATE_LIMIT, part, args))
            return found[0] if found else None
        replies = await self.routing.call_each(t, rate_limits.GET_RATE_LIMIT, args)
        return rate_limits.merge_queue_limits(
            [next(iter(rate_limits.parse_get(r)), None) for r in replies])

    async def rate_limits(self, queue: str, *, now_ms: int = 0) -> list[RateLimit]:
        """Every rate limit of the queue: the queue-wide one first (``gid`` None), then the
        groups' in gid order (``omniq limit QUEUE`` prints them)."""
        now = check_now(now_ms)
        t = await self.routing.targets(queue)
        replies = await self.routing.call_each(t, rate_limits.GET_RATE_LIMIT,
                                               rate_limits.get_args(now, None))
        each = [rate_limits.parse_get(r) for r in replies]
        whole = rate_limits.merge_queue_limits(
            [next((x for x in found if x.gid is None), None) for found in each])
        groups = sorted((x for found in each for x in found if x.gid is not None),
                        key=lambda x: x.gid or "")
        return ([whole] if whole is not None else []) + groups

    # -- schedules ---------------------------------------------------------------------

    async def schedule(
        self,
        queue: str,
        name: str,
        *,
        cron: str | None = None,
        every_ms: int | None = None,
        payload: Any = None,
        tz: str = "UTC",
        start_ms: int | None = None,
        end_ms: int | None = None,
        misfire: Misfire = "once",
        misfire_grace_ms: int = DEFAULT_MISFIRE_GRACE_MS,
        jitter_ms: int = 0,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        backoff_ms: int = DEFAULT_BACKOFF_MS,
        gid: str | None = None,
        group_limit: int = 0,
        keep_completed_ms: int | None = None,
        keep_failed_ms: int | None = None,
        dedup_key: str | None = None,
        dedup_ttl_ms: int = 0,
        dedup: DedupMode = "keep",
        expire_in_ms: int = 0,
        run_timeout_ms: int = 0,
        backoff: Backoff = "fixed",
        backoff_max_ms: int = 0,
        backoff_jitter: bool = False,
        group_order: GroupOrder = "fifo",
        on_failure: OnFailure = "release",
        now_ms: int = 0,
    ) -> ScheduleInfo:
        """Create or replace the schedule ``name`` of ``queue``: a job with ``payload``
        (default ``{}``) published at every occurrence of ``cron`` (a cron expression in
        time zone ``tz``; needs the ``cron`` extra) or every ``every_ms`` (at least 1000)
        milliseconds, by the workers of the queue (or a :class:`~omniq.Scheduler`), each
        occurrence exactly once (docs/schedules.md).

        The same call twice changes nothing. A replacement keeps the schedule's state (its
        pause, counters and last occurrence) and, when its timing is unchanged, its next
        fire time; a new timing starts from now. ``start_ms`` / ``end_ms`` bound the
        occurrences (an interval counts from ``start_ms``, else from now; a ``start_ms``
        in the past makes the occurrences since then due at once, and ``misfire``
        decides). ``misfire``: what a fire does with occurrences that came due while no
        worker ran: ``"once"`` publishes the latest, ``"skip"`` none (except a lone one
        at most ``misfire_grace_ms`` late), ``"all"`` all of them, at most 100.
        ``jitter_ms`` delays each job by 0..jitter_ms (a hash of name and occurrence).
        The other keywords are :meth:`publish`'s options of every job (``expire_in_ms``
        counts from the fire). Returns the stored schedule.

        :raises InvalidArgument: a bad expression, time zone or option, both or neither of
            ``cron`` and ``every_ms``, no occurrence left (nothing is written).
        :raises ImportError: ``cron`` without the ``cron`` extra installed.
        """
        opts = enqueue.JobOptions(
            max_attempts=max_attempts, timeout_ms=timeout_ms, backoff_ms=backoff_ms, gid=gid,
            group_limit=group_limit, **self.defaults.ages(keep_completed_ms, keep_failed_ms),
            dedup_key=dedup_key, dedup_ttl_ms=dedup_ttl_ms, dedup=dedup,
            expire_in_ms=expire_in_ms, run_timeout_ms=run_timeout_ms, backoff=backoff,
            backoff_max_ms=backoff_max_ms, backoff_jitter=backoff_jitter,
            group_order=group_order, on_failure=on_failure,
        )
        spec = schedule_proto.ScheduleSpec(
            name, cron=cron, every_ms=every_ms, tz=tz, start_ms=start_ms, end_ms=end_ms,
            misfire=misfire, misfire_grace_ms=misfire_grace_ms, jitter_ms=jitter_ms,
            payload=encode_payload({} if payload is None else payload, self.max_payload_bytes),
            options=opts,
        )
        now = check_now(now_ms)
        routing = self.routing
        t = await routing.targets(queue)
        # a partitioned queue keeps a schedule where its jobs go (the gid's partition, the
        # dedup key's, else the name's), so every fire is one script call on one slot
        target = routing.publish_target(queue, opts.gid, spec.name, opts.dedup_key)
        read = schedule_proto.read_args(now, "one", spec.name)
        for _ in range(_SCHEDULE_TRIES):
            found = [schedule_proto.parse_read(r)
                     for r in await routing.call_each(t, schedule_proto.SCHEDULE_READ, read)]
            here = found[t.parts.index(target)]
            stored = here.records[0] if here.records else None
            # (validated before anything is written, the move below included)
            next_ms, anchor = schedule_proto.first_fire(spec, stored, here.now)
            moved = [part for part, rd in zip(t.parts, found, strict=True)
                     if rd.records and part != target]
            if moved:
                # a replacement moved it to another partition (a new gid): the old copy
                # goes first, so no occurrence can be fired from both
                await routing.call_all([(schedule_proto.SCHEDULE_REMOVE, part,
                                         schedule_proto.remove_args(spec.name)) for part in moved])
            rev = int(stored["rev"]) if stored else 0
            args = schedule_proto.set_args(now, spec, rev, next_ms, anchor)
            try:
                schedule_proto.parse_set(
                    await routing.call(schedule_proto.SCHEDULE_SET, target, args))
            except ScriptError as exc:
                if exc.code == "CHANGED":  # changed since our read: read again
                    continue
                raise
            info = await self.get_schedule(queue, spec.name, now_ms=now)
            assert info is not None
            return info
        raise OmniqError(f"schedule {name!r} of {queue!r} kept changing under this call "
                         f"({_SCHEDULE_TRIES} tries)")

    async def unschedule(self, queue: str, name: str) -> bool:
        """Delete the schedule ``name``; returns whether it existed. Jobs it published
        stay; a fire planned before the removal publishes nothing."""
        name = schedule_proto.check_schedule_name(name)
        t = await self.routing.targets(queue)
        replies = await self.routing.call_each(t, schedule_proto.SCHEDULE_REMOVE,
                                               schedule_proto.remove_args(name))
        return any([schedule_proto.parse_remove(r) for r in replies])

    async def pause_schedule(self, queue: str, name: str, *, now_ms: int = 0) -> bool:
        """Stop the schedule ``name`` from firing (at once: a fire planned before the pause
        publishes nothing); returns whether it was running.

        :raises ScheduleNotFound: no such schedule."""
        name = schedule_proto.check_schedule_name(name)
        now = check_now(now_ms)
        t = await self.routing.targets(queue)
        replies = await self.routing.call_all_results(
            [(schedule_proto.SCHEDULE_PAUSE, part, schedule_proto.pause_args(now, name, True))
             for part in t.parts])
        return self._schedule_outcome(replies, name)

    async def resume_schedule(self, queue: str, name: str, *, now_ms: int = 0) -> bool:
        """Let a paused schedule fire again, from its next occurrence after now (what it
        missed while paused is not published); returns whether it was paused.

        :raises ScheduleNotFound: no such schedule."""
        name = schedule_proto.check_schedule_name(name)
        now = check_now(now_ms)
        t = await self.routing.targets(queue)
        read = schedule_proto.read_args(now, "one", name)
        for _ in range(_SCHEDULE_TRIES):
            found = await self.routing.call_each(t, schedule_proto.SCHEDULE_READ, read)
            held = [(part, rd) for part, rd in zip(
                t.parts, map(schedule_proto.parse_read, found), strict=True) if rd.records]
            if not held:
                raise schedule_proto.not_found(name)
            part, rd = held[0]
            rec = rd.records[0]
            if rec["paused"] != "1":
                return False
            last = int(rec["last_ms"]) if rec["last_ms"] else None
            nxt = schedule_proto.timing_of(rec).after(rd.now if last is None else max(rd.now, last))
            args = schedule_proto.pause_args(now, name, False, int(rec["rev"]), nxt)
            try:
                return schedule_proto.parse_pause(
                    await self.routing.call(schedule_proto.SCHEDULE_PAUSE, part, args), name)
            except ScriptError as exc:
                if exc.code != "CHANGED":
                    raise
        raise OmniqError(f"schedule {name!r} of {queue!r} kept changing under this call "
                         f"({_SCHEDULE_TRIES} tries)")

    @staticmethod
    def _schedule_outcome(replies: list[Any], name: str) -> bool:
        """The outcome of a call sent to every partition, one of which holds the schedule
        (NO_SCHEDULE from the others)."""
        changed = False
        found = False
        for r in replies:
            if isinstance(r, BaseException):
                raise r
            try:
                changed = schedule_proto.parse_pause(r, name) or changed
            except ScheduleNotFound:
                continue
            found = True
        if not found:
            raise schedule_proto.not_found(name)
        return changed

    async def get_schedule(self, queue: str, name: str, *, now_ms: int = 0
                           ) -> ScheduleInfo | None:
        """The schedule ``name`` of ``queue`` (definition and state), or None."""
        name = schedule_proto.check_schedule_name(name)
        t = await self.routing.targets(queue)
        replies = await self.routing.call_each(
            t, schedule_proto.SCHEDULE_READ,
            schedule_proto.read_args(check_now(now_ms), "one", name))
        for part, r in zip(t.parts, replies, strict=True):
            rd = schedule_proto.parse_read(r)
            if rd.records:
                return schedule_proto.info(part, queue, rd.records[0])
        return None

    async def schedules(self, queue: str, *, now_ms: int = 0) -> list[ScheduleInfo]:
        """Every schedule of ``queue``, by name (``omniq schedules QUEUE`` prints them)."""
        now = check_now(now_ms)
        t = await self.routing.targets(queue)
        out: list[ScheduleInfo] = []
        offset = 0
        parts = list(t.parts)
        while parts:
            replies = await self.routing.call_all(
                [(schedule_proto.SCHEDULE_READ, part,
                  schedule_proto.read_args(now, "page", offset, MAX_PAGE)) for part in parts])
            more = []
            for part, r in zip(parts, replies, strict=True):
                rd = schedule_proto.parse_read(r)
                out += [schedule_proto.info(part, queue, rec) for rec in rd.records]
                if rd.tail is not None and rd.tail > offset + MAX_PAGE:
                    more.append(part)
            parts = more
            offset += MAX_PAGE
        # (a schedule whose next fire time changed between two pages may be read twice)
        return sorted({s.name: s for s in out}.values(), key=lambda s: s.name)

    async def fire_schedules(self, queue: str, *, now_ms: int = 0) -> FireResult:
        """Publish the due occurrences of the queue's schedules (at most 100 schedules
        per partition per call; ``next_in_ms`` 0 says more are due). Workers call it on
        their own; a :class:`~omniq.Scheduler` calls it for queues consumed by other
        clients. Any number of callers may race: each occurrence is published once.

        A schedule this client cannot evaluate (a cron schedule without the ``cron``
        extra) is left to others and logged once."""
        now = check_now(now_ms)
        t = await self.routing.targets(queue)
        read = schedule_proto.read_args(now, "due", MAX_SCHEDULES_DUE)
        calls: list[QueueCall] = []
        planned: list[list[schedule_proto.FireItem]] = []
        next_in: int | None = None
        for part, r in zip(t.parts, await self.routing.call_each(
                t, schedule_proto.SCHEDULE_READ, read), strict=True):
            rd = schedule_proto.parse_read(r)
            if rd.tail is not None:
                wait = max(rd.tail - rd.now, 0)
                next_in = wait if next_in is None else min(next_in, wait)
            items = [it for rec in rd.records
                     if (it := self._fire_item(part, rec, rd.now)) is not None]
            for it in items:  # (the read is older than these fires' new next times)
                if it.plan.next_ms is not None:
                    wait = max(it.plan.next_ms - rd.now, 0)
                    next_in = wait if next_in is None else min(next_in, wait)
            if items:
                calls.append((schedule_proto.SCHEDULE_FIRE, part,
                              schedule_proto.fire_args(now, self.defaults.events_maxlen, items)))
                planned.append(items)
        published = 0
        for items, reply in zip(planned, await self.routing.call_all(calls) if calls else [],
                                strict=True):
            for item, (status, n) in zip(items, schedule_proto.parse_fire(reply, len(items)),
                                         strict=True):
                published += n
                if status == "FIRED" and item.plan.skipped:
                    logger.warning("omniq: schedule %r of %r missed its occurrences from %d "
                                   "to %d (misfire policy: skipped)", item.name, queue,
                                   *item.plan.skipped)
        return FireResult(published, next_in)

    def _fire_item(
        self, part: str, rec: dict[str, str], now: int
    ) -> schedule_proto.FireItem | None:
        """The plan of one due schedule, or None (not due; or a definition this client
        cannot evaluate, logged once per revision)."""
        try:
            plan = schedule_proto.plan_for(rec, now)
        except (InvalidArgument, ImportError) as exc:
            key = (part, rec["name"], int(rec["rev"] or 0))
            if key not in self._unplannable:
                self._unplannable.add(key)
                logger.warning("omniq: schedule %r of %r not fired by this client: %s",
                               rec["name"], part, exc)
            return None
        if plan is None:
            return None
        return schedule_proto.FireItem(rec["name"], int(rec["rev"]), int(rec["next_ms"]), plan)


def _base_name(key: str | bytes, suffix: str) -> str:
    """``{name}<suffix>`` -> ``name`` (a valid queue name, else InvalidArgument)."""
    k = key.decode() if isinstance(key, bytes) else key
    name = k[: -len(suffix)]
    if name.startswith("{") and name.endswith("}"):
        name = name[1:-1]
    queue_base(name)  # validates
    return name


def official_consume_options(
    *,
    logger: Callable[[str], None] | None,
    poll_interval_s: float | None,
    promote_interval_s: float | None,
    promote_batch: int | None,
    reap_interval_s: float | None,
    reap_batch: int | None,
    heartbeat_interval_s: float | None,
    given: Mapping[str, Any],
) -> dict[str, Any]:
    """Map the official SDK's ``consume`` keywords onto :class:`Worker` options.

    ``logger`` becomes ``log_fn``; ``poll_interval_s`` the idle wait's ceiling
    (``poll_max_s``; wake-up signals make polling a fallback); ``promote_interval_s`` and
    ``reap_interval_s`` the one maintenance timer (the shorter of the two). The batch sizes
    and ``heartbeat_interval_s`` are checked and otherwise unused (docs/sync.md: omniq's
    maintenance promotes and reaps in full batches, heartbeats follow each job's timeout).
    """
    out: dict[str, Any] = {}

    def positive(name: str, value: object) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidArgument(f"{name} must be a positive number")

    for name, value in (("poll_interval_s", poll_interval_s),
                        ("promote_interval_s", promote_interval_s),
                        ("promote_batch", promote_batch), ("reap_interval_s", reap_interval_s),
                        ("reap_batch", reap_batch),
                        ("heartbeat_interval_s", heartbeat_interval_s)):
        positive(name, value)
    if logger is not None:
        if not callable(logger):
            raise InvalidArgument("logger must be a callable taking one str")
        out["log_fn"] = logger
    if poll_interval_s is not None:
        out["poll_max_s"] = float(poll_interval_s)
    intervals = [float(v) for v in (promote_interval_s, reap_interval_s) if v is not None]
    if intervals:
        out["maintenance_interval_s"] = min(intervals)
    clash = sorted(set(out) & set(given))
    if clash:
        raise InvalidArgument(f"{', '.join(clash)} given twice (official name and omniq name)")
    return out

