"""Result and option types of the public API (msgspec Structs and named tuples)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, TypedDict

import msgspec

from omniq.codec import decode_payload

__all__ = [
    "Backoff",
    "DedupMode",
    "DependencyPolicy",
    "DependencyRef",
    "FlowJob",
    "FlowNode",
    "GroupOrder",
    "OnFailure",
    "Ack",
    "BatchResult",
    "CancelResult",
    "CancelRequested",
    "FailOutcome",
    "FireResult",
    "FlowInfo",
    "GroupState",
    "JobEvent",
    "JobInfo",
    "JobPage",
    "JobSpec",
    "Lease",
    "PublishOptions",
    "QueueStats",
    "RateLimit",
    "ReserveResult",
    "ReservedJob",
    "Misfire",
    "ScheduleInfo",
]


DedupMode = Literal["keep", "replace"]
"""``publish(dedup=)``: keep the existing job as it is, or replace the payload of one still
waiting (debounce)."""
Backoff = Literal["fixed", "exp"]
"""``publish(backoff=)``: the same ``backoff_ms`` before every retry, or doubling from it."""
GroupOrder = Literal["fifo", "strict"]
"""``publish(group_order=)``: v1 order (a retry re-enters its group at the tail), or a
failed attempt keeps the head of its group."""
OnFailure = Literal["release", "block"]
"""``publish(on_failure=)`` of a strict group: a job that fails for good frees its group, or
holds it until it is retried or removed."""

Misfire = Literal["once", "skip", "all"]
DependencyPolicy = Literal["fail", "ignore", "wait"]
"""What a job does when one of its dependencies fails (docs/workflows.md): ``fail`` (it
fails too, naming the dependency), ``ignore`` (it runs anyway) or ``wait`` (it waits until
that job is retried and completes)."""
DependencyRef = str | tuple[str, str]
"""A dependency: a job id of the same queue, or ``(queue, job_id)``."""
"""``schedule(misfire=)``: what a fire does with the occurrences that came due while no
worker fired them (docs/schedules.md): publish the latest, none, or all (up to 100)."""


CancelResult = Literal["cancelled", "cancelling", "finished", "not_found"]
"""``cancel()``: ``cancelled`` (it was waiting or delayed: it never runs and is now failed
with error ``cancelled``), ``cancelling`` (it is running: its worker stops it and fails it),
``finished`` (it had completed or failed already) or ``not_found`` (no such job)."""


class CancelRequested(int):
    """A ``heartbeat_many`` result: the lease was extended to this ``lock_until_ms`` (it is
    that int), and the job's cancel was requested: stop its handler and fail it."""

    __slots__ = ()


class ReservedJob(msgspec.Struct, frozen=True, gc=False):
    """A job leased by ``reserve``: hold ``lease_token`` to heartbeat and ack it."""

    queue: str
    job_id: str
    payload_raw: str
    lock_until_ms: int
    attempt: int
    max_attempts: int
    gid: str
    lease_token: str
    timeout_ms: int
    run_timeout_ms: int = 0
    """The job's execution time limit (``publish(run_timeout_ms=)``), 0 when it has none."""
    schedule: str = ""
    """The name of the schedule that published the job ('' when none did)."""
    occurrence_ms: int = 0
    """The schedule's occurrence the job is for (epoch ms), 0 when no schedule published it."""

    @property
    def payload(self) -> Any:
        """The decoded payload (the raw text when it is not valid JSON)."""
        return decode_payload(self.payload_raw)

    @property
    def status(self) -> Literal["JOB"]:
        """``"JOB"``, as the official SDK's ``ReserveJob.status``."""
        return "JOB"


class ReserveResult(NamedTuple):
    """Outcome of ``reserve_many``: ``status`` is ``"JOB"``, ``"EMPTY"``, ``"PAUSED"`` or
    ``"LIMITED"``: nothing was leased because of rate limits; ``retry_after_ms`` says when
    a window allows a job again, and ``limited_by`` whether the queue-wide limit
    (``"queue"``: no job of the queue can run before then) or parked groups (``"group"``:
    other groups' new jobs can) stopped it. ``more``: see below."""

    status: Literal["JOB", "EMPTY", "PAUSED", "LIMITED"]
    jobs: list[ReservedJob]
    retry_after_ms: int = 0
    limited_by: Literal["", "queue", "group"] = ""
    more: bool = False
    """``EMPTY`` only: the call failed as many expired jobs as one call may (docs/control.md,
    "Expiry") before it found a job, so more may wait behind them: reserve again now."""


