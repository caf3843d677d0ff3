"""Argument building and reply parsing for every script (I/O-free).

The async client is ``args = build_*(...)``, ``reply = await run(script, key, args)``,
``return parse_*(reply)``. Everything here is pure and unit-testable without Redis.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from omniq._keys import LANES, MAX_BATCH, validate_gid, validate_job_id
from omniq.errors import InvalidArgument, OmniqError, ScriptError, error_for_code
from omniq.types import BatchResult, FailOutcome, ReservedJob, ReserveResult

__all__ = [
    "ENQUEUE_FIELDS",
    "JobOptions",
    "check_batch",
    "check_lane",
    "check_non_negative",
    "check_now",
    "check_positive",
    "enqueue_fields",
    "new_job_id",
    "parse_ack_reserve",
    "parse_batch",
    "parse_count",
    "parse_fail",
    "parse_heartbeats",
    "parse_ok",
    "parse_reserve",
    "texts",
]

ENQUEUE_FIELDS = 9
RESERVE_FIELDS = 8


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = [_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024)]  # 10 bits -> 2 chars


def new_job_id(
    _ns: Callable[[], int] = time.time_ns,
    _rand: Callable[[int], bytes] = os.urandom,
    _p: list[str] = _PAIRS,
) -> str:
    """A new ULID: 26 characters of uppercase Crockford base32, sortable by time.

    48 bits of Unix time in milliseconds and 80 random bits from ``os.urandom``, encoded
    as the ULID spec (and ulid-py's ``str(ulid.new())``) does: the 128-bit value in
    big-endian 5-bit groups, the first character carrying the top 3 bits. Not monotonic
    within a millisecond (neither is ``ulid.new()``). About 1 us, against 3-5 us for
    ulid-py, on the path of every publish.
    """
    v = (_ns() // 1_000_000) << 80 | int.from_bytes(_rand(10), "big")
    return (
        _p[v >> 120] + _p[v >> 110 & 1023] + _p[v >> 100 & 1023] + _p[v >> 90 & 1023]
        + _p[v >> 80 & 1023] + _p[v >> 70 & 1023] + _p[v >> 60 & 1023] + _p[v >> 50 & 1023]
        + _p[v >> 40 & 1023] + _p[v >> 30 & 1023] + _p[v >> 20 & 1023] + _p[v >> 10 & 1023]
        + _p[v & 1023]
    )


MAX_INT = 2**53 - 1  # the scripts' largest exact integer (a Lua number, like JavaScript)


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an int, not {type(value).__name__}")
    if value > MAX_INT:
        raise InvalidArgument(f"{name} must be at most {MAX_INT}, got {value}")
    return value


def check_positive(value: object, name: str) -> int:
    """An int >= 1."""
    v = _int(value, name)
    if v < 1:
        raise InvalidArgument(f"{name} must be at least 1, got {v}")
    return v


def check_non_negative(value: object, name: str) -> int:
    """An int >= 0."""
    v = _int(value, name)
    if v < 0:
        raise InvalidArgument(f"{name} must not be negative, got {v}")
    return v


def check_now(now_ms: object) -> int:
    """``now_ms`` override: 0 means the server clock."""
    return check_non_negative(now_ms, "now_ms")


def check_lane(lane: object) -> str:
    """One of ``wait``, ``delayed``, ``failed``, ``completed``, ``gwait``."""
    if lane not in LANES:
        raise InvalidArgument(f"unknown lane {lane!r}: use one of {', '.join(sorted(LANES))}")
    return str(lane)


def check_batch(job_ids: Sequence[str]) -> list[str]:
    """Validate a batch of job ids for the admin batch scripts (at most 100)."""
    if isinstance(job_ids, str | bytes):
        raise InvalidArgument("job_ids must be a list of ids, not a single string")
    ids = list(job_ids)
    if len(ids) > MAX_BATCH:
        raise InvalidArgument(f"a batch holds at most {MAX_BATCH} job ids, got {len(ids)}")
    return [validate_job_id(i) for i in ids]


class JobOptions:
    """Validated per-job options, shared by ``publish`` and ``publish_many``."""

    __slots__ = ("backoff_ms", "delay_ms", "due_ms", "gid", "group_limit", "max_attempts",
                 "timeout_ms")

    def __init__(
        self,
        *,
        max_attempts: int,
        timeout_ms: int,
        backoff_ms: int,
        due_ms: int = 0,
        delay_ms: int = 0,
        gid: str | None = None,
        group_limit: int = 0,
    ) -> None:
        self.max_attempts = check_positive(max_attempts, "max_attempts")
        self.timeout_ms = check_positive(timeout_ms, "timeout_ms")
        self.backoff_ms = check_non_negative(backoff_ms, "backoff_ms")
        self.due_ms = check_non_negative(due_ms, "due_ms")
        self.delay_ms = check_non_negative(delay_ms, "delay_ms")
        if self.due_ms and self.delay_ms:
            raise InvalidArgument("give either due_ms (absolute) or delay_ms (relative), not both")
        self.gid = validate_gid(gid)
        self.group_limit = check_non_negative(group_limit, "group_limit")


def enqueue_fields(job_id: str, payload: bytes, o: JobOptions) -> list[Any]:
    """The 9 ARGV fields of one job for enqueue.lua."""
    return [
        job_id,
        payload,
        o.max_attempts,
        o.timeout_ms,
        o.backoff_ms,
        o.due_ms,
        o.delay_ms,
        o.gid,
        o.group_limit,
    ]


def texts(reply: Any) -> list[str]:
    """A script reply as a list of str, whatever the client's decode setting."""
    if not isinstance(reply, list):
        raise OmniqError(f"unexpected script reply: {reply!r}")
    return [x if type(x) is str else _text(x) for x in reply]


def _text(x: Any) -> str:
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return str(x)


def raise_if_error(op: str, r: list[str], job_id: str | None = None) -> None:
    """Raise the typed exception for an ``ERR`` reply."""
    if r and r[0] == "ERR":
        code = r[1] if len(r) > 1 else "UNKNOWN"
        detail = r[2] if len(r) > 2 else None
        if code == "BAD_ARGS" or code.startswith("BAD_") or code == "BATCH_TOO_LARGE":
            raise InvalidArgument(f"{op.upper()} refused by the script: {code} {detail or ''}")
        raise error_for_code(op, code, detail, job_id)


def parse_ok(op: str, reply: Any, job_id: str | None = None) -> list[str]:
    """Check an ``OK`` reply (raising on ``ERR``) and return it as text."""
    r = texts(reply)
    raise_if_error(op, r, job_id)
    if not r or r[0] != "OK":
        raise OmniqError(f"{op}: unexpected reply {r!r}")
    return r


def parse_count(op: str, reply: Any) -> int:
    """``{'OK', n}`` -> n."""
    return int(parse_ok(op, reply)[1])


def _jobs(queue: str, r: list[str], start: int, n: int) -> list[ReservedJob]:
    jobs = []
    for i in range(start, start + n * RESERVE_FIELDS, RESERVE_FIELDS):
        jobs.append(
            ReservedJob(
                queue=queue,
                job_id=r[i],
                payload_raw=r[i + 1],
                lock_until_ms=int(r[i + 2]),
                attempt=int(r[i + 3]),
                max_attempts=int(r[i + 4] or 0),
                gid=r[i + 5],
                lease_token=r[i + 6],
                timeout_ms=int(r[i + 7]),
            )
        )
    return jobs


_EMPTY = ReserveResult("EMPTY", [])
_PAUSED = ReserveResult("PAUSED", [])


def _reserve_at(queue: str, r: list[str], i: int) -> ReserveResult:
    status = r[i]
    if status == "JOB":
        return ReserveResult("JOB", _jobs(queue, r, i + 2, int(r[i + 1])))
    if status == "EMPTY":
        return _EMPTY
    if status == "PAUSED":
        return _PAUSED
    raise OmniqError(f"reserve: unexpected reply {r!r}")


def parse_reserve(queue: str, reply: Any) -> ReserveResult:
    """Parse reserve.lua's reply."""
    r = texts(reply)
    raise_if_error("reserve", r)
    return _reserve_at(queue, r, 0)


def parse_fail(reply: Any, job_id: str) -> FailOutcome:
    """Parse ack_fail.lua's reply."""
    r = texts(reply)
    raise_if_error("ack_fail", r, job_id)
    if r[0] == "RETRY":
        return FailOutcome("RETRY", int(r[1]))
    if r[0] == "FAILED":
        return FailOutcome("FAILED", None)
    raise OmniqError(f"ack_fail: unexpected reply {r!r}")


def parse_heartbeats(reply: Any, job_ids: Sequence[str]) -> list[int | ScriptError]:
    """Per lease: the new lock_until_ms, or the error (LeaseLost for a lost lease)."""
    r = parse_ok("heartbeat", reply)
    out: list[int | ScriptError] = []
    for k, job_id in enumerate(job_ids):
        status, value = r[2 + 2 * k], r[3 + 2 * k]
        if status == "OK":
            out.append(int(value))
        else:
            out.append(error_for_code("heartbeat", value, None, job_id))
    return out


def parse_ack_reserve(
    queue: str, reply: Any, job_ids: Sequence[str]
) -> tuple[list[FailOutcome | ScriptError | None], ReserveResult | None]:
    """Parse ack_reserve.lua: per ack None (completed), a FailOutcome or the error."""
    r = texts(reply)
    raise_if_error("ack_reserve", r)
    n = int(r[0])
    outcomes: list[FailOutcome | ScriptError | None] = []
    for k in range(n):
        status, value = r[1 + 2 * k], r[2 + 2 * k]
        if status == "OK":
            outcomes.append(None)
        elif status == "RETRY":
            outcomes.append(FailOutcome("RETRY", int(value)))
        elif status == "FAILED":
            outcomes.append(FailOutcome("FAILED", None))
        else:
            outcomes.append(error_for_code("ack", value, None, job_ids[k]))
    i = 1 + 2 * n
    return outcomes, (_reserve_at(queue, r, i) if i < len(r) else None)


def parse_batch(op: str, reply: Any) -> list[BatchResult]:
    """Parse a batch admin reply into ``(job_id, status, reason)`` tuples."""
    r = parse_ok(op, reply)
    n = int(r[1])
    out = []
    for k in range(n):
        job_id, status, reason = r[2 + 3 * k], r[3 + 3 * k], r[4 + 3 * k]
        out.append(BatchResult(job_id, status, reason or None))
    return out
