"""What a handler receives: :class:`JobContext` and its ``exec`` helpers.

Async handlers get an :class:`Exec` whose methods are coroutines. Plain-function handlers
run in a worker thread and get a :class:`SyncExec` with the same methods, blocking; each
one hops to the worker's event loop (:mod:`omniq._bridge`), so no queue logic is written
twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

# Not used here any more, but kept: anyio loads these modules lazily, and without this
# import the worker (which imports this module) would load them on its event loop when it
# builds its CapacityLimiter (a callback of over 100 ms in asyncio's debug mode).
import anyio.from_thread  # noqa: F401

from omniq import _bridge
from omniq.codec import decode_payload
from omniq.errors import JobCancelled, LeaseLost
from omniq.types import (
    BatchResult,
    CancelResult,
    FlowJob,
    FlowNode,
    JobInfo,
    PublishOptions,
    QueueStats,
    RateLimit,
    ReservedJob,
    ScheduleInfo,
)

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq

__all__ = ["CheckCompletion", "Exec", "JobContext", "SyncCheckCompletion", "SyncExec"]

T = TypeVar("T")


class JobContext:
    """The job being handled.

    ``payload`` is the decoded JSON (the raw text if it is not JSON), ``attempt`` is
    1-based, ``lock_until_ms`` is kept current by the worker's heartbeats and
    ``lease_lost`` turns True when the lease is lost (stop work: it will not be acked).
    ``queue`` is the physical queue (``orders.p3`` for partition 3 of ``orders``);
    ``logical_queue`` the name the job was published to (``queue`` when not partitioned).
    ``schedule`` is the name of the schedule that published the job and ``occurrence_ms``
    the occurrence it is for (epoch ms, the time the schedule fired for); both None for a
    job that no schedule published.
    """

    __slots__ = (
        "_cancel_flag",
        "_cancelled",
        "_payload",
        "attempt",
        "check_completion",
        "exec",
        "gid",
        "job_id",
        "lease_lost",
        "lease_token",
        "lock_until_ms",
        "logical_queue",
        "max_attempts",
        "occurrence_ms",
        "payload_raw",
        "queue",
        "schedule",
        "timeout_ms",
    )

    def __init__(self, job: ReservedJob, logical_queue: str | None = None) -> None:
        self.queue = job.queue
        self.logical_queue = job.queue if logical_queue is None else logical_queue
        self.job_id = job.job_id
        self.payload_raw = job.payload_raw
        self.attempt = job.attempt
        self.max_attempts = job.max_attempts
        self.lock_until_ms = job.lock_until_ms
        self.lease_token = job.lease_token
        self.gid = job.gid
        self.timeout_ms = job.timeout_ms
        self.schedule: str | None = job.schedule or None
        self.occurrence_ms: int | None = job.occurrence_ms or None
        self.lease_lost = False
        self._payload: Any = _UNSET
        self._cancelled = False  # set by the worker (Worker._interrupt)
        self._cancel_flag: Any = None  # a process handler's shared flag (set by the worker)
        self.exec: Any = None
        self.check_completion: Any = None

    def progress(self, value: Any) -> Any:
        """Report progress: store ``value`` (a JSON value, at most 64 KiB encoded) as the
        job's latest progress (``get_job(...).progress``) and emit a ``progress`` event.

        ``await ctx.progress(50)`` in an async handler; ``ctx.progress(50)`` (blocking) in
        a plain function. Not available to handlers run in worker processes.

        :raises InvalidArgument: not JSON, or too large. :raises LeaseLost: the lease is
            gone (``lease_lost`` turns True).
        """
        self.check_cancelled()
        if self.exec is None:
            raise RuntimeError(
                "ctx.progress is not available in a process handler: report progress from "
                "an async or thread handler")
        return self.exec.progress(value)

    def children_results(self) -> Any:
        """The results of this job's completed dependencies (a flow's children), by job id
        (see :meth:`AsyncOmniq.dependency_results`): ``await ctx.children_results()`` in an
        async handler, ``ctx.children_results()`` in a plain function. Not available to
        handlers run in worker processes (read ``client.dependency_results`` there)."""
        if self.exec is None:
            raise RuntimeError(
                "ctx.children_results is not available in a process handler: read "
                "dependency_results(ctx.queue, ctx.job_id) with a client of its own")
        return self.exec.dependency_results()

    @property
    def cancelled(self) -> bool:
        """Whether the worker stopped this attempt: the job was cancelled or ran past its
        run timeout. A thread or process handler should return soon (the worker has already
        failed the attempt and will ignore its result); ``ctx.exec`` calls and
        ``ctx.progress`` raise :class:`~omniq.JobCancelled` from then on."""
        if self._cancelled:
            return True
        flag = self._cancel_flag
        return flag is not None and bool(flag.value)

    def check_cancelled(self) -> None:
        """Raise :class:`~omniq.JobCancelled` when :attr:`cancelled` is True."""
        if self.cancelled:
            raise JobCancelled(f"job {self.job_id} was stopped: its attempt is over")

    @property
    def payload(self) -> Any:
        """The decoded payload (decoded once, on first access)."""
        if self._payload is _UNSET:
            self._payload = decode_payload(self.payload_raw)
        return self._payload

    @property
    def is_last_attempt(self) -> bool:
        """Whether a failure now ends the job as failed."""
        return self.attempt >= max(self.max_attempts, 1)

    def __repr__(self) -> str:
        return (
            f"JobContext(queue={self.queue!r}, job_id={self.job_id!r}, "
            f"attempt={self.attempt}/{self.max_attempts}, gid={self.gid!r})"
        )


_UNSET: Any = object()


class Exec:
    """Queue operations for an async handler, bound to the current job.

    Each method is the :class:`~omniq.AsyncOmniq` method of the same name (same
    parameters, same results), except :meth:`heartbeat` (the current lease) and
    :meth:`child_ack` (the child id defaults to the current job id).
    ``tests/worker/test_context_parity.py`` keeps them in step.
    """

    __slots__ = ("_client", "_ctx", "_on_lost")

    def __init__(
        self, client: AsyncOmniq, ctx: JobContext, on_lost: Callable[[], None] | None = None
    ) -> None:
        self._client = client
        self._ctx = ctx
        self._on_lost = on_lost

    @property
    def client(self) -> AsyncOmniq:
        """The underlying client, for anything not covered here."""
        return self._client

    @property
    def default_child_id(self) -> str:
        """The child id :meth:`child_ack` uses by default: the current job's id."""
        return self._ctx.job_id

    async def publish(self, queue: str, payload: Any, **options: Unpack[PublishOptions]) -> str:
        """Publish a job (options as :meth:`AsyncOmniq.publish`); returns its id."""
        self._ctx.check_cancelled()
        return await self._client.publish(queue, payload, **options)

    async def publish_json(
        self, queue: str, payload: Any, **options: Unpack[PublishOptions]
    ) -> str:
        """Publish a struct, dataclass or pydantic model (see :meth:`AsyncOmniq.publish_json`)."""
        self._ctx.check_cancelled()
        return await self._client.publish_json(queue, payload, **options)

    async def pause(self, queue: str) -> None:
        """Pause a queue."""
        self._ctx.check_cancelled()
        await self._client.pause(queue)

    async def resume(self, queue: str) -> bool:
        """Resume a queue; returns whether it was paused."""
        self._ctx.check_cancelled()
        return await self._client.resume(queue)

    async def is_paused(self, queue: str) -> bool:
        """Whether a queue is paused."""
        self._ctx.check_cancelled()
        return await self._client.is_paused(queue)

    async def set_rate_limit(
        self, queue: str, max_jobs: int, per_ms: int, *, gid: str | None = None
    ) -> None:
        """Set a queue's (or group's) rate limit, such as after an upstream's HTTP 429."""
        self._ctx.check_cancelled()
        await self._client.set_rate_limit(queue, max_jobs, per_ms, gid=gid)

    async def clear_rate_limit(self, queue: str, *, gid: str | None = None) -> bool:
        """Remove a queue's (or group's) rate limit; returns whether there was one."""
        self._ctx.check_cancelled()
        return await self._client.clear_rate_limit(queue, gid=gid)

    async def get_rate_limit(self, queue: str, *, gid: str | None = None) -> RateLimit | None:
        """A queue's (or group's) rate limit, or None."""
        self._ctx.check_cancelled()
        return await self._client.get_rate_limit(queue, gid=gid)

    async def pause_schedule(self, queue: str, name: str) -> bool:
        """Stop a schedule from firing; returns whether it was running."""
        self._ctx.check_cancelled()
        return await self._client.pause_schedule(queue, name)

    async def resume_schedule(self, queue: str, name: str) -> bool:
        """Let a paused schedule fire again; returns whether it was paused."""
        self._ctx.check_cancelled()
        return await self._client.resume_schedule(queue, name)

    async def unschedule(self, queue: str, name: str) -> bool:
        """Delete a schedule (``ctx.exec.client.schedule`` creates one); returns whether it
        existed."""
        self._ctx.check_cancelled()
        return await self._client.unschedule(queue, name)

    async def get_schedule(self, queue: str, name: str) -> ScheduleInfo | None:
        """A schedule of a queue, or None."""
        return await self._client.get_schedule(queue, name)

    async def childs_init(self, key: str, expected: int, *, ttl_ms: int = 0) -> None:
        """Start a completion counter expecting ``expected`` children."""
        self._ctx.check_cancelled()
        await self._client.childs_init(key, expected, ttl_ms=ttl_ms)

    async def child_ack(self, key: str, child_id: str | None = None) -> int:
        """Count this job (or ``child_id``) as a finished child; returns how many remain.

        The child id defaults to the current job id, so retries of a child count once.
        Returns -1 when the counter does not exist (the OmniQ v1 convention).
        """
        self._ctx.check_cancelled()
        return await self._client.child_ack(key, child_id or self._ctx.job_id)

    async def heartbeat(self) -> int:
        """Extend the current lease now; returns the new ``lock_until_ms``.

        :raises LeaseLost: the lease is gone (the handler should stop).
        """
        self._ctx.check_cancelled()
        ctx = self._ctx
        try:
            lock = await self._client.heartbeat(ctx.queue, ctx.job_id, ctx.lease_token)
        except LeaseLost:
            ctx.lease_lost = True
            if self._on_lost is not None:
                self._on_lost()
            raise
        ctx.lock_until_ms = max(ctx.lock_until_ms, lock)
        return lock

    async def progress(self, value: Any) -> None:
        """Store the current job's progress and emit a ``progress`` event (see
        :meth:`JobContext.progress`). :raises LeaseLost: the lease is gone."""
        self._ctx.check_cancelled()
        ctx = self._ctx
        try:
            await self._client.progress(ctx.queue, ctx.job_id, ctx.lease_token, value)
        except LeaseLost:
            ctx.lease_lost = True
            if self._on_lost is not None:
                self._on_lost()
            raise

    async def wait(
        self, queue: str, job_id: str, *, timeout: float | None = None  # noqa: ASYNC109
    ) -> Any:
        """Wait for another job's result (see :meth:`AsyncOmniq.wait`; the handler holds
        its concurrency slot meanwhile)."""
        self._ctx.check_cancelled()
        return await self._client.wait(queue, job_id, timeout=timeout)

    async def dependency_results(self) -> dict[str, Any]:
        """The results of the current job's completed dependencies, by job id (see
        :meth:`AsyncOmniq.dependency_results`; ``ctx.children_results()``)."""
        self._ctx.check_cancelled()
        return await self._client.dependency_results(self._ctx.queue, self._ctx.job_id)

    async def publish_flow(self, flow: FlowJob) -> FlowNode:
        """Publish a flow (see :meth:`AsyncOmniq.publish_flow`)."""
        self._ctx.check_cancelled()
        return await self._client.publish_flow(flow)

    async def chain(self, *jobs: FlowJob) -> list[str]:
        """Publish jobs that run one after the other (see :meth:`AsyncOmniq.chain`)."""
        self._ctx.check_cancelled()
        return await self._client.chain(*jobs)

    async def group(self, jobs: Sequence[FlowJob]) -> list[FlowNode]:
        """Publish independent jobs (see :meth:`AsyncOmniq.group`)."""
        self._ctx.check_cancelled()
        return await self._client.group(jobs)

    async def retry_failed(self, queue: str, job_id: str) -> None:
        """Move a failed job back to its lane (see :meth:`AsyncOmniq.retry_failed`)."""
        self._ctx.check_cancelled()
        await self._client.retry_failed(queue, job_id)

    async def retry_failed_batch(self, queue: str, job_ids: Sequence[str]) -> list[BatchResult]:
        """Retry up to 100 failed jobs (see :meth:`AsyncOmniq.retry_failed_batch`)."""
        self._ctx.check_cancelled()
        return await self._client.retry_failed_batch(queue, job_ids)

    async def remove_job(self, queue: str, job_id: str, lane: str) -> None:
        """Remove a job from a lane (see :meth:`AsyncOmniq.remove_job`)."""
        self._ctx.check_cancelled()
        await self._client.remove_job(queue, job_id, lane)

    async def remove_jobs_batch(
        self, queue: str, lane: str, job_ids: Sequence[str]
    ) -> list[BatchResult]:
        """Remove up to 100 jobs of a lane (see :meth:`AsyncOmniq.remove_jobs_batch`)."""
        self._ctx.check_cancelled()
        return await self._client.remove_jobs_batch(queue, lane, job_ids)

    async def cancel(self, queue: str, job_id: str) -> CancelResult:
        """Cancel a job (see :meth:`AsyncOmniq.cancel`)."""
        self._ctx.check_cancelled()
        return await self._client.cancel(queue, job_id)

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """A job's stored record (see :meth:`AsyncOmniq.get_job`)."""
        self._ctx.check_cancelled()
        return await self._client.get_job(queue, job_id)

    async def stats(self, queue: str) -> QueueStats:
        """A queue's counts (see :meth:`AsyncOmniq.stats`)."""
        self._ctx.check_cancelled()
        return await self._client.stats(queue)