class RateLimit(msgspec.Struct, frozen=True, kw_only=True):
    """A rate limit: at most ``max_jobs`` reservations in any ``per_ms`` window (sliding),
    of the whole queue (``gid`` None) or of one group. ``in_window``: the reservations its
    window holds now."""

    max_jobs: int
    per_ms: int
    gid: str | None = None
    in_window: int = 0


class ScheduleInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule of a queue (``schedules``, ``get_schedule``; docs/schedules.md). Times
    are epoch milliseconds on the server's clock.

    The definition: ``cron`` (with ``tz``) or ``every_ms``, ``start_ms`` / ``end_ms``, the
    misfire policy, ``jitter_ms``, the payload and ``options``, the publish options of its
    jobs by their publish keyword names (``max_attempts``, ``timeout_ms`` and ``backoff_ms``
    always, the others when they differ from the defaults). The state:
    ``next_fire_ms`` (None while paused or once the pattern has no occurrence left),
    ``last_fire_ms`` (the latest occurrence fired: its job published, or held off by its
    dedup key), ``fired_ms`` (when that fire ran), ``last_job_id`` (the last job it
    published), ``fires`` (jobs published),
    ``misfired_ms`` (the latest occurrence the misfire policy skipped), ``rev`` (bumped by
    every change of the definition). ``queue`` is the physical queue that holds it (a
    partition of a partitioned queue), ``logical_queue`` the name it was read under.
    """

    queue: str
    logical_queue: str
    name: str
    cron: str | None
    every_ms: int | None
    tz: str
    start_ms: int | None
    end_ms: int | None
    misfire: str
    misfire_grace_ms: int
    jitter_ms: int
    payload_raw: str
    options: dict[str, Any]
    paused: bool
    next_fire_ms: int | None
    last_fire_ms: int | None
    last_job_id: str | None
    fired_ms: int | None
    fires: int
    misfired_ms: int | None
    created_ms: int | None
    updated_ms: int | None
    rev: int

    @property
    def payload(self) -> Any:
        """The decoded payload of its jobs."""
        return decode_payload(self.payload_raw)

    @property
    def ended(self) -> bool:
        """Whether the pattern has no occurrence left (``end_ms`` passed)."""
        return not self.paused and self.next_fire_ms is None


class FireResult(NamedTuple):
    """Outcome of ``fire_schedules``: ``published`` jobs, and ``next_in_ms``, how long until
    the next schedule of the queue is due by the server's clock (0: more are due now;
    None: none is scheduled)."""

    published: int
    next_in_ms: int | None


class FailOutcome(NamedTuple):
    """Outcome of ``ack_fail``: ``"RETRY"`` with the due time, or ``"FAILED"`` for good."""

    status: Literal["RETRY", "FAILED"]
    due_ms: int | None


class BatchResult(NamedTuple):
    """Per-job result of a batch admin operation: status ``"OK"`` or ``"ERR"`` with a reason."""

    job_id: str
    status: str
    reason: str | None


class Lease(NamedTuple):
    """A held lease, as passed to ``heartbeat_many``."""

    queue: str
    job_id: str
    lease_token: str


class Ack(NamedTuple):
    """A settled lease for ``ack_reserve``.

    ``ok`` True completes the job (``text`` = encoded result or empty); False fails it with
    ``text`` as the error, retried unless ``final`` is True.
    """

    job_id: str
    lease_token: str
    ok: bool
    text: str | bytes = ""
    final: bool = False


class PublishOptions(TypedDict, total=False):
    """The keyword options of ``publish`` (for ``**options`` of its wrappers, such as
    ``ctx.exec.publish``); see :meth:`omniq.AsyncOmniq.publish` for their meaning."""

    job_id: str | None
    max_attempts: int
    timeout_ms: int
    backoff_ms: int
    due_ms: int
    delay_ms: int
    gid: str | None
    group_limit: int
    keep_completed_ms: int | None
    keep_failed_ms: int | None
    dedup_key: str | None
    dedup_ttl_ms: int
    dedup: DedupMode
    expires_ms: int
    expire_in_ms: int
    run_timeout_ms: int
    backoff: Backoff
    backoff_max_ms: int
    backoff_jitter: bool
    group_order: GroupOrder
    on_failure: OnFailure
    depends_on: Sequence[DependencyRef] | None
    on_dependency_failure: DependencyPolicy
    now_ms: int
    now_ms_override: int


class JobSpec(msgspec.Struct, kw_only=True):
    """One job of ``publish_many``; unset options take the call's defaults."""

    payload: Any
    job_id: str | None = None
    gid: str | None = None
    group_limit: int | None = None
    max_attempts: int | None = None
    timeout_ms: int | None = None
    backoff_ms: int | None = None
    due_ms: int | None = None
    delay_ms: int | None = None
    keep_completed_ms: int | None = None
    keep_failed_ms: int | None = None
    dedup_key: str | None = None
    dedup_ttl_ms: int | None = None
    dedup: DedupMode | None = None
    expires_ms: int | None = None
    expire_in_ms: int | None = None
    run_timeout_ms: int | None = None
    backoff: Backoff | None = None
    backoff_max_ms: int | None = None
    backoff_jitter: bool | None = None
    group_order: GroupOrder | None = None
    on_failure: OnFailure | None = None
    depends_on: list[DependencyRef] | None = None
    """Jobs this one waits for (docs/workflows.md); a job id of the same queue, or
    ``(queue, job_id)``. In a batch, a job may depend on an earlier job of the batch."""
    on_dependency_failure: DependencyPolicy | None = None


