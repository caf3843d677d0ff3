"""The worker: reserve, run handlers, heartbeat and ack, with as few round trips as possible.

Design (one event loop, a fixed number of tasks whatever the number of jobs):

* **dispatcher** -- fills free slots. Acks of finished jobs are sent *fused* with the next
  reservation (``ack_reserve.lua``): one round trip settles every finished job of a queue
  and leases the next ones. Queues are tried in priority order; the partitions of a
  partitioned queue share its priority and are served in turn (one pipelined round trip
  of one ``ack_reserve`` call per partition, the first partition rotating every time).
  When nothing is ready it
  waits for the wake-up signal that the scripts publish on ``{queue}:wake`` (or a bounded
  backoff, for publishers that do not signal, such as the official clients).
* **heartbeat** -- one pipelined ``heartbeat_many`` round trip per tick for all leases that
  are due (each lease every third of its ``timeout_ms``); a lost lease cancels an async
  handler and flags a thread handler; its job is never acked by this worker.
* **maintenance** -- ``promote_delayed`` and ``reap_expired`` for every queue on their own
  jittered timer, even while every slot is busy (fixes D2).
* **schedules** -- a :class:`~omniq.aio.scheduler.Scheduler` fires the due schedules of the
  queues (docs/schedules.md), waking when the next occurrence is due.
* **wake listener** -- a pub/sub subscription to the queues' wake channels.

Handlers: ``async def handler(ctx)`` runs on the loop; ``def handler(ctx)`` runs in a
bounded thread pool, or with ``processes=N`` in a pool of N processes (CPU-bound work; the
handler must be importable and its ctx has no ``exec``). A second parameter annotated
with a type (msgspec Struct, dataclass, ...) receives the payload decoded and validated as
that type; a payload that fails validation fails the job for good (no retry). Raise
:class:`Fail` to fail for good too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import signal
import sys
import threading
import time
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.to_thread
import msgspec
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterPubSub

from omniq._keys import QueueKeys, validate_queue_name
from omniq._protocol.common import check_concurrency, check_non_negative, check_positive
from omniq.aio._connect import open_pubsub
from omniq.aio._processes import ProcessDied, ProcessPool
from omniq.aio._routing import Targets
from omniq.aio.context import CheckCompletion, Exec, JobContext, SyncCheckCompletion, SyncExec
from omniq.aio.scheduler import Scheduler
from omniq.codec import encode_result, failure_text, format_due, truncate_error
from omniq.errors import ConnectionFailed, InvalidArgument, LeaseLost, OmniqError
from omniq.settings import Settings, resolve
from omniq.types import Ack, CancelRequested, Lease, ReservedJob

if TYPE_CHECKING:
    from omniq.aio.client import AsyncOmniq

__all__ = ["Fail", "Worker", "WorkerStats"]

logger = logging.getLogger("omniq")

Handler = Callable[..., Any]

# Cap of the reconnect backoff (dispatcher and wake subscription): after an outage the
# worker is back within about a second of the server, at one attempt per second meanwhile.
_RECONNECT_MAX_S = 1.0
_SUBSCRIBE_WAIT_S = 2.0  # longest a starting worker waits for its wake subscription


class Fail(Exception):
    """Raise from a handler to fail the job for good, without further retries."""


class _Rejected(Fail):
    """The payload failed validation: the text is the complete error."""


class WorkerStats(msgspec.Struct):
    """Counters of one worker run."""

    reserved: int = 0
    completed: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0


class _Failure:
    """A failed attempt waiting for its ack's outcome (retry or failed for good)."""

    __slots__ = ("attempt", "exc", "max_attempts")

    def __init__(self, exc: BaseException | None, attempt: int, max_attempts: int) -> None:
        self.exc = exc
        self.attempt = attempt
        self.max_attempts = max_attempts


class _Running:
    __slots__ = ("ctx", "final", "hb_due", "hb_interval", "interrupted", "job", "lost",
                 "started", "task", "timer")

    def __init__(self, job: ReservedJob, ctx: JobContext) -> None:
        self.job = job
        self.ctx = ctx
        self.lost = False
        self.task: asyncio.Task[None] | None = None
        self.started = time.perf_counter()
        self.hb_interval = max(job.timeout_ms / 3000.0, 0.02)
        self.hb_due = time.monotonic() + self.hb_interval
        # why the worker stopped the attempt ("cancelled", "timed out: ..."), or None
        self.interrupted: str | None = None
        self.final = False  # whether that failure is final (no retry)
        self.timer: asyncio.TimerHandle | None = None  # the run timeout, when one applies