class CheckCompletion:
    """The older parent/child API (``ctx.check_completion``) for async handlers."""

    __slots__ = ("_exec",)

    def __init__(self, exec_: Exec) -> None:
        self._exec = exec_

    async def init_job_counter(self, key: str, expected: int) -> None:
        """Same as ``childs_init(key, expected)``."""
        await self._exec.childs_init(key, expected)

    async def job_decrement(self, key: str, child_id: str | None = None) -> int:
        """Same as ``child_ack(key)``: returns the remaining count (-1 without counter)."""
        return await self._exec.child_ack(key, child_id)


def _blocking(
    loop: asyncio.AbstractEventLoop, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
) -> T:
    """Run ``fn(*args, **kwargs)`` on ``loop`` from a handler thread and wait for it."""

    async def call() -> T:
        return await fn(*args, **kwargs)

    return _bridge.call(loop, call())


class SyncExec:
    """The blocking twin of :class:`Exec` for plain-function handlers (runs in a thread).

    Build it on the worker's loop: it keeps that loop, where its calls run.
    """

    __slots__ = ("_async", "_loop")

    def __init__(self, async_exec: Exec) -> None:
        self._async = async_exec
        self._loop = asyncio.get_running_loop()

    @property
    def client(self) -> AsyncOmniq:
        """The underlying :class:`~omniq.AsyncOmniq` (its methods are coroutines)."""
        return self._async.client

    @property
    def default_child_id(self) -> str:
        """The child id :meth:`child_ack` uses by default: the current job's id."""
        return self._async.default_child_id

    def publish(self, queue: str, payload: Any, **options: Unpack[PublishOptions]) -> str:
        """Publish a job; returns its id."""
        return _blocking(self._loop, self._async.publish, queue, payload, **options)

    def publish_json(self, queue: str, payload: Any, **options: Unpack[PublishOptions]) -> str:
        """Publish a struct, dataclass or pydantic model; returns its id."""
        return _blocking(self._loop, self._async.publish_json, queue, payload, **options)

    def pause(self, queue: str) -> None:
        """Pause a queue."""
        _blocking(self._loop, self._async.pause, queue)

    def resume(self, queue: str) -> bool:
        """Resume a queue; returns whether it was paused."""
        return _blocking(self._loop, self._async.resume, queue)

    def is_paused(self, queue: str) -> bool:
        """Whether a queue is paused."""
        return _blocking(self._loop, self._async.is_paused, queue)

    def set_rate_limit(
        self, queue: str, max_jobs: int, per_ms: int, *, gid: str | None = None
    ) -> None:
        """Set a queue's (or group's) rate limit, such as after an upstream's HTTP 429."""
        _blocking(self._loop, self._async.set_rate_limit, queue, max_jobs, per_ms, gid=gid)

    def clear_rate_limit(self, queue: str, *, gid: str | None = None) -> bool:
        """Remove a queue's (or group's) rate limit; returns whether there was one."""
        return _blocking(self._loop, self._async.clear_rate_limit, queue, gid=gid)

    def get_rate_limit(self, queue: str, *, gid: str | None = None) -> RateLimit | None:
        """A queue's (or group's) rate limit, or None."""
        return _blocking(self._loop, self._async.get_rate_limit, queue, gid=gid)

    def pause_schedule(self, queue: str, name: str) -> bool:
        """Stop a schedule from firing; returns whether it was running."""
        return _blocking(self._loop, self._async.pause_schedule, queue, name)

    def resume_schedule(self, queue: str, name: str) -> bool:
        """Let a paused schedule fire again; returns whether it was paused."""
        return _blocking(self._loop, self._async.resume_schedule, queue, name)

    def unschedule(self, queue: str, name: str) -> bool:
        """Delete a schedule; returns whether it existed."""
        return _blocking(self._loop, self._async.unschedule, queue, name)

    def get_schedule(self, queue: str, name: str) -> ScheduleInfo | None:
        """A schedule of a queue, or None."""
        return _blocking(self._loop, self._async.get_schedule, queue, name)

    def childs_init(self, key: str, expected: int, *, ttl_ms: int = 0) -> None:
        """Start a completion counter expecting ``expected`` children."""
        _blocking(self._loop, self._async.childs_init, key, expected, ttl_ms=ttl_ms)

    def child_ack(self, key: str, child_id: str | None = None) -> int:
        """Count this job as a finished child; returns how many remain (-1: no counter)."""
        return _blocking(self._loop, self._async.child_ack, key, child_id)

    def heartbeat(self) -> int:
        """Extend the current lease now. :raises LeaseLost: the lease is gone."""
        return _blocking(self._loop, self._async.heartbeat)

    def progress(self, value: Any) -> None:
        """Store the current job's progress and emit a ``progress`` event."""
        _blocking(self._loop, self._async.progress, value)

    def wait(self, queue: str, job_id: str, *, timeout: float | None = None) -> Any:
        """Wait for another job's result."""
        return _blocking(self._loop, self._async.wait, queue, job_id, timeout=timeout)

    def dependency_results(self) -> dict[str, Any]:
        """The results of the current job's completed dependencies, by job id."""
        return _blocking(self._loop, self._async.dependency_results)

    def publish_flow(self, flow: FlowJob) -> FlowNode:
        """Publish a flow."""
        return _blocking(self._loop, self._async.publish_flow, flow)

    def chain(self, *jobs: FlowJob) -> list[str]:
        """Publish jobs that run one after the other."""
        return _blocking(self._loop, self._async.chain, *jobs)

    def group(self, jobs: Sequence[FlowJob]) -> list[FlowNode]:
        """Publish independent jobs."""
        return _blocking(self._loop, self._async.group, jobs)

    def retry_failed(self, queue: str, job_id: str) -> None:
        """Retry a failed job."""
        _blocking(self._loop, self._async.retry_failed, queue, job_id)

    def retry_failed_batch(self, queue: str, job_ids: Sequence[str]) -> list[BatchResult]:
        """Retry up to 100 failed jobs."""
        return _blocking(self._loop, self._async.retry_failed_batch, queue, job_ids)

    def remove_job(self, queue: str, job_id: str, lane: str) -> None:
        """Remove a job from a lane."""
        _blocking(self._loop, self._async.remove_job, queue, job_id, lane)

    def remove_jobs_batch(self, queue: str, lane: str, job_ids: Sequence[str]) -> list[BatchResult]:
        """Remove up to 100 jobs from a lane."""
        return _blocking(self._loop, self._async.remove_jobs_batch, queue, lane, job_ids)

    def cancel(self, queue: str, job_id: str) -> CancelResult:
        """Cancel a job."""
        return _blocking(self._loop, self._async.cancel, queue, job_id)

    def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        """Read a job's record."""
        return _blocking(self._loop, self._async.get_job, queue, job_id)

    def stats(self, queue: str) -> QueueStats:
        """Read a queue's counts."""
        return _blocking(self._loop, self._async.stats, queue)


class SyncCheckCompletion:
    """The older parent/child API (``ctx.check_completion``) for plain-function handlers."""

    __slots__ = ("_exec",)

    def __init__(self, exec_: SyncExec) -> None:
        self._exec = exec_

    def init_job_counter(self, key: str, expected: int) -> None:
        """Same as ``childs_init(key, expected)``."""
        self._exec.childs_init(key, expected)

    def job_decrement(self, key: str, child_id: str | None = None) -> int:
        """Same as ``child_ack(key)``: returns the remaining count (-1 without counter)."""
        return self._exec.child_ack(key, child_id)