class FlowJob(msgspec.Struct, kw_only=True):
    """One job of a flow (``publish_flow``): it runs once all its ``children`` have
    completed (on any queues; nested to any depth) and reads their results with
    ``ctx.children_results()``. The other fields are the options of ``publish``."""

    queue: str
    payload: Any
    children: list[FlowJob] = msgspec.field(default_factory=list)
    job_id: str | None = None
    on_dependency_failure: DependencyPolicy = "fail"
    gid: str | None = None
    group_limit: int | None = None
    max_attempts: int | None = None
    timeout_ms: int | None = None
    backoff_ms: int | None = None
    delay_ms: int | None = None
    keep_completed_ms: int | None = None
    keep_failed_ms: int | None = None
    expire_in_ms: int | None = None
    run_timeout_ms: int | None = None
    backoff: Backoff | None = None
    backoff_max_ms: int | None = None
    backoff_jitter: bool | None = None


class FlowNode(msgspec.Struct, frozen=True, kw_only=True):
    """A published flow job (``publish_flow``): its physical queue, its id and those of
    its children, in the order given."""

    queue: str
    job_id: str
    children: list[FlowNode] = msgspec.field(default_factory=list)


class JobEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One lifecycle event of a queue (``AsyncOmniq.events``; docs/events.md).

    ``id`` is the stream entry id (``"<ms>-<seq>"``, pass it as ``since`` to resume after
    this event), ``queue`` the physical queue that wrote it (a partition of a partitioned
    queue) and ``logical_queue`` the name it was read under. ``job_id`` is ``""`` for the
    queue events ``paused`` and ``resumed``. ``ms`` is the server time of the transition.
    ``attempt`` is set on reserved, progress, completed, failed, retry_scheduled and
    lease_expired; ``due_ms`` on delayed and retry_scheduled; ``error`` on failed,
    retry_scheduled and lease_expired; ``lane`` on removed; ``progress_raw`` (JSON text)
    on progress; ``state`` (the state the job was in) on cancelled and expired.
    Schedules (docs/schedules.md): ``fired`` (a schedule published the job ``job_id``)
    has ``schedule`` and ``occurrence_ms``; ``misfired`` (``job_id`` ``""``: the misfire
    policy skipped occurrences) has ``schedule`` and the skipped range, ``skipped_from_ms``
    to ``occurrence_ms``. Dependencies (docs/workflows.md): ``waiting_deps`` (the job was
    published waiting for its dependencies; ``enqueued`` or ``delayed`` follows when they
    have completed) and ``dependency_failed`` (a dependency of a job with
    ``on_dependency_failure="wait"`` failed: ``dependency`` names it, ``"<queue>:<id>"``).
    """

    id: str
    queue: str
    logical_queue: str
    type: str
    job_id: str
    ms: int
    gid: str | None = None
    attempt: int | None = None
    due_ms: int | None = None
    error: str | None = None
    lane: str | None = None
    progress_raw: str | None = None
    state: str | None = None
    schedule: str | None = None
    occurrence_ms: int | None = None
    skipped_from_ms: int | None = None
    dependency: str | None = None

    @property
    def progress(self) -> Any:
        """The decoded progress value (None unless this is a progress event)."""
        return None if self.progress_raw is None else decode_payload(self.progress_raw)


class JobInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The stored record of one job (``get_job``). Times are epoch milliseconds or None.

    The job-control fields (``dedup_key`` to ``on_failure``) are what the job was published
    with (None or False when it was not); ``cancel_requested_ms`` is set while a cancel of the
    running job is waiting for its worker (docs/control.md).
    """

    queue: str
    job_id: str
    state: str
    payload_raw: str
    gid: str | None
    attempt: int
    max_attempts: int
    timeout_ms: int
    backoff_ms: int
    created_ms: int | None
    updated_ms: int | None
    queued_ms: int | None
    first_started_ms: int | None
    last_started_ms: int | None
    completed_ms: int | None
    failed_ms: int | None
    due_ms: int | None
    lock_until_ms: int | None
    lease_token: str | None
    last_error: str | None
    last_error_ms: int | None
    result_raw: str | None
    fields: dict[str, str]
    progress_raw: str | None = None
    progress_ms: int | None = None
    keep_completed_ms: int | None = None
    keep_failed_ms: int | None = None
    expire_ms: int | None = None
    dedup_key: str | None = None
    dedup_ttl_ms: int | None = None
    expires_ms: int | None = None
    run_timeout_ms: int | None = None
    backoff: str | None = None
    backoff_max_ms: int | None = None
    backoff_jitter: bool = False
    group_order: str | None = None
    on_failure: str | None = None
    cancel_requested_ms: int | None = None
    schedule: str | None = None
    """The schedule that published the job (docs/schedules.md), None when none did."""
    occurrence_ms: int | None = None
    """The occurrence of ``schedule`` the job is for (epoch ms)."""
    depends_on: list[tuple[str, str]] = msgspec.field(default_factory=list)
    """The jobs this one depends on, as ``(physical queue, job id)``, in the order they were
    given (empty for a job without dependencies)."""
    dependencies: dict[str, str] = msgspec.field(default_factory=dict)
    """The state of each dependency as this job records it, by ref ``"<queue>:<id>"``:
    ``pending`` (not resolved yet), ``completed``, ``failed`` (this job failed because of
    it, or waits for its retry with the policy ``wait``), ``gone`` (it was removed: this
    job failed) or ``ignored`` (it failed or went away and the policy is ``ignore``)."""
    deps_left: int | None = None
    """How many dependencies are still unresolved (None for a job without dependencies);
    the job leaves ``waiting_deps`` when it reaches 0."""
    dep_policy: str = "fail"
    """What a failed or removed dependency does to this job (``on_dependency_failure``):
    ``fail``, ``ignore`` or ``wait``."""
    dependents: list[tuple[str, str]] = msgspec.field(default_factory=list)
    """The jobs waiting on this one, as ``(physical queue, job id)``, sorted (read by
    ``get_job`` only: empty in the pages of ``jobs``)."""
    dependency_results_raw: dict[str, str] = msgspec.field(default_factory=dict)
    """The results of completed dependencies (JSON text) by ref ``"<queue>:<id>"``, copied
    when each one completed, so they outlive the dependency's own record (only non-empty
    results)."""

    @property
    def payload(self) -> Any:
        """The decoded payload (the raw text when it is not valid JSON)."""
        return decode_payload(self.payload_raw)

    @property
    def last_error_line(self) -> str | None:
        """The first line of ``last_error`` (``"Type: message"``); the rest, when there is
        any, is the traceback of the failed attempt."""
        return None if self.last_error is None else self.last_error.split("\n", 1)[0]

    @property
    def progress(self) -> Any:
        """The latest value the handler reported with ``ctx.progress``, or None."""
        return None if self.progress_raw is None else decode_payload(self.progress_raw)

    @property
    def result(self) -> Any:
        """The decoded handler result, or None."""
        return None if self.result_raw is None else decode_payload(self.result_raw)

    @property
    def id_time_ms(self) -> int | None:
        """The creation time encoded in the job id (epoch ms), None when the id is not a
        ULID (ids given by the publisher); see :func:`omniq.ids.id_time_ms`."""
        from omniq.ids import id_time_ms

        return id_time_ms(self.job_id)


class FlowInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A job and, recursively, the jobs it depends on (``get_flow``): the tree of a flow
    read from its parent down.

    ``queue`` is the physical queue that holds the job (a partition of a partitioned
    queue), ``state`` its state, or ``"missing"`` when its record is gone (removed or
    trimmed). ``dependency_state`` is the state the parent records for it
    (``JobInfo.dependencies``: ``pending``, ``completed``, ``failed``, ``gone`` or
    ``ignored``; None at the root). ``children`` are the job's dependencies in the order
    it was given them.

    A job reached twice (a dependency shared by several jobs, or a cycle) has its
    dependencies listed once, at its first place in depth-first order; at its other
    places, and where ``max_nodes`` cut the tree short, ``truncated`` is True: the job
    has dependencies that ``children`` does not list.
    """

    queue: str
    job_id: str
    state: str
    dependency_state: str | None = None
    children: list[FlowInfo] = msgspec.field(default_factory=list)
    truncated: bool = False


class QueueStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counts read from the queue's real containers in one round trip."""

    queue: str
    paused: bool
    waiting: int
    group_waiting: int
    waiting_total: int
    active: int
    delayed: int
    failed: int
    completed_kept: int
    groups_ready: int
    last_activity_ms: int | None
    last_enqueue_ms: int | None
    last_reserve_ms: int | None
    last_finish_ms: int | None
    waiting_deps: int = 0
    """Jobs waiting for their dependencies (docs/workflows.md); not in ``waiting_total``."""


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    """One page of a lane (``jobs``): the jobs in index order, each one's index score
    (``index_ms``: the time the lane's index records, e.g. the due time for ``delayed``)
    and the ``cursor`` of the next page (None after the last)."""

    jobs: list[JobInfo]
    index_ms: list[int]
    cursor: str | None


