"""Maintenance and admin scripts: ``promote_delayed``, ``reap_expired``, ``pause``,
``resume``, ``retry_failed``, ``retry_failed_batch``, ``remove_job``, ``remove_jobs_batch``,
``cancel`` and ``partition`` (the layout of a partitioned queue).

Each ``*_args`` builds the ARGV of one physical queue's call; the parsers read its reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omniq._limits import MAX_PARTITIONS
from omniq._protocol.common import check_positive, check_up_to, parse_count, parse_ok
from omniq._scripts import scripts
from omniq.errors import ProtocolError
from omniq.types import BatchResult, CancelResult

__all__ = [
    "CANCEL",
    "PARTITION",
    "PAUSE",
    "PROMOTE_DELAYED",
    "REAP_EXPIRED",
    "REMOVE_JOB",
    "REMOVE_JOBS_BATCH",
    "RESUME",
    "RETRY_FAILED",
    "RETRY_FAILED_BATCH",
    "cancel_args",
    "check_partitions",
    "lane_state",
    "parse_batch",
    "parse_cancel",
    "parse_count",
    "parse_partition",
    "parse_pause",
    "parse_remove_job",
    "parse_resume",
    "pause_args",
    "parse_retry_failed",
    "partition_args",
    "promote_args",
    "reap_args",
    "remove_batch_args",
    "remove_job_args",
    "retry_batch_args",
    "retry_failed_args",
]

(PROMOTE_DELAYED, REAP_EXPIRED, PAUSE, RESUME, RETRY_FAILED, RETRY_FAILED_BATCH, REMOVE_JOB,
 REMOVE_JOBS_BATCH, PARTITION) = scripts(
    "promote_delayed", "reap_expired", "pause", "resume", "retry_failed", "retry_failed_batch",
    "remove_job", "remove_jobs_batch", "partition")
(CANCEL,) = scripts("cancel")


# -- maintenance: reply {'OK', count} --------------------------------------------------


def promote_args(now: int, max_promote: int, events_maxlen: int) -> tuple[int, int, int]:
    """ARGV of promote_delayed.lua."""
    return (now, check_positive(max_promote, "max_promote"), events_maxlen)


def reap_args(now: int, max_reap: int, keep_failed: str, events_maxlen: int) -> tuple[Any, ...]:
    """ARGV of reap_expired.lua (``keep_failed``: ``""`` keeps every failed job)."""
    return (now, check_positive(max_reap, "max_reap"), keep_failed, events_maxlen)


# -- pause / resume --------------------------------------------------------------------


def pause_args(events_maxlen: int) -> tuple[int]:
    """ARGV of pause.lua and resume.lua."""
    return (events_maxlen,)


def parse_pause(reply: Any) -> None:
    """pause.lua replies ``{'OK'}``."""
    parse_ok("pause", reply)


def parse_resume(reply: Any) -> bool:
    """resume.lua replies ``{'OK', '1' if it was paused else '0'}``."""
    return parse_ok("resume", reply)[1] == "1"


# -- retry and removal -----------------------------------------------------------------


def lane_state(lane: str) -> str:
    """The job state a lane holds (``gwait`` holds waiting grouped jobs)."""
    return "wait" if lane == "gwait" else lane


def retry_failed_args(job_id: str, now: int, events_maxlen: int) -> tuple[Any, ...]:
    """ARGV of retry_failed.lua."""
    return (job_id, now, events_maxlen)


def parse_retry_failed(reply: Any, job_id: str) -> None:
    """``{'OK'}``; raises JobNotFound / LaneMismatch."""
    parse_ok("retry_failed", reply, job_id)


def retry_batch_args(now: int, job_ids: Sequence[str], events_maxlen: int) -> tuple[Any, ...]:
    """ARGV of retry_failed_batch.lua."""
    return (now, len(job_ids), *job_ids, events_maxlen)


def remove_job_args(job_id: str, lane: str, now: int, events_maxlen: int) -> tuple[Any, ...]:
    """ARGV of remove_job.lua."""
    return (job_id, lane, now, events_maxlen)


def parse_remove_job(reply: Any, job_id: str) -> None:
    """``{'OK'}``; raises JobNotFound / LaneMismatch."""
    parse_ok("remove_job", reply, job_id)


def remove_batch_args(
    lane: str, job_ids: Sequence[str], now: int, events_maxlen: int
) -> tuple[Any, ...]:
    """ARGV of remove_jobs_batch.lua."""
    return (lane, len(job_ids), *job_ids, now, events_maxlen)


def parse_batch(op: str, reply: Any) -> list[BatchResult]:
    """Parse a batch admin reply into ``(job_id, status, reason)`` tuples."""
    r = parse_ok(op, reply)
    n = int(r[1])
    out = []
    for k in range(n):
        job_id, status, reason = r[2 + 3 * k], r[3 + 3 * k], r[4 + 3 * k]
        out.append(BatchResult(job_id, status, reason or None))
    return out


# -- cancel ----------------------------------------------------------------------------

_CANCEL_RESULTS: dict[str, CancelResult] = {
    "cancelled": "cancelled", "cancelling": "cancelling", "finished": "finished",
    "not_found": "not_found"}


def cancel_args(job_id: str, now: int, keep_failed: str, events_maxlen: int) -> tuple[Any, ...]:
    """ARGV of cancel.lua (``keep_failed``: ``""`` keeps every failed job)."""
    return (job_id, now, keep_failed, events_maxlen)


def parse_cancel(reply: Any, job_id: str) -> CancelResult:
    """cancel.lua replies ``{'OK', result, state it was in}``."""
    r = parse_ok("cancel", reply, job_id)
    result = _CANCEL_RESULTS.get(r[1] if len(r) > 1 else "")
    if result is None:
        raise ProtocolError(f"cancel: unexpected reply {r!r}")
    return result


# -- partition layout ------------------------------------------------------------------


def check_partitions(partitions: object) -> int:
    """A partition count: 1 to ``MAX_PARTITIONS``."""
    return check_up_to(partitions, "partitions", MAX_PARTITIONS)


def partition_args(partitions: int) -> tuple[int]:
    """ARGV of partition.lua (called on the logical queue's anchor)."""
    return (partitions,)


def parse_partition(reply: Any) -> bool:
    """partition.lua: True when the layout was stored now, False when it already was."""
    return parse_ok("partition", reply)[2] == "1"
