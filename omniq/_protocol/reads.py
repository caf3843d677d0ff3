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
from omniq._limits import MAX_PAGE, MAX_PARTITIONS
from omniq.errors import InvalidArgument, ProtocolError
from omniq.types import GroupState, JobInfo, QueueStats

__all__ = [
    "GROUP_READS",
    "INDEX_LANES",
    "PROBE_READS",
    "STATS_READS",
    "check_index_lane",
    "check_page_limit",
    "combine_group_states",
    "combine_stats",
    "decode_cursor",
    "encode_cursor",
    "group_state_commands",
    "index_page_commands",
    "index_score_commands",
    "parse_score",
    "merge_index_pages",
    "parse_group_state",
    "parse_scored",
    "ready_groups_commands",
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
    """Cheap reads telling whether a queue is paused or looks reservable (groups parked
    by a rate limit count: the reservation answers when they may run)."""
    return [("EXISTS", k.paused), ("LLEN", k.wait), ("ZCARD", k.groups_ready),
            ("ZCARD", k.base + ":groups:limited")]


def parse_probe(results: Sequence[Any]) -> bool | None:
    """None when paused, else whether the queue has reservable-looking work."""
    paused, wait, ready, limited = results
    return None if paused else bool(int(wait) or int(ready) or int(limited))


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
          "completed_ms", "failed_ms", "due_ms", "lock_until_ms", "last_error_ms",
          "progress_ms", "keep_completed_ms", "keep_failed_ms", "expire_ms",
          "dedup_ttl_ms", "expires_ms", "run_timeout_ms", "backoff_max_ms",
          "cancel_requested_ms", "occurrence_ms")
# str, None when unset
_TEXTS = ("gid", "lease_token", "last_error", "dedup_key", "backoff", "group_order",
          "on_failure", "schedule")


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
        progress_raw=f.get("progress") or None,
        backoff_jitter=f.get("backoff_jitter") == "1",
        fields=f,
        **values,
    )


# -- lane pages and groups (the monitor's reads) -----------------------------------------

INDEX_LANES = ("wait", "active", "delayed", "failed", "completed")
"""The lanes with a ``B:idx:<lane>`` index (score: the lane's time, member: job id)."""


def check_index_lane(lane: object) -> str:
    """One of :data:`INDEX_LANES`."""
    if lane not in INDEX_LANES:
        raise InvalidArgument(f"unknown lane {lane!r}: use one of {', '.join(INDEX_LANES)}")
    return str(lane)


def check_page_limit(limit: object) -> int:
    """A page size, 1 to ``MAX_PAGE``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be an int from 1 to {MAX_PAGE}")
    return limit


def index_page_commands(k: QueueKeys, lane: str, offset: int, count: int,
                        reverse: bool) -> list[Command]:
    """``count`` members of a lane's index from ``offset``, with scores."""
    rev = ("REV",) if reverse else ()
    return [("ZRANGE", k.base + ":idx:" + lane, offset, offset + count - 1, *rev,
             "WITHSCORES")]


def index_score_commands(k: QueueKeys, lane: str, job_ids: Sequence[str]) -> list[Command]:
    """The index score of each job in a lane (one ``ZSCORE`` per id)."""
    return [("ZSCORE", k.base + ":idx:" + lane, j) for j in job_ids]


def parse_score(v: Any) -> int | None:
    """A ``ZSCORE`` reply: the score, None for a member that is not there."""
    return None if v is None else _score(v)


def ready_groups_commands(k: QueueKeys, offset: int, count: int) -> list[Command]:
    """``count`` gids of ``groups:ready`` from ``offset``, with scores."""
    return [("ZRANGE", k.groups_ready, offset, offset + count - 1, "WITHSCORES")]


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


def _score(v: Any) -> int:
    try:
        return int(float(_text(v)))
    except ValueError:
        raise ProtocolError(f"not a sorted-set score: {v!r}") from None