class GroupState(msgspec.Struct, frozen=True, kw_only=True):
    """The scheduling state of one group (``group_states``): jobs running, the stored
    limit (None when unset: the scripts then use 1), whether it is offered to reserve
    (``ready``, with the score of ``groups:ready``) and how many jobs wait in it.

    ``held_by`` / ``blocked_by`` (strict order, docs/control.md): the id of the strict job
    whose failed attempt waits out its backoff at the head of the group, or of the job that
    failed for good with ``on_failure="block"``; no job of the group starts meanwhile.
    """

    gid: str
    inflight: int
    limit: int | None
    ready: bool
    ready_ms: int | None
    waiting: int
    held_by: str | None = None
    blocked_by: str | None = None


# -- the official SDK's names (``omniq.types`` of PyPI omniq 4.0.0) ---------------------

PayloadT = dict[str, Any] | list[Any] | str
"""What a handler's ``ctx.payload`` can be (the official alias)."""
AckFailResult = FailOutcome
"""The official name of :class:`FailOutcome` (``(status, due_ms)``)."""
BatchResultItem = BatchResult
"""The official name of :class:`BatchResult` (``job_id``, ``status``, ``reason``)."""
BatchRemoveResult = list[BatchResult]
BatchRetryFailedResult = list[BatchResult]
ReserveJob = ReservedJob
"""The official name of :class:`ReservedJob` (note: its ``payload`` is decoded here; the
text is ``payload_raw``)."""


class ReservePaused(NamedTuple):
    """The official SDK's paused reservation; omniq's ``reserve`` returns None when the
    queue is paused (``reserve_many`` says ``"PAUSED"``)."""

    status: Literal["PAUSED"] = "PAUSED"


def __getattr__(name: str) -> Any:
    if name == "JobCtx":  # the handler context lives above this module (omniq.aio.context)
        from omniq.aio.context import JobContext

        return JobContext
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
