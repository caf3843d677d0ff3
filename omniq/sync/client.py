"""The blocking client: every :class:`~omniq.aio.client.AsyncOmniq` method, run on a private
event loop thread (see :mod:`omniq.sync._loop` and ``docs/sync.md``).

It accepts the official OmniQ Python client's calls unchanged::

    from omniq.client import OmniqClient

    uq = OmniqClient(host="localhost", port=6379)
    job_id = uq.publish(queue="demo", payload={"hello": "world"}, timeout_ms=30_000)
    uq.consume(queue="demo", handler=handler, drain=True)

One client may be shared by any number of threads. It must not be called from a thread
that runs an event loop (use ``AsyncOmniq`` there). After ``fork()`` the child builds its
own loop thread and connections on first use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import signal
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from types import FrameType
from typing import Any, Self, TypeVar, Unpack

from omniq import _bridge, _fork
from omniq._limits import (
    DEFAULT_BACKOFF_MS,
    DEFAULT_MAINTENANCE_BATCH,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MISFIRE_GRACE_MS,
    DEFAULT_TIMEOUT_MS,
)
from omniq._protocol.events import Since
from omniq.aio._events import EventStream
from omniq.aio.client import AsyncOmniq, official_consume_options
from omniq.aio.worker import Worker
from omniq.errors import ScriptError, SyncClientError
from omniq.settings import Settings, resolve
from omniq.sync._loop import LoopThread, abandon
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
    JobEvent,
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

__all__ = ["OmniqClient", "SyncClientError", "SyncEventStream"]

T = TypeVar("T")

_EXIT_TIMEOUT_S = 10.0
_SIGNAL_POLL_S = 1.0


class _Holder:
    """The mutable state of one client, kept apart so that finalizers never hold the client."""

    __slots__ = ("__weakref__", "closed", "lock", "make", "state", "wrapped")

    def __init__(self, make: Callable[[], AsyncOmniq], wrapped: bool) -> None:
        self.make = make
        self.wrapped = wrapped  # built around a caller's AsyncOmniq: cannot be rebuilt
        self.lock = threading.RLock()
        self.state: LoopThread | None = None
        self.closed = False

    def get(self) -> LoopThread:
        state = self.state
        if state is not None and state.pid == os.getpid():
            return state
        with self.lock:
            if self.closed:
                raise SyncClientError("this OmniqClient is closed")
            state = self.state
            if state is not None and state.pid != os.getpid():  # fork without the hook
                abandon(state)
                self.state = state = None
            if state is None:
                if self.wrapped:
                    raise SyncClientError(
                        "this OmniqClient wraps an AsyncOmniq created in the parent process "
                        "and cannot be used after fork(); create a new client in the child"
                    )
                state = self.state = LoopThread(self.make)
            return state

    def after_fork_in_child(self) -> None:
        self.lock = threading.RLock()  # may have been held by another thread at fork time
        if self.state is not None:
            abandon(self.state)
            self.state = None

    def close(self, timeout: float | None = None) -> None:
        with self.lock:
            state, self.state = self.state, None
            self.closed = True
        if state is not None and state.pid == os.getpid():
            state.close(timeout)


def _check_no_running_loop(holder: _Holder) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    state = holder.state
    if state is not None and state.loop is loop:
        raise SyncClientError(
            "OmniqClient was called from its own event loop thread (an async handler?); "
            "it would deadlock: use the AsyncOmniq methods with await there "
            "(ctx.exec in handlers, or omniq.AsyncOmniq)"
        )
    raise SyncClientError(
        "OmniqClient (blocking) was called from a thread running an asyncio event loop, "
        "which it would block; use omniq.AsyncOmniq and await its methods there"
    )


def _sync_redis_params(
    r: Any,
) -> tuple[str, int, int, str | None, str | None, bool, bool] | None:
    """Connection settings ``(host, port, db, username, password, ssl, cluster)`` of a
    blocking ``redis.Redis`` or ``redis.RedisCluster`` (the official ``redis=``), or None for
    anything else (an asyncio client is passed on to AsyncOmniq as it is)."""
    import redis as redis_py

    cluster = isinstance(r, redis_py.RedisCluster)
    if cluster:
        node = r.get_default_node()
        conn = node.redis_connection if node is not None else None
        if conn is None:
            raise SyncClientError("redis= with a RedisCluster that has no node: pass redis_url=")
        pool = conn.connection_pool
    elif isinstance(r, redis_py.Redis):
        pool = r.connection_pool
    else:
        return None
    kw = pool.connection_kwargs
    if "path" in kw:
        raise SyncClientError("redis= with a unix socket connection: pass redis_url=")
    ssl = issubclass(pool.connection_class, redis_py.SSLConnection)
    return (str(kw.get("host", "localhost")), int(kw.get("port", 6379)), int(kw.get("db", 0)),
            kw.get("username"), kw.get("password"), ssl, cluster)


async def _new_worker(client: AsyncOmniq, *args: Any, **kwargs: Any) -> Worker:
    return Worker(client, *args, **kwargs)


class OmniqClient:
    """Blocking OmniQ client with the methods of :class:`~omniq.AsyncOmniq`.

    Connect with ``host``/``port``/``db``/``username``/``password``/``ssl`` or a
    ``redis_url`` (``redis+cluster://`` for Redis Cluster); other keyword options
    (``max_payload_bytes``, ``keep_completed``, ``keep_failed``, ``child_ttl_ms``,
    ``socket_timeout``, ``max_connections``, ``cluster``) go to ``AsyncOmniq``. Or pass
    ``client=`` an ``AsyncOmniq`` not yet used on any loop: the facade then owns and
    closes it.

    The async client lives on a private event loop in a daemon thread; each method submits
    its coroutine there and waits. Close with :meth:`close` or ``with OmniqClient(...)``;
    a forgotten client is closed at interpreter exit.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 6379,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        ssl: bool = False,
        redis_url: str | None = None,
        client_name: str | None = None,
        *,
        client: AsyncOmniq | None = None,
        redis: Any = None,
        scripts_dir: str | None = None,
        **async_options: Any,
    ) -> None:
        # the official SDK's keywords: scripts_dir is not used (omniq runs its own,
        # wire-compatible scripts); a blocking redis-py client gives the server to connect to
        if redis is not None:
            conn = _sync_redis_params(redis)
            if conn is None:
                async_options["redis"] = redis
            else:
                host, port, db, username, password, ssl, cluster = conn
                if cluster:
                    async_options["cluster"] = True
        if client is not None:
            if async_options:
                raise TypeError("connection options cannot be combined with client=")
            wrapped = client
            holder = _Holder(lambda: wrapped, wrapped=True)
        else:
            make = functools.partial(
                AsyncOmniq, url=redis_url, host=host, port=port, db=db, username=username,
                password=password, ssl=ssl, client_name=client_name, **async_options,
            )
            holder = _Holder(make, wrapped=False)
        self._holder = holder
        holder.state = LoopThread(holder.make)
        _fork.on_fork_in_child(holder, _Holder.after_fork_in_child)
        self._finalizer = weakref.finalize(self, holder.close, _EXIT_TIMEOUT_S)

    @classmethod
    def from_settings(
        cls, settings: Settings | Mapping[str, Any] | None = None, **overrides: Any
    ) -> OmniqClient:
        """A blocking client from :class:`~omniq.settings.Settings`: the twin of
        :meth:`AsyncOmniq.from_settings <omniq.AsyncOmniq.from_settings>` (``url`` becomes
        ``redis_url``). :raises SettingsError:"""
        options = resolve(settings, overrides).client_options()
        return cls(redis_url=options.pop("url"), **options)

    # -- plumbing ----------------------------------------------------------------------

    def _run(self, call: Callable[[AsyncOmniq], Coroutine[Any, Any, T]]) -> T:
        _check_no_running_loop(self._holder)
        state = self._holder.get()
        assert state.client is not None
        # wait() cancels the call on the loop on a KeyboardInterrupt in the caller
        return _bridge.wait(state.submit(call(state.client)))

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop running consumers, close the connections and the loop thread (idempotent)."""
        self._finalizer.detach()
        self._holder.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._holder.closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._holder.closed else "open"
        return f"<OmniqClient {state}>"

    def ping(self) -> bool:
        """Check the connection."""
        return self._run(lambda c: c.ping())

    @staticmethod
    def queue_base(queue_name: str) -> str:
        """``{queue_name}``: the hash-tagged key prefix of a queue."""
        return AsyncOmniq.queue_base(queue_name)

    # -- publishing --------------------------------------------------------------------

    def publish(
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
        """Enqueue one job (a dict or list payload); returns its id. See AsyncOmniq.publish."""
        return self._run(lambda c: c.publish(
            queue, payload, job_id=job_id, max_attempts=max_attempts, timeout_ms=timeout_ms,
            backoff_ms=backoff_ms, due_ms=due_ms, delay_ms=delay_ms, gid=gid,
            group_limit=group_limit, keep_completed_ms=keep_completed_ms,
            keep_failed_ms=keep_failed_ms, dedup_key=dedup_key, dedup_ttl_ms=dedup_ttl_ms,
            dedup=dedup, expires_ms=expires_ms, expire_in_ms=expire_in_ms,
            run_timeout_ms=run_timeout_ms, backoff=backoff, backoff_max_ms=backoff_max_ms,
            backoff_jitter=backoff_jitter, group_order=group_order, on_failure=on_failure,
            depends_on=depends_on, on_dependency_failure=on_dependency_failure,
            now_ms=now_ms, now_ms_override=now_ms_override,
        ))

    def publish_flow(self, flow: FlowJob) -> FlowNode:
        """Publish a flow: a job that runs once its children have completed (see
        AsyncOmniq.publish_flow)."""
        return self._run(lambda c: c.publish_flow(flow))

    def chain(self, *jobs: FlowJob) -> list[str]:
        """Publish jobs that run one after the other; returns their ids in order."""
        return self._run(lambda c: c.chain(*jobs))

    def group(self, jobs: Sequence[FlowJob]) -> list[FlowNode]:
        """Publish independent jobs (each may be a flow); returns their nodes in order."""
        return self._run(lambda c: c.group(jobs))

    def wait_all(
        self, jobs: Sequence[FlowNode | tuple[str, str]], *, timeout: float | None = None
    ) -> list[Any]:
        """Wait until every job finishes; their results in order."""
        return self._run(lambda c: c.wait_all(jobs, timeout=timeout))

    def dependency_results(self, queue: str, job_id: str) -> dict[str, Any]:
        """The results of a job's completed dependencies, by job id."""
        return self._run(lambda c: c.dependency_results(queue, job_id))

    def resolve_dependencies(self, queue: str, *, repair: bool = True, now_ms: int = 0) -> int:
        """Deliver the dependency work ``queue`` owes other queues (see
        AsyncOmniq.resolve_dependencies)."""
        return self._run(lambda c: c.resolve_dependencies(queue, repair=repair, now_ms=now_ms))

    def publish_json(self, queue: str, payload: Any, **options: Unpack[PublishOptions]) -> str:
        """Publish a msgspec Struct, dataclass, pydantic model or JSON value; returns its id."""
        return self._run(lambda c: c.publish_json(queue, payload, **options))

    def publish_many(
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
        """Enqueue many jobs in one round trip; returns their ids in order."""
        return self._run(lambda c: c.publish_many(
            queue, jobs, max_attempts=max_attempts, timeout_ms=timeout_ms,
            backoff_ms=backoff_ms, gid=gid, group_limit=group_limit, delay_ms=delay_ms,
            keep_completed_ms=keep_completed_ms, keep_failed_ms=keep_failed_ms,
            dedup_ttl_ms=dedup_ttl_ms, dedup=dedup, expires_ms=expires_ms,
            expire_in_ms=expire_in_ms, run_timeout_ms=run_timeout_ms, backoff=backoff,
            backoff_max_ms=backoff_max_ms, backoff_jitter=backoff_jitter,
            group_order=group_order, on_failure=on_failure, now_ms=now_ms,
        ))

    # -- partitions --------------------------------------------------------------------

    def partition_queue(self, queue: str, partitions: int) -> bool:
        """Spread ``queue`` over ``partitions`` physical queues (stored in Redis, permanent);
        returns True when stored now, False when already so. :raises PartitionError:"""
        return self._run(lambda c: c.partition_queue(queue, partitions))

    def queue_partitions(self, queue: str) -> list[str]:
        """The physical queues of ``queue`` (``[queue]`` when it is not partitioned)."""
        return self._run(lambda c: c.queue_partitions(queue))

    # -- rate limits -------------------------------------------------------------------

    def set_rate_limit(
        self, queue: str, max_jobs: int, per_ms: int, *, gid: str | None = None,
        now_ms: int = 0,
    ) -> None:
        """At most ``max_jobs`` reservations of the queue (or group ``gid``) per ``per_ms``
        window (see ``AsyncOmniq.set_rate_limit``)."""
        self._run(lambda c: c.set_rate_limit(queue, max_jobs, per_ms, gid=gid, now_ms=now_ms))

    def clear_rate_limit(self, queue: str, *, gid: str | None = None, now_ms: int = 0) -> bool:
        """Remove the queue-wide (or group ``gid``'s) rate limit; whether there was one."""
        return self._run(lambda c: c.clear_rate_limit(queue, gid=gid, now_ms=now_ms))

    def get_rate_limit(
        self, queue: str, *, gid: str | None = None, now_ms: int = 0
    ) -> RateLimit | None:
        """The queue-wide (or group ``gid``'s) rate limit, or None."""
        return self._run(lambda c: c.get_rate_limit(queue, gid=gid, now_ms=now_ms))

    def rate_limits(self, queue: str, *, now_ms: int = 0) -> list[RateLimit]:
        """Every rate limit of the queue, the queue-wide one first."""
        return self._run(lambda c: c.rate_limits(queue, now_ms=now_ms))

    # -- schedules ---------------------------------------------------------------------

    def schedule(
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
        """Create or replace the schedule ``name`` of ``queue`` (a cron expression or an
        interval; see ``AsyncOmniq.schedule`` and docs/schedules.md)."""
        return self._run(lambda c: c.schedule(
            queue, name, cron=cron, every_ms=every_ms, payload=payload, tz=tz,
            start_ms=start_ms, end_ms=end_ms, misfire=misfire,
            misfire_grace_ms=misfire_grace_ms, jitter_ms=jitter_ms, max_attempts=max_attempts,
            timeout_ms=timeout_ms, backoff_ms=backoff_ms, gid=gid, group_limit=group_limit,
            keep_completed_ms=keep_completed_ms, keep_failed_ms=keep_failed_ms,
            dedup_key=dedup_key, dedup_ttl_ms=dedup_ttl_ms, dedup=dedup,
            expire_in_ms=expire_in_ms, run_timeout_ms=run_timeout_ms, backoff=backoff,
            backoff_max_ms=backoff_max_ms, backoff_jitter=backoff_jitter,
            group_order=group_order, on_failure=on_failure, now_ms=now_ms,
        ))

    def unschedule(self, queue: str, name: str) -> bool:
        """Delete the schedule ``name``; whether it existed."""
        return self._run(lambda c: c.unschedule(queue, name))

    def pause_schedule(self, queue: str, name: str, *, now_ms: int = 0) -> bool:
        """Stop the schedule ``name`` from firing; whether it was running."""
        return self._run(lambda c: c.pause_schedule(queue, name, now_ms=now_ms))

    def resume_schedule(self, queue: str, name: str, *, now_ms: int = 0) -> bool:
        """Let a paused schedule fire again from its next occurrence; whether it was
        paused."""
        return self._run(lambda c: c.resume_schedule(queue, name, now_ms=now_ms))

    def get_schedule(self, queue: str, name: str, *, now_ms: int = 0) -> ScheduleInfo | None:
        """The schedule ``name`` of ``queue``, or None."""
        return self._run(lambda c: c.get_schedule(queue, name, now_ms=now_ms))

    def schedules(self, queue: str, *, now_ms: int = 0) -> list[ScheduleInfo]:
        """Every schedule of ``queue``, by name."""
        return self._run(lambda c: c.schedules(queue, now_ms=now_ms))

    def fire_schedules(self, queue: str, *, now_ms: int = 0) -> FireResult:
        """Publish the due occurrences of the queue's schedules (see
        ``AsyncOmniq.fire_schedules``)."""
        return self._run(lambda c: c.fire_schedules(queue, now_ms=now_ms))

    # -- consuming ---------------------------------------------------------------------

    def consume(
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
        """Run a :class:`~omniq.aio.worker.Worker` until it stops (``drain=True``: until the
        queues are empty); blocks the calling thread and returns the finished worker.

        Plain handlers run in worker threads (heartbeats go on meanwhile), async handlers on
        the loop. Ctrl-C or SIGTERM stops gracefully (in-flight jobs finish, nothing new is
        taken), a second one at once. With ``handle_signals=False`` signal handlers are left
        alone and a KeyboardInterrupt stops the worker at once and propagates.
        ``logger`` (a callable taking one line) receives the worker's log lines for this
        run; the other official keywords are mapped as docs/sync.md describes.
        """
        _check_no_running_loop(self._holder)
        worker_options.update(official_consume_options(
            logger=logger, poll_interval_s=poll_interval_s,
            promote_interval_s=promote_interval_s, promote_batch=promote_batch,
            reap_interval_s=reap_interval_s, reap_batch=reap_batch,
            heartbeat_interval_s=heartbeat_interval_s, given=worker_options,
        ))
        state = self._holder.get()
        worker = self._run(lambda c: _new_worker(
            c, queue, handler, concurrency=concurrency, drain=drain, verbose=verbose,
            handle_signals=False, **worker_options,
        ))
        fut = state.submit(worker.run(), worker=worker)
        requests = 0

        def stop() -> None:
            nonlocal requests
            requests += 1
            if requests == 1:
                state.call_soon(state.soft_stop, worker)
            else:
                state.call_soon(worker.request_stop)

        def hard_stop() -> None:
            state.call_soon(state.soft_stop, worker)
            state.call_soon(worker.request_stop)

        restore = _install_signals(stop) if handle_signals is not False else None
        try:
            while True:
                try:
                    # wake up now and then: a signal that landed on another thread is
                    # only acted upon (KeyboardInterrupt) when this thread runs Python code
                    concurrent.futures.wait([fut], timeout=_SIGNAL_POLL_S)
                    if fut.done():
                        fut.result()
                        return worker
                except KeyboardInterrupt:
                    if handle_signals is False:
                        hard_stop()
                        raise
                    stop()
                except BaseException:
                    if not fut.done():
                        hard_stop()
                    raise
        finally:
            if restore is not None:
                restore()

    # -- leasing -----------------------------------------------------------------------

    def reserve(self, queue: str, *, now_ms: int = 0,
                now_ms_override: int = 0) -> ReservedJob | None:
        """Lease the next job of the queue, or return None (empty or paused)."""
        return self._run(lambda c: c.reserve(queue, now_ms=now_ms, now_ms_override=now_ms_override))

    def reserve_many(self, queue: str, count: int, *, now_ms: int = 0) -> ReserveResult:
        """Lease up to ``count`` (1-1000) jobs in one round trip."""
        return self._run(lambda c: c.reserve_many(queue, count, now_ms=now_ms))

    def heartbeat(self, queue: str, job_id: str, lease_token: str, *, now_ms: int = 0,
                  now_ms_override: int = 0) -> int:
        """Extend a lease; returns the new ``lock_until_ms``. :raises LeaseLost:"""
        return self._run(lambda c: c.heartbeat(queue, job_id, lease_token, now_ms=now_ms,
                                               now_ms_override=now_ms_override))

    def heartbeat_many(
        self, leases: Sequence[Lease | tuple[str, str, str]], *, now_ms: int = 0
    ) -> list[int | ScriptError]:
        """Extend many leases in one round trip; the new lock time or the error of each."""
        return self._run(lambda c: c.heartbeat_many(leases, now_ms=now_ms))

    def ack_success(
        self,
        queue: str,
        job_id: str,
        lease_token: str,
        *,
        result: Any = None,
        now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> None:
        """Complete a leased job, storing ``result``. :raises LeaseLost:"""
        return self._run(lambda c: c.ack_success(
            queue, job_id, lease_token, result=result, now_ms=now_ms,
            now_ms_override=now_ms_override,
        ))

    def ack_fail(
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
        """Fail a leased job: retry after its backoff, or fail for good. :raises LeaseLost:"""
        return self._run(lambda c: c.ack_fail(
            queue, job_id, lease_token, error, final=final, now_ms=now_ms,
            now_ms_override=now_ms_override,
        ))

    def ack_reserve(
        self,
        queue: str,
        acks: Sequence[Ack],
        reserve_count: int,
        *,
        now_ms: int = 0,
    ) -> tuple[list[FailOutcome | ScriptError | None], ReserveResult | None]:
        """Settle finished leases and reserve the next jobs in one round trip."""
        return self._run(lambda c: c.ack_reserve(queue, acks, reserve_count, now_ms=now_ms))

    # -- maintenance -------------------------------------------------------------------

    def promote_delayed(
        self, queue: str, *, max_promote: int = DEFAULT_MAINTENANCE_BATCH, now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> int:
        """Move due delayed jobs to their lane; returns how many moved."""
        return self._run(lambda c: c.promote_delayed(
            queue, max_promote=max_promote, now_ms=now_ms, now_ms_override=now_ms_override
        ))

    def reap_expired(
        self, queue: str, *, max_reap: int = DEFAULT_MAINTENANCE_BATCH, now_ms: int = 0,
        now_ms_override: int = 0,
    ) -> int:
        """Retry or fail jobs whose lease expired; returns how many were reaped."""
        return self._run(lambda c: c.reap_expired(queue, max_reap=max_reap, now_ms=now_ms,
                                                  now_ms_override=now_ms_override))

    # -- pause -------------------------------------------------------------------------

    def pause(self, queue: str) -> None:
        """Stop new reservations on the queue (running jobs are untouched)."""
        return self._run(lambda c: c.pause(queue))

    def resume(self, queue: str) -> bool:
        """Allow reservations again; returns whether the queue was paused."""
        return self._run(lambda c: c.resume(queue))

    def is_paused(self, queue: str) -> bool:
        """Whether the queue is paused."""
        return self._run(lambda c: c.is_paused(queue))

    # -- admin -------------------------------------------------------------------------

    def retry_failed(self, queue: str, job_id: str, *, now_ms: int = 0,
                     now_ms_override: int = 0) -> None:
        """Move a failed job back to its lane, attempts reset. :raises JobNotFound, LaneMismatch:"""
        return self._run(lambda c: c.retry_failed(queue, job_id, now_ms=now_ms,
                                                  now_ms_override=now_ms_override))

    def retry_failed_batch(
        self, queue: str, job_ids: Sequence[str], *, now_ms: int = 0, now_ms_override: int = 0
    ) -> list[BatchResult]:
        """retry_failed for up to 100 jobs; one ``(job_id, status, reason)`` each."""
        return self._run(lambda c: c.retry_failed_batch(queue, job_ids, now_ms=now_ms,
                                                        now_ms_override=now_ms_override))

    def remove_job(self, queue: str, job_id: str, lane: str, *, now_ms: int = 0) -> None:
        """Delete a job that is in ``lane``. :raises JobNotFound, LaneMismatch:"""
        return self._run(lambda c: c.remove_job(queue, job_id, lane, now_ms=now_ms))

    def remove_jobs_batch(
        self, queue: str, lane: str, job_ids: Sequence[str], *, now_ms: int = 0
    ) -> list[BatchResult]:
        """remove_job for up to 100 jobs of one lane; one ``(job_id, status, reason)`` each."""
        return self._run(lambda c: c.remove_jobs_batch(queue, lane, job_ids, now_ms=now_ms))

    def cancel(self, queue: str, job_id: str, *, now_ms: int = 0) -> CancelResult:
        """Cancel a job (see :meth:`AsyncOmniq.cancel`)."""
        return self._run(lambda c: c.cancel(queue, job_id, now_ms=now_ms))

    # -- parent / child ----------------------------------------------------------------

    def childs_init(self, key: str, expected: int, *, ttl_ms: int = 0) -> None:
        """Start a completion counter expecting ``expected`` children. :raises CounterError:"""
        return self._run(lambda c: c.childs_init(key, expected, ttl_ms=ttl_ms))

    def child_ack(self, key: str, child_id: str) -> int:
        """Count ``child_id`` as done (idempotent); returns how many children remain."""
        return self._run(lambda c: c.child_ack(key, child_id))

    # -- inspection --------------------------------------------------------------------

    def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """The stored record of a job, or None."""
        return self._run(lambda c: c.get_job(queue, job_id))

    def get_flow(
        self, queue: str, job_id: str, *, max_nodes: int = 10_000
    ) -> FlowInfo | None:
        """The job and the jobs it depends on, recursively, as a tree, or None."""
        return self._run(lambda c: c.get_flow(queue, job_id, max_nodes=max_nodes))

    def jobs(
        self, queue: str, lane: str, *, limit: int = 25, cursor: str | None = None,
        reverse: bool = False,
    ) -> JobPage:
        """One page of a lane in index order, with the next page's ``cursor``."""
        return self._run(lambda c: c.jobs(queue, lane, limit=limit, cursor=cursor,
                                          reverse=reverse))

    def index_times(self, queue: str, lane: str, job_ids: Sequence[str]) -> list[int | None]:
        """The score of each job in the lane's index, None where it is not in that lane."""
        return self._run(lambda c: c.index_times(queue, lane, job_ids))

    def ready_groups(
        self, queue: str, *, offset: int = 0, limit: int = 200
    ) -> list[tuple[str, int]]:
        """Groups offered to reserve as ``(gid, score_ms)``, oldest first."""
        return self._run(lambda c: c.ready_groups(queue, offset=offset, limit=limit))

    def group_states(self, queue: str, gids: Sequence[str]) -> list[GroupState]:
        """The :class:`GroupState` of each gid, in order."""
        return self._run(lambda c: c.group_states(queue, gids))

    def events(
        self,
        queue: str | Sequence[str],
        *,
        since: Since = "$",
        types: Iterable[str] | None = None,
    ) -> SyncEventStream:
        """A blocking iterator of the queues' lifecycle events (see
        :meth:`AsyncOmniq.events <omniq.AsyncOmniq.events>`)::

            with client.events("emails", types=["failed"]) as events:
                for event in events:
                    print(event.job_id, event.error)

        :raises InvalidArgument: a bad queue name, ``since`` or event type (at once).
        """
        async def make(c: AsyncOmniq) -> EventStream:
            return c.events(queue, since=since, types=types)

        return SyncEventStream(self, self._run(make))

    def wait(self, queue: str, job_id: str, *, timeout: float | None = None) -> Any:
        """Block until the job finishes and return its result (see
        :meth:`AsyncOmniq.wait <omniq.AsyncOmniq.wait>`).

        :raises JobFailed: it ended failed. :raises JobNotFound: no such job.
        :raises TimeoutError: ``timeout`` seconds passed first.
        """
        return self._run(lambda c: c.wait(queue, job_id, timeout=timeout))

    def progress(
        self, queue: str, job_id: str, lease_token: str, value: Any, *, now_ms: int = 0
    ) -> None:
        """Store a leased job's progress and emit a ``progress`` event."""
        self._run(lambda c: c.progress(queue, job_id, lease_token, value, now_ms=now_ms))

    def result(self, queue: str, job_id: str) -> Any:
        """The decoded result of a completed job, or None."""
        return self._run(lambda c: c.result(queue, job_id))

    def stats(self, queue: str) -> QueueStats:
        """Exact counts of every lane of the queue."""
        return self._run(lambda c: c.stats(queue))

    def queues(self) -> list[str]:
        """Names of the queues on the server."""
        return self._run(lambda c: c.queues())


class SyncEventStream:
    """The blocking twin of :class:`~omniq.aio._events.EventStream`: iterate it for
    :class:`~omniq.types.JobEvent`; ``cursor`` resumes a later reader; close it (or use
    ``with``) when done."""

    __slots__ = ("_client", "_stream")

    def __init__(self, client: OmniqClient, stream: EventStream) -> None:
        self._client = client
        self._stream = stream

    @property
    def cursor(self) -> dict[str, str]:
        """Where a new reader continues after the last event yielded (``since=cursor``)."""
        return self._stream.cursor

    def __iter__(self) -> SyncEventStream:
        return self

    def __next__(self) -> JobEvent:
        stream = self._stream
        try:
            return self._client._run(lambda c: stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Stop reading."""
        if not self._client.closed:
            self._client._run(lambda c: self._stream.aclose())

    def __enter__(self) -> SyncEventStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _install_signals(stop: Callable[[], None]) -> Callable[[], None] | None:
    """On the main thread, make SIGTERM (and SIGINT, if Python's default handler is in
    place) call ``stop``; returns the function that restores the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop()

    sigs = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        sigs.append(signal.SIGINT)
    previous: list[tuple[int, Any]] = []
    try:
        for sig in sigs:
            previous.append((sig, signal.signal(sig, on_signal)))
    except (ValueError, OSError):  # not the main interpreter
        pass

    def restore() -> None:
        for sig, handler in previous:
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    return restore