class Worker:
    """Consume one or more queues (listed in priority order) with a handler.

    Use ``await worker.run()`` to run in the current task until stopped (or, with
    ``drain=True``, until nothing is ready and nothing is in flight), or
    ``async with Worker(...)`` / ``start()`` and ``stop()`` to run it in the background,
    for example in a FastAPI lifespan.

    ``run_timeout_ms`` (0: none) stops a handler that runs longer, for jobs published
    without their own ``run_timeout_ms``: the attempt fails with ``timed out`` and retries
    as usual (docs/control.md). With ``processes=N`` a handler process that dies fails only
    its attempt (``worker process died``) and is replaced. ``drain=True`` also waits for the
    retries of the jobs it failed, so every job it touched ends completed or failed.

    ``schedules=True`` (the default) fires the due schedules of its queues
    (docs/schedules.md); ``False`` leaves them to other workers or a
    :class:`~omniq.Scheduler`. Any number of workers fire them together, each occurrence
    once.
    """

    def __init__(
        self,
        client: AsyncOmniq,
        queues: str | Sequence[str],
        handler: Handler,
        *,
        concurrency: int = 1,
        drain: bool = False,
        verbose: bool = False,
        threads: int | None = None,
        processes: int | None = None,
        grace_period_s: float = 30.0,
        run_timeout_ms: int = 0,
        maintenance_interval_s: float = 1.0,
        poll_max_s: float = 0.5,
        handle_signals: bool = False,
        log_fn: Callable[[str], None] | None = None,
        schedules: bool = True,
    ) -> None:
        self.client = client
        self.log_fn = log_fn  # consume(logger=...): the official SDK's line sink
        names = [queues] if isinstance(queues, str) else list(queues)
        if not names:
            raise InvalidArgument("a worker needs at least one queue")
        self.queues = [validate_queue_name(q) for q in names]
        if len(set(self.queues)) != len(self.queues):
            raise InvalidArgument("a queue is listed twice")
        if not callable(handler):
            raise InvalidArgument("handler must be callable")
        concurrency = check_concurrency(concurrency)
        self.handler = handler
        self.concurrency = concurrency
        self.drain = drain
        self.verbose = verbose
        self.grace_period_s = grace_period_s
        self.run_timeout_ms = check_non_negative(run_timeout_ms, "run_timeout_ms")
        self.maintenance_interval_s = maintenance_interval_s
        self.poll_max_s = poll_max_s
        self.handle_signals = handle_signals
        if not isinstance(schedules, bool):
            raise InvalidArgument("schedules must be True or False")
        self.schedules = schedules
        self.stats = WorkerStats()
        self._is_async, self._payload_decoder = _inspect_handler(handler)
        self._limiter = anyio.CapacityLimiter(threads or concurrency)
        if processes is not None:
            processes = check_positive(processes, "processes")
            if self._is_async:
                raise InvalidArgument("processes= needs a plain (def) handler, not async def")
        self.processes = processes
        self._pool: ProcessPool | None = None
        # drain=True: (physical queue, job id) -> due ms of the retries this worker scheduled
        self._retries: dict[tuple[str, str], int] = {}
        # physical queues per priority level: [q] or the partitions [q.p0, ..., q.pN-1];
        # None until read from Redis (at the first reservation)
        self._levels: list[Targets] | None = None
        self._logical: dict[str, str] = {}  # physical queue -> the queue it was listed as
        self._wake_queues: dict[str, str] = {}  # wake channel -> its physical queue
        self._levels_ready = asyncio.Event()
        self._subscribed = asyncio.Event()  # the wake channels' subscription is in place
        self._wake_task: asyncio.Task[None] | None = None
        self._deps_task: asyncio.Task[None] | None = None  # delivering dependency work
        # (physical queue, job id) -> the run: one id may be in several queues
        self._running: dict[tuple[str, str], _Running] = {}
        self._pending: dict[str, list[Ack]] = {}
        # failed attempts whose ack is not settled yet: logged with the outcome
        self._failures: dict[tuple[str, str], _Failure] = {}
        self._signal = asyncio.Event()
        self._hb_signal = asyncio.Event()
        self._hb_wake_at = float("inf")  # when the heartbeat loop wakes up next
        self._hb_timer: asyncio.TimerHandle | None = None
        # rate limits: queue (as listed) -> time.monotonic() until which its queue-wide
        # limit allows no job (no reservation is asked meanwhile; a 'limits' wake-up ends
        # it), and the wait the last _fill asks for (None: no limit in the way)
        self._limited_until: dict[str, float] = {}
        self._limit_wait: float | None = None
        # a reservation stopped at its budget of expired jobs: reserve again at once
        self._look_again = False
        self._stopping = False
        self._hard_stop = False
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(
        cls,
        client: AsyncOmniq,
        handler: Handler,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> Worker:
        """A worker with the worker options of :class:`~omniq.settings.Settings` (None:
        ``Settings.load()``) and keyword ``overrides`` on top (None values ignored). It
        consumes ``settings.queues`` unless ``queues=`` is given; ``handle_signals`` and
        ``log_fn`` pass through to ``Worker``.

        :raises SettingsError: a bad setting; :raises InvalidArgument: no queue.
        """
        extra = {k: overrides.pop(k) for k in ("handle_signals", "log_fn") if k in overrides}
        s = resolve(settings, overrides)
        return cls(client, s.queues, handler, **s.worker_options(), **extra)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Run the worker in a background task."""
        if self._task is not None:
            raise OmniqError("worker already started")
        self._task = asyncio.get_running_loop().create_task(self.run(), name="omniq-worker")

    async def stop(self, grace_period_s: float | None = None) -> None:
        """Stop reserving now; wait for in-flight jobs up to the grace period, then cancel
        them (their leases expire and they run again elsewhere). Finished jobs are acked."""
        self.request_stop(grace_period_s)
        if self._task is not None:
            try:
                await self._task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller was cancelled (a timeout): do not swallow it
        elif self._loop is not None:  # run() was called directly: wait for it to return
            await self._stopped.wait()

    def request_stop(self, grace_period_s: float | None = None) -> None:
        """Ask the worker to stop (non-blocking; safe from signal handlers). A second
        request stops at once."""
        if grace_period_s is not None:
            self.grace_period_s = grace_period_s
        if self._stopping:
            self._hard_stop = True
            for r in list(self._running.values()):
                if r.task is not None:
                    r.task.cancel()
        self._stopping = True
        self._signal.set()

    @property
    def in_flight(self) -> int:
        """Number of jobs being handled now."""
        return len(self._running)

    async def run(self) -> None:
        """Run until stopped (or drained, with ``drain=True``)."""
        self._loop = asyncio.get_running_loop()
        self._wake_task = asyncio.create_task(self._wake_loop(), name="omniq-wake")
        helpers = [
            asyncio.create_task(self._heartbeat_loop(), name="omniq-heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="omniq-maintenance"),
        ]
        if self.schedules and not self.drain:
            scheduler = Scheduler(self.client, self.queues,
                                  interval_s=self.maintenance_interval_s)
            helpers.append(asyncio.create_task(scheduler.run(), name="omniq-scheduler"))
        remove_signals = self._install_signals()
        remove_console = self._verbose_console()
        if self.processes is not None:
            self._pool = ProcessPool(self.processes)
        try:
            await self._dispatch_loop()
            await self._shutdown()
        finally:
            remove_signals()
            remove_console()
            if self._pool is not None:
                self._pool.close()
                self._pool = None
            if self._wake_task is not None:
                helpers.append(self._wake_task)
            for t in helpers:
                t.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            for r in list(self._running.values()):
                if r.task is not None:
                    r.task.cancel()
            self._stopped.set()

    def _verbose_console(self) -> Callable[[], None]:
        """With ``verbose=True`` and no logging configured, print the log to stdout (as the
        official consumers do) for the duration of the run."""
        if self.log_fn is not None:  # consume(logger=...): the lines go to that callable
            return _forward_log(self.log_fn)
        if not self.verbose or logger.hasHandlers():
            return lambda: None
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        return _attach_info_handler(handler)

    def _install_signals(self) -> Callable[[], None]:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # pragma: no cover
                pass

        def remove() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return remove

    def _on_signal(self, sig: int) -> None:
        logger.info("omniq worker: %s received, %s", signal.Signals(sig).name,
                    "stopping now" if self._stopping else "finishing in-flight jobs")
        self.request_stop()

    # -- dispatch ----------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        idle_wait = 0.0
        error_wait = 0.0
        drained_check = False
        while not self._stopping:
            free = self.concurrency - len(self._running)
            self._signal.clear()
            try:
                got, paused = await self._fill(free)
                error_wait = 0.0
            except ConnectionFailed as exc:
                error_wait = min(max(error_wait * 2, 0.1), _RECONNECT_MAX_S)
                logger.warning("omniq worker: %s; retrying in %.1fs", exc, error_wait)
                await self._wait(error_wait)
                continue
            if got or self._look_again:  # (look again: expired jobs were skipped)
                idle_wait = 0.0
                drained_check = False
                # let the handlers just launched take their first step: those that finish
                # in it (quick async handlers) are acked by the next round trip at once,
                # without a wake-up of this loop (one event loop iteration per job less)
                await asyncio.sleep(0)
                continue
            if free > 0 and self._limit_wait is not None:
                # rate-limited: come back when a window allows a job (or on a wake-up, a
                # finished job, a stop; at the latest after poll_max_s, for jobs of other
                # groups or queues published without a wake-up signal), neither spinning
                # nor ending a drain
                await self._wait(min(self._limit_wait, self.poll_max_s))
                continue
            if free > 0 and not self._running and not self._pending_count():
                if self.drain:
                    if self._deps_task is not None and not self._deps_task.done():
                        # a delivery our acks started may release jobs of these queues
                        await asyncio.wait([self._deps_task])
                        continue
                    if not drained_check:
                        # nothing ready: fire due schedules, promote due delayed jobs and
                        # reap, then look again
                        await self._maintenance_once(fire=self.schedules)
                        drained_check = True
                        continue
                    pause = await self._retries_pending()
                    if pause is None:
                        return
                    await self._wait(pause)
                    drained_check = False
                    continue
                idle_wait = min(max(idle_wait * 2, 0.005), self.poll_max_s)
                if paused:
                    idle_wait = max(idle_wait, min(0.25, self.poll_max_s))
                await self._wait(idle_wait)
            elif free > 0:
                # slots free but the queues are empty: wait for a finish or a wake-up
                idle_wait = min(max(idle_wait * 2, 0.005), self.poll_max_s)
                await self._wait(idle_wait)
            else:
                await self._wait(None)

    async def _retries_pending(self) -> float | None:
        """drain=True: how long to wait for the retries this worker scheduled (None: none
        is left). A retry still delayed or waiting is waited for, until its due time and,
        past it, while it is still there (the server's clock decides when it is due); one
        that is gone (another worker took it, someone removed it) is not."""
        if not self._retries:
            return None
        now_ms = time.time() * 1000
        soonest = min(self._retries.values())
        if soonest > now_ms:
            return (soonest - now_ms) / 1000 + 0.002
        for (queue, job_id), due in list(self._retries.items()):
            if due > now_ms:
                continue
            state = await self.client.redis.hget(QueueKeys(queue).job(job_id), "state")
            if state not in (b"delayed", b"wait", "delayed", "wait"):
                del self._retries[queue, job_id]
        return 0.02 if self._retries else None

    async def _wait(self, seconds: float | None) -> None:
        if self._signal.is_set():
            return
        if seconds is None:
            await self._signal.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._signal.wait(), seconds)

    def _pending_count(self) -> int:
        return sum(len(v) for v in self._pending.values())

    async def _resolve_levels(self) -> list[Targets]:
        levels = [await self.client.routing.targets(q) for q in self.queues]
        self._logical = {part: t.queue for t in levels for part in t.parts}
        self._wake_queues = {QueueKeys(part).wake: part for t in levels for part in t.parts}
        self._levels = levels
        self._levels_ready.set()
        return levels

    async def _fill(self, free: int) -> tuple[int, bool]:
        """Send pending acks and reserve up to ``free`` jobs, queues in priority order.

        Per queue: one ``ack_reserve`` call (a partitioned queue: one per partition with
        acks or a share, in one round trip)."""
        levels = self._levels
        if levels is None:
            levels = await self._resolve_levels()
            # no job before the wake subscription: a cancel sent to a running job must not
            # be missed (bounded: without pub/sub the worker still works, by polling)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), _SUBSCRIBE_WAIT_S)
        routing = self.client.routing
        pending = self._pending
        got = 0
        paused = False
        want = 0 if self._stopping else free
        self._limit_wait = None
        self._look_again = False
        for t in levels:
            acks = {part: pending.pop(part) for part in t.parts if part in pending}
            ask = want
            if want > 0 and self._limited_until and self._queue_limited(t.queue):
                ask = 0
            if not acks and ask <= 0:
                continue
            try:
                outcomes, res = await routing.reserve(t, max(ask, 0), acks, 0)
            except ConnectionFailed:
                for part, a in acks.items():  # not sent: they go with the next call
                    pending.setdefault(part, [])[:0] = a
                raise
            for part, a in acks.items():
                for ack, outcome in zip(a, outcomes.get(part, ()), strict=True):
                    self._log_ack(part, ack, outcome)
            if res is None:
                continue
            if res.status == "JOB":
                for job in res.jobs:
                    self._launch(job)
                got += len(res.jobs)
                want -= len(res.jobs)
            elif res.status == "PAUSED":
                paused = True
            elif res.status == "LIMITED":
                self._note_limited(t.queue, res.retry_after_ms, res.limited_by == "queue")
            elif res.more:
                self._look_again = True
        if routing.deps_due and (self._deps_task is None or self._deps_task.done()):
            self._deps_task = asyncio.create_task(self._deliver_dependencies(),
                                                  name="omniq-dependencies")
        return got, paused

    async def _deliver_dependencies(self) -> None:
        """Deliver the dependency work that acks left for other queues (their dependents,
        docs/workflows.md); what fails here is retried by maintenance."""
        routing = self.client.routing
        while routing.deps_due:
            parts = sorted(routing.deps_due)
            routing.deps_due.clear()
            for part in parts:
                try:
                    await self.client.resolve_dependencies(part, repair=False)
                except OmniqError as exc:
                    logger.warning("omniq worker: delivering the dependency work of %s "
                                   "failed (%s); maintenance retries it", part, exc)

    def _queue_limited(self, queue: str) -> bool:
        """Whether the queue-wide rate limit of ``queue`` allows no job yet; if so the wait
        of this ``_fill`` is at most the time left."""
        left = self._limited_until.get(queue, 0.0) - time.monotonic()
        if left <= 0:
            self._limited_until.pop(queue, None)
            return False
        self._limit_wait = left if self._limit_wait is None else min(self._limit_wait, left)
        return True

    def _note_limited(self, queue: str, retry_after_ms: int, whole_queue: bool) -> None:
        """A LIMITED reservation: wait ``retry_after_ms`` (plus a millisecond, so the
        window has moved on when the worker asks again); with ``whole_queue`` the queue is
        not asked again before then."""
        wait = (retry_after_ms + 1) / 1000.0
        if whole_queue:
            self._limited_until[queue] = time.monotonic() + wait
        self._limit_wait = wait if self._limit_wait is None else min(self._limit_wait, wait)

    def _log_ack(self, queue: str, ack: Ack, outcome: Any) -> None:
        """Count and log one settled ack. Failures are logged whatever ``verbose`` says:
        a retry at WARNING, a failure for good at ERROR, with the traceback."""
        failure = None if ack.ok else self._failures.pop((ack.job_id, ack.lease_token), None)
        exc_info = failure.exc if failure is not None else None
        if isinstance(outcome, OmniqError):
            self.stats.lost += 1
            logger.warning("omniq: ack of %s/%s refused: %s", queue, ack.job_id, outcome,
                           exc_info=exc_info)
            return
        if outcome is None:
            self.stats.completed += 1
            if self.verbose:
                logger.info("omniq: completed %s/%s", queue, ack.job_id)
            return
        error = str(ack.text).split("\n", 1)[0]
        attempt = "" if failure is None else f" (attempt {failure.attempt}/{failure.max_attempts})"
        if outcome.status == "RETRY":
            self.stats.retried += 1
            if self.drain and outcome.due_ms is not None:
                self._retries[queue, ack.job_id] = outcome.due_ms
            due = "later" if outcome.due_ms is None else format_due(outcome.due_ms)
            logger.warning("omniq: %s/%s failed%s, will retry %s: %s", queue, ack.job_id,
                           attempt, due, error, exc_info=exc_info)
        else:
            self.stats.failed += 1
            logger.error("omniq: %s/%s failed for good%s: %s", queue, ack.job_id, attempt,
                         error, exc_info=exc_info)

    def _launch(self, job: ReservedJob) -> None:
        ctx = JobContext(job, self._logical.get(job.queue))
        run = _Running(job, ctx)
        aexec = Exec(self.client, ctx, on_lost=lambda: self._lose(run, cancel=False))
        if self._is_async:
            ctx.exec = aexec
            ctx.check_completion = CheckCompletion(aexec)
        else:
            sexec = SyncExec(aexec)
            ctx.exec = sexec
            ctx.check_completion = SyncCheckCompletion(sexec)
        key = (job.queue, job.job_id)
        old = self._running.get(key)
        if old is not None:  # reserved again: the lease of the earlier run is gone
            self._lose(old)
        self._running[key] = run
        self.stats.reserved += 1
        if self.verbose:
            logger.info("omniq: reserved %s/%s attempt %d/%d", job.queue, job.job_id,
                        job.attempt, job.max_attempts)
        loop = asyncio.get_running_loop()
        run.task = loop.create_task(self._execute(run))
        if self._retries:
            self._retries.pop((job.queue, job.job_id), None)
        # (a process handler's clock starts when it has a process)
        if self._pool is None and (job.run_timeout_ms or self.run_timeout_ms):
            self._arm_run_timeout(run)
        if run.hb_due < self._hb_wake_at:  # only when it must wake earlier than planned
            self._wake_heartbeats_at(run.hb_due)

    async def _execute(self, run: _Running) -> None:
        ctx = run.ctx
        ack: Ack | None = None
        try:
            if self._payload_decoder is not None:
                try:
                    typed = self._payload_decoder.decode(ctx.payload_raw)
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    raise _Rejected(f"InvalidPayload: {exc}") from exc
                args: tuple[Any, ...] = (ctx, typed)
            else:
                args = (ctx,)
            if self._is_async:
                value = await self.handler(*args)
            elif self._pool is not None:
                # CPU-bound handler in a process: it gets a copy of ctx without exec; a
                # lost lease is only flagged here, a cancel or run timeout kills the process
                remote = JobContext(run.job, ctx.logical_queue)
                remote._payload = ctx.payload

                def share_flag(flag: Any) -> None:
                    ctx._cancel_flag = flag  # ctx.cancelled sets it for the process too
                    self._arm_run_timeout(run)

                value = await self._pool.run(self.handler, (remote, *args[1:]), share_flag)
            else:
                value = await anyio.to_thread.run_sync(
                    _call, self.handler, args, limiter=self._limiter, abandon_on_cancel=True
                )
            ack = self._success(run, value) if run.interrupted is None else None
        except asyncio.CancelledError:
            ack = None  # lease lost or hard stop: leave the lease to expire
        except ProcessDied as exc:  # the process was replaced; the attempt fails as any
            ack = self._failed(ctx, exc, truncate_error(str(exc)), final=False)
        except _Rejected as exc:  # the text is the whole story: no traceback
            ack = self._failed(ctx, None, truncate_error(str(exc)), final=True)
        except Fail as exc:
            ack = self._failed(ctx, exc, failure_text(exc), final=True)
        except Exception as exc:
            ack = self._failed(ctx, exc, failure_text(exc), final=False)
        finally:
            if run.timer is not None:
                run.timer.cancel()
            key = (ctx.queue, ctx.job_id)
            if self._running.get(key) is run:  # not a newer lease of the same job
                del self._running[key]
            if self.verbose:
                logger.info("omniq: %s/%s handled in %.1f ms", ctx.queue, ctx.job_id,
                            (time.perf_counter() - run.started) * 1000)
        if run.interrupted is not None:  # stopped by the worker: fails with the reason
            ack = self._failed(ctx, None, run.interrupted, final=run.final)
        if ack is not None and not ctx.lease_lost:
            self._pending.setdefault(ctx.queue, []).append(ack)
        self._signal.set()

    def _arm_run_timeout(self, run: _Running) -> None:
        limit_ms = run.job.run_timeout_ms or self.run_timeout_ms
        if limit_ms > 0:
            run.timer = asyncio.get_running_loop().call_later(
                limit_ms / 1000, self._time_out, run, limit_ms)

    def _time_out(self, run: _Running, limit_ms: int) -> None:
        logger.warning("omniq: %s/%s ran past its run timeout (%d ms): stopping it",
                       run.job.queue, run.job.job_id, limit_ms)
        self._interrupt(run, f"timed out: ran longer than {limit_ms} ms", final=False)

    def _interrupt(self, run: _Running, reason: str, *, final: bool) -> None:
        """Stop one attempt now and fail it with ``reason`` (``final``: no retry; the
        scripts also make any failure of a job with a cancel request final).

        ``ctx.cancelled`` turns True (for a process handler through its slot's shared
        flag). An async handler's task is cancelled; a thread handler is abandoned (its
        thread runs on unobserved, its result is ignored, its slot is free at once); a
        process handler's process is killed and replaced. The failed ack goes with the
        worker's next round trip.
        """
        if run.interrupted is not None or run.lost or run.task is None or run.task.done():
            return
        run.interrupted = reason
        run.final = final
        ctx = run.ctx
        if reason == "cancelled":
            logger.warning("omniq: %s/%s cancelled: stopping it", ctx.queue, ctx.job_id)
        ctx._cancelled = True
        if ctx._cancel_flag is not None:
            ctx._cancel_flag.value = 1
        run.task.cancel()

    def _failed(
        self, ctx: JobContext, exc: BaseException | None, text: str, *, final: bool
    ) -> Ack:
        """The ack of a failed attempt; the exception is kept to be logged with the
        outcome (the stored ``last_error`` has its first line and traceback)."""
        if not ctx.lease_lost:
            self._failures[(ctx.job_id, ctx.lease_token)] = _Failure(
                exc, ctx.attempt, ctx.max_attempts)
        else:
            logger.warning("omniq: %s/%s raised after its lease was lost (not acked): %s",
                           ctx.queue, ctx.job_id, text.split("\n", 1)[0], exc_info=exc)
        return Ack(ctx.job_id, ctx.lease_token, False, text, final=final)

    def _success(self, run: _Running, value: Any) -> Ack:
        ctx = run.ctx
        if value is None:
            return Ack(ctx.job_id, ctx.lease_token, True, "")
        try:
            data = encode_result(value, self.client.max_payload_bytes)
        except OmniqError as exc:
            # the work is done but its result cannot be stored: fail visibly, no retry
            return self._failed(ctx, exc, _error_text(exc), final=True)
        return Ack(ctx.job_id, ctx.lease_token, True, data)

    def _lose(self, run: _Running, *, cancel: bool = True) -> None:
        if not run.lost:  # counted and logged once, however it was found out
            run.lost = True
            run.ctx.lease_lost = True
            self.stats.lost += 1
            logger.warning("omniq: lease lost for %s/%s; it will not be acked here",
                           run.job.queue, run.job.job_id)
        if cancel and self._is_async and run.task is not None:
            run.task.cancel()

    def _on_cancel_message(self, channel: Any, data: Any) -> None:
        """A ``cancel:<job_id>`` message on a queue's wake channel (cancel.lua)."""
        text = data.decode() if isinstance(data, bytes) else str(data)
        if not text.startswith("cancel:"):
            return
        ch = channel.decode() if isinstance(channel, bytes) else str(channel)
        queue = self._wake_queues.get(ch)
        run = None if queue is None else self._running.get((queue, text[7:]))
        if run is not None:
            self._interrupt(run, "cancelled", final=True)

    async def _shutdown(self) -> None:
        deadline = time.monotonic() + self.grace_period_s
        while self._running and not self._hard_stop:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._signal.clear()
            if self._pending_count():
                # ack finished jobs now: nothing heartbeats them while the others finish
                try:
                    await self._fill(0)
                except ConnectionFailed as exc:
                    logger.warning("omniq worker: acks not sent yet (%s)", exc)
            await self._wait(remaining)
        for r in list(self._running.values()):
            if r.task is not None:
                r.task.cancel()
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
        # acks of jobs that did finish are always sent
        for attempt in range(5):
            if not self._pending_count():
                break
            try:
                await self._fill(0)
            except ConnectionFailed as exc:
                logger.warning("omniq worker: acks not sent yet (%s)", exc)
                await asyncio.sleep(min(0.2 * 2**attempt, 2.0))
        if self._deps_task is not None:  # and the dependency work they left
            await asyncio.wait([self._deps_task], timeout=5.0)

    # -- heartbeats --------------------------------------------------------------------

    def _wake_heartbeats_at(self, due: float) -> None:
        """Wake the heartbeat loop at ``due`` (monotonic) by a timer, not at once: jobs that
        finish before their first heartbeat (most) then never wake it."""
        self._hb_wake_at = due
        if self._hb_timer is not None:
            self._hb_timer.cancel()
        self._hb_timer = asyncio.get_running_loop().call_later(
            max(due - time.monotonic(), 0.0), self._hb_signal.set
        )

    async def _heartbeat_loop(self) -> None:
        try:
            await self._heartbeats()
        finally:
            if self._hb_timer is not None:
                self._hb_timer.cancel()

    async def _heartbeats(self) -> None:
        while True:
            # a lost lease is not heartbeated any more (its handler may still be running)
            live = [r for r in self._running.values() if not r.ctx.lease_lost]
            if not live:
                self._hb_signal.clear()
                self._hb_wake_at = float("inf")
                await self._hb_signal.wait()
                continue
            now = time.monotonic()
            next_due = min(r.hb_due for r in live)
            if next_due > now:
                self._hb_signal.clear()
                self._wake_heartbeats_at(next_due)
                await self._hb_signal.wait()
                continue
            self._hb_wake_at = now
            # send every lease due within half of the shortest interval: fewer ticks
            slack = min(r.hb_interval for r in live) / 2
            due = [r for r in live if r.hb_due <= now + slack]
            for r in due:
                r.hb_due = now + r.hb_interval
            leases = [Lease(r.job.queue, r.job.job_id, r.job.lease_token) for r in due]
            try:
                results = await self.client.heartbeat_many(leases)
            except (ConnectionFailed, OmniqError) as exc:
                logger.warning("omniq: heartbeat failed (%s); retrying", exc)
                for r in due:
                    r.hb_due = now + min(r.hb_interval, 0.5)
                await asyncio.sleep(0.1)
                continue
            for r, result in zip(due, results, strict=True):
                if isinstance(result, CancelRequested):
                    r.ctx.lock_until_ms = int(result)
                    if self._running.get((r.job.queue, r.job.job_id)) is r:
                        self._interrupt(r, "cancelled", final=True)
                elif isinstance(result, int):
                    r.ctx.lock_until_ms = result
                elif isinstance(result, LeaseLost):
                    if self._running.get((r.job.queue, r.job.job_id)) is r:
                        self._lose(r)
                else:
                    logger.warning("omniq: heartbeat of %s refused: %s", r.job.job_id, result)

    # -- maintenance -------------------------------------------------------------------

    async def _maintenance_loop(self) -> None:
        while True:
            await asyncio.sleep(self.maintenance_interval_s * random.uniform(0.8, 1.2))
            try:
                await self._maintenance_once()
                await self._check_layouts()
            except OmniqError as exc:
                logger.warning("omniq: maintenance failed (%s)", exc)

    async def _check_layouts(self) -> None:
        """Pick up a queue partitioned after this worker started (layouts never change
        once set, so only unpartitioned queues are read again)."""
        levels = self._levels
        if levels is None:
            return
        changed = False
        for t in levels:
            if not t.partitioned and await self.client.routing.read_layout(t.queue):
                changed = True
        if changed:
            await self._resolve_levels()
            if self._wake_task is not None:  # subscribe to the partitions' channels
                self._wake_task.cancel()
                self._wake_task = asyncio.create_task(self._wake_loop(), name="omniq-wake")
            self._signal.set()

    async def _maintenance_once(self, *, fire: bool = False) -> None:
        for queue in self.queues:
            if fire:  # (a drain's last look; a running worker has its Scheduler)
                await self.client.fire_schedules(queue)
            await self.client.promote_delayed(queue)
            await self.client.reap_expired(queue)
            await self.client.resolve_dependencies(queue)

    # -- wake-up -----------------------------------------------------------------------

    def _catch_up_cancels(self) -> None:
        """The wake subscription is in place again (after a lost connection, a new
        partition layout): heartbeat the jobs running now. A cancel message published in
        between reached no one; the heartbeat answers CANCEL for it, so it is seen now
        rather than one heartbeat interval later."""
        if not self._running:
            return
        now = time.monotonic()
        for r in self._running.values():
            r.hb_due = min(r.hb_due, now)
        self._wake_heartbeats_at(now)

    async def _wake_loop(self) -> None:
        await self._levels_ready.wait()
        assert self._levels is not None
        channels = [QueueKeys(q).wake for t in self._levels for q in t.parts]
        backoff = 0.1
        while True:
            pubsub: PubSub | ClusterPubSub | None = None
            try:
                pubsub = await open_pubsub(self.client.redis, confirmations=True)
                await pubsub.subscribe(*channels)
                backoff = 0.1
                self._signal.set()  # look again: something may have arrived meanwhile
                confirmed = 0
                while True:
                    msg = await pubsub.get_message(timeout=None)
                    if msg is not None:
                        if msg.get("type") == "subscribe":
                            confirmed += 1
                            if confirmed == len(channels):
                                if self._subscribed.is_set():  # subscribed again
                                    self._catch_up_cancels()
                                self._subscribed.set()
                        elif msg.get("data") in ("limits", b"limits"):
                            self._limited_until.clear()  # a rate limit changed
                        elif msg.get("type") == "message" and msg.get("data") not in (b"1", "1"):
                            self._on_cancel_message(msg.get("channel"), msg.get("data"))
                        self._signal.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection trouble: resubscribe with backoff
                logger.debug("omniq: wake subscription lost (%s)", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _RECONNECT_MAX_S)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # (typed from redis 8.2)


def _call(fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    return fn(*args)


def _error_text(exc: BaseException) -> str:
    return truncate_error(f"{type(exc).__name__}: {exc}")


def _inspect_handler(handler: Handler) -> tuple[bool, msgspec.json.Decoder[Any] | None]:
    """Is the handler async, and does it want a typed payload as second argument?"""
    target = handler
    call = getattr(handler, "__call__", None)  # noqa: B004
    is_async = inspect.iscoroutinefunction(handler) or (
        not inspect.isfunction(handler) and not inspect.ismethod(handler)
        and inspect.iscoroutinefunction(call)
    )
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return is_async, None
    params = [
        p for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) < 2:
        return is_async, None
    try:
        hints = typing.get_type_hints(target)
    except Exception:
        hints = {}
    annotation = hints.get(params[1].name, params[1].annotation)
    if annotation is inspect.Parameter.empty or annotation is Any:
        return is_async, msgspec.json.Decoder()
    try:
        return is_async, msgspec.json.Decoder(annotation)
    except TypeError as exc:
        raise InvalidArgument(f"cannot decode payloads as {annotation!r}: {exc}") from exc


def _forward_log(fn: Callable[[str], None]) -> Callable[[], None]:
    """Send the ``omniq`` logger's INFO+ lines to ``fn`` until the returned remover runs
    (``consume(logger=...)``; a failing ``fn`` is ignored, as in the official loop)."""

    class _Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            with contextlib.suppress(Exception):
                fn(record.getMessage())

    return _attach_info_handler(_Forward(logging.INFO))


def _attach_info_handler(handler: logging.Handler) -> Callable[[], None]:
    """Add ``handler`` to the ``omniq`` logger with INFO lines enabled; returns the function
    that removes it and restores the logger's level."""
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)

    def remove() -> None:
        logger.removeHandler(handler)
        logger.setLevel(level)

    return remove
