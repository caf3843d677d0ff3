"""Plain reads done outside scripts (stats, job records, probes, layouts): the commands to
send for one physical queue and the parsing of their replies. Pure.

Commands are tuples for ``pipeline.execute_command(*command)``; each ``*_commands``
function has a ``*_READS`` constant saying how many commands it gives, so the replies of
several queues read in one pipeline can be split back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omniq._keys import QueueKeys
from omniq._limits import MAX_PARTITIONS
from omniq.errors import ProtocolError
from omniq.types import JobInfo, QueueStats

__all__ = [
    "PROBE_READS",
    "STATS_READS",
    "combine_stats",
    "job_info",
    "opt_int",
    "parse_layout",
    "parse_probe",
    "probe_commands",
    "queue_stats_from",
    "stats_commands",
]

Command = tuple[Any, ...]

STATS_READS = 9


def stats_commands(k: QueueKeys) -> list[Command]:
    """The reads of one queue's :class:`QueueStats` (``STATS_READS`` commands)."""
    return [
        ("EXISTS", k.paused),
        ("LLEN", k.wait),
        ("ZCARD", k.idx_wait),
        ("ZCARD", k.active),
        ("ZCARD", k.delayed),
        ("LLEN", k.failed),
        ("LLEN", k.completed),
        ("ZCARD", k.groups_ready),
        ("HMGET", k.stats, "last_activity_ms", "last_enqueue_ms", "last_reserve_ms",
         "last_finish_ms"),
    ]


def queue_stats_from(queue: str, results: Sequence[Any]) -> QueueStats:
    """Build :class:`QueueStats` from the replies of :func:`stats_commands`."""
    paused, wait, idx_wait, active, delayed, failed, completed, ready, times = results
    total = max(int(idx_wait), int(wait))
    t = [opt_int(v) for v in times]
    return QueueStats(
        queue=queue, paused=bool(paused), waiting=int(wait), group_waiting=total - int(wait),
        waiting_total=total, active=int(active), delayed=int(delayed), failed=int(failed),
        completed_kept=int(completed), groups_ready=int(ready), last_activity_ms=t[0],
        last_enqueue_ms=t[1], last_reserve_ms=t[2], last_finish_ms=t[3],
    )


def combine_stats(queue: str, each: Sequence[QueueStats]) -> QueueStats:
    """The stats of a logical queue from its partitions': counts summed, ``last_*`` times
    the latest, ``paused`` when any partition is."""
    if len(each) == 1 and each[0].queue == queue:
        return each[0]

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


PROBE_READS = 3


def probe_commands(k: QueueKeys) -> list[Command]:
    """Cheap reads telling whether a queue is paused or looks reservable."""
    return [("EXISTS", k.paused), ("LLEN", k.wait), ("ZCARD", k.groups_ready)]


def parse_probe(results: Sequence[Any]) -> bool | None:
    """None when paused, else whether the queue has reservable-looking work."""
    paused, wait, ready = results
    return None if paused else bool(int(wait) or int(ready))


def parse_layout(queue: str, value: Any) -> int:
    """The partition count stored in ``{queue}:partitions`` (0: none stored)."""
    if value is None:
        return 0
    text = value.decode() if isinstance(value, bytes) else str(value)
    if not text.isdigit() or not 1 <= int(text) <= MAX_PARTITIONS:
        raise ProtocolError(f"corrupt partition layout of queue {queue!r}: {text!r}")
    return int(text)


def opt_int(v: Any) -> int | None:
    """A stored integer field, or None when empty or not an integer."""
    if v is None or v == "" or v == b"":
        return None
    try:
        return int(v)
    except ValueError:
        return None


_COUNTS = ("attempt", "max_attempts", "timeout_ms", "backoff_ms")  # int, 0 when unset
_TIMES = ("created_ms", "updated_ms", "queued_ms", "first_started_ms", "last_started_ms",
          "completed_ms", "failed_ms", "due_ms", "lock_until_ms", "last_error_ms")
_TEXTS = ("gid", "lease_token", "last_error")  # str, None when unset


def job_info(queue: str, job_id: str, raw: Mapping[Any, Any]) -> JobInfo:
    """Build a :class:`JobInfo` from an HGETALL reply (str or bytes, any field missing)."""
    f = {
        (k.decode() if isinstance(k, bytes) else k): (
            v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        )
        for k, v in raw.items()
    }
    values: dict[str, Any] = {name: opt_int(f.get(name)) or 0 for name in _COUNTS}
    values.update((name, opt_int(f.get(name))) for name in _TIMES)
    values.update((name, f.get(name) or None) for name in _TEXTS)
    return JobInfo(
        queue=queue,
        job_id=f.get("id") or job_id,
        state=f.get("state", ""),
        payload_raw=f.get("payload", ""),
        result_raw=f.get("result") or None,
        fields=f,
        **values,
    )
