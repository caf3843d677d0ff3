"""The rate-limit scripts: ``set_rate_limit``, ``clear_rate_limit``, ``get_rate_limit``.

The limits are enforced by the reserve path of ``lib.lua`` (``rate_begin``,
``group_rate_ok``); docs/control.md, "Rate limits", states the rules. A queue-wide limit of
a partitioned queue is shared among its partitions (:func:`split_max_jobs`).
"""

from __future__ import annotations

from typing import Any

from omniq._keys import validate_gid
from omniq._limits import MAX_INT, MAX_RATE_JOBS
from omniq._protocol.common import check_up_to, parse_ok
from omniq._scripts import scripts
from omniq.errors import InvalidArgument
from omniq.types import RateLimit

__all__ = [
    "CLEAR_RATE_LIMIT",
    "GET_RATE_LIMIT",
    "SET_RATE_LIMIT",
    "check_gid",
    "clear_args",
    "get_args",
    "merge_queue_limits",
    "parse_clear",
    "parse_get",
    "parse_set",
    "set_args",
    "split_max_jobs",
]

SET_RATE_LIMIT, CLEAR_RATE_LIMIT, GET_RATE_LIMIT = scripts(
    "set_rate_limit", "clear_rate_limit", "get_rate_limit")


def check_gid(gid: object) -> str:
    """A rate limit's group: None (the whole queue) or a valid gid; '' for the script."""
    if gid is None:
        return ""
    v = validate_gid(gid)  # a str, trimmed
    if not v:
        raise InvalidArgument("gid must not be empty (None: the queue-wide limit)")
    return v


def set_args(now: int, gid: str, max_jobs: object, per_ms: object) -> tuple[int, str, int, int]:
    """ARGV of set_rate_limit.lua (``gid`` from :func:`check_gid`)."""
    return (now, gid, check_up_to(max_jobs, "max_jobs", MAX_RATE_JOBS),
            check_up_to(per_ms, "per_ms", MAX_INT))


def split_max_jobs(max_jobs: int, partitions: int) -> list[int]:
    """A queue-wide limit of a partitioned queue, per partition: ``max_jobs`` shared as
    evenly as possible, the first partitions taking the remainder, so the partitions
    together never lease more than ``max_jobs`` per window.

    :raises InvalidArgument: fewer jobs than partitions (a partition would get none).
    """
    if max_jobs < partitions:
        raise InvalidArgument(
            f"a queue-wide rate limit of a queue with {partitions} partitions is shared "
            f"among them: max_jobs must be at least {partitions}, got {max_jobs}")
    base, extra = divmod(max_jobs, partitions)
    return [base + (1 if i < extra else 0) for i in range(partitions)]


def parse_set(reply: Any) -> bool:
    """``{'OK', '1' | '0'}``: whether the limit is new (not a replacement)."""
    return parse_ok("set_rate_limit", reply)[1] == "1"


def clear_args(now: int, gid: str) -> tuple[int, str]:
    """ARGV of clear_rate_limit.lua."""
    return (now, gid)


def parse_clear(reply: Any) -> bool:
    """``{'OK', '1' | '0'}``: whether there was such a limit."""
    return parse_ok("clear_rate_limit", reply)[1] == "1"


def get_args(now: int, gid: str | None) -> tuple[int, str, str]:
    """ARGV of get_rate_limit.lua: the queue-wide limit (``gid`` ''), one group's, or
    every limit (``gid`` None)."""
    if gid is None:
        return (now, "all", "")
    return (now, "group", gid) if gid else (now, "queue", "")


def parse_get(reply: Any) -> list[RateLimit]:
    """The limits of one physical queue, the queue-wide one first (``gid`` None)."""
    r = parse_ok("get_rate_limit", reply)
    out = []
    for k in range(int(r[1])):
        gid, max_jobs, per_ms, used = r[2 + 4 * k : 6 + 4 * k]
        out.append(RateLimit(max_jobs=int(max_jobs), per_ms=int(per_ms), gid=gid or None,
                             in_window=int(used)))
    return out


def merge_queue_limits(parts: list[RateLimit | None]) -> RateLimit | None:
    """The queue-wide limit of a partitioned queue from its partitions' shares: their sum
    (the window of the first partition that has one)."""
    found = [p for p in parts if p is not None]
    if not found:
        return None
    return RateLimit(max_jobs=sum(p.max_jobs for p in found), per_ms=found[0].per_ms,
                     in_window=sum(p.in_window for p in found))