def parse_scored(reply: Any) -> list[tuple[str, int]]:
    """A ``ZRANGE ... WITHSCORES`` reply (flat RESP2 list or RESP3 pairs) as
    ``(member, score)`` pairs."""
    items = list(reply or [])
    if items and isinstance(items[0], list | tuple):
        return [(_text(m), _score(sc)) for m, sc in items]
    return [(_text(items[i]), _score(items[i + 1])) for i in range(0, len(items), 2)]


def encode_cursor(offsets: Sequence[int]) -> str:
    """The cursor of a page position: the offset reached in each partition's index."""
    return ",".join(str(o) for o in offsets)


def decode_cursor(cursor: str | None, parts: int) -> list[int]:
    """The per-partition offsets of a cursor (None: the start)."""
    if cursor is None:
        return [0] * parts
    pieces = cursor.split(",") if isinstance(cursor, str) else []
    if len(pieces) != parts or not all(p.isdigit() for p in pieces):
        raise InvalidArgument(f"not a cursor of this queue ({parts} partition(s)): {cursor!r}")
    return [int(p) for p in pieces]


def merge_index_pages(rows: Sequence[Sequence[tuple[str, int]]], offsets: Sequence[int],
                      limit: int, reverse: bool
                      ) -> tuple[list[tuple[int, str, int]], str | None]:
    """Merge one page read from each partition (``limit`` rows from its offset) by
    (score, id), ascending or descending; returns the first ``limit`` as
    ``(partition, job_id, score)`` and the next cursor (None when every partition is
    exhausted)."""
    cands = [(score, jid, i) for i, part in enumerate(rows) for jid, score in part]
    cands.sort(key=lambda c: (c[0], c[1]), reverse=reverse)
    picked = cands[:limit]
    taken = [0] * len(rows)
    for _, _, i in picked:
        taken[i] += 1
    more = any(taken[i] < len(part) or len(part) == limit for i, part in enumerate(rows))
    nxt = encode_cursor([o + t for o, t in zip(offsets, taken, strict=True)]) if more else None
    return [(i, jid, score) for score, jid, i in picked], nxt


GROUP_READS = 6


def group_state_commands(k: QueueKeys, gid: str) -> list[Command]:
    """The reads of one group's :class:`GroupState` (``GROUP_READS`` commands)."""
    return [("GET", k.group(gid, "inflight")), ("GET", k.group(gid, "limit")),
            ("LLEN", k.group(gid, "wait")), ("ZSCORE", k.groups_ready, gid),
            ("GET", k.group(gid, "held")), ("GET", k.group(gid, "blocked"))]


def parse_group_state(gid: str, results: Sequence[Any]) -> GroupState:
    """Build a :class:`GroupState` from the replies of :func:`group_state_commands`."""
    inflight, limit, waiting, score, held, blocked = results
    lim = opt_int(limit)
    return GroupState(gid=gid, inflight=opt_int(inflight) or 0,
                      limit=lim if lim and lim > 0 else None, ready=score is not None,
                      ready_ms=None if score is None else _score(score),
                      waiting=int(waiting or 0), held_by=None if held is None else _text(held),
                      blocked_by=None if blocked is None else _text(blocked))


def combine_group_states(gid: str, each: Sequence[GroupState]) -> GroupState:
    """A group of a partitioned queue lives in one partition: the state that has any data
    (counts summed, in case an old layout left some elsewhere)."""
    if len(each) == 1:
        return each[0]
    limits = [s.limit for s in each if s.limit is not None]
    scores = [s.ready_ms for s in each if s.ready_ms is not None]
    return GroupState(gid=gid, inflight=sum(s.inflight for s in each),
                      limit=max(limits) if limits else None, ready=any(s.ready for s in each),
                      ready_ms=min(scores) if scores else None,
                      waiting=sum(s.waiting for s in each),
                      held_by=next((s.held_by for s in each if s.held_by), None),
                      blocked_by=next((s.blocked_by for s in each if s.blocked_by), None))
