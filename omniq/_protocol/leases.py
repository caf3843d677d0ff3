"""The lease scripts: ``reserve``, ``ack_reserve``, ``heartbeat``, ``ack_success``, ``ack_fail``.

See docs/protocol.md, section 2.1, for every ARGV and reply; the builders and parsers here
are the only code that knows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omniq._limits import MAX_RESERVE, RESERVE_FIELDS
from omniq._protocol.common import (
    check_non_negative,
    check_up_to,
    parse_ok,
    raise_if_error,
    texts,
    ulid_time_ms,
)
from omniq._scripts import scripts
from omniq.errors import ProtocolError, ScriptError, error_for_code
from omniq.types import Ack, CancelRequested, FailOutcome, ReservedJob, ReserveResult

__all__ = [
    "ACK_FAIL",
    "ACK_RESERVE",
    "ACK_SUCCESS",
    "HEARTBEAT",
    "RESERVE",
    "AckOutcome",
    "ack_fail_args",
    "ack_reserve_args",
    "ack_success_args",
    "check_reserve_count",
    "heartbeat_args",
    "parse_ack_reserve",
    "parse_ack_success",
    "parse_fail",
    "parse_heartbeats",
    "parse_reserve",
    "reserve_args",
]

RESERVE, ACK_RESERVE, HEARTBEAT, ACK_SUCCESS, ACK_FAIL = scripts(
    "reserve", "ack_reserve", "heartbeat", "ack_success", "ack_fail")

AckOutcome = FailOutcome | ScriptError | None
"""Per ack of ``ack_reserve``: None (completed), a FailOutcome, or the refusal."""

_EMPTY = ReserveResult("EMPTY", [])
_EMPTY_MORE = ReserveResult("EMPTY", [], more=True)
_PAUSED = ReserveResult("PAUSED", [])


def check_reserve_count(count: object) -> int:
    """A reservation size: 1 to ``MAX_RESERVE``."""
    return check_up_to(count, "count", MAX_RESERVE)


# -- reserve ---------------------------------------------------------------------------


def reserve_args(now: int, count: int, events_maxlen: int) -> tuple[int, int, int]:
    """ARGV of reserve.lua."""
    return (now, count, events_maxlen)


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
                run_timeout_ms=int(r[i + 8] or 0),
                schedule=r[i + 9],
                # a scheduled job's id is a ULID of its occurrence (sched_job_id, lib.lua)
                occurrence_ms=ulid_time_ms(r[i]) if r[i + 9] else 0,
            )
        )
    return jobs


def _reserve_at(queue: str, r: list[str], i: int) -> ReserveResult:
    status = r[i]
    if status == "JOB":
        return ReserveResult("JOB", _jobs(queue, r, i + 2, int(r[i + 1])))
    if status == "EMPTY":
        return _EMPTY_MORE if i + 1 < len(r) and r[i + 1] == "MORE" else _EMPTY
    if status == "PAUSED":
        return _PAUSED
    if status == "LIMITED":
        scope = r[i + 2]
        if scope not in ("queue", "group"):
            raise ProtocolError(f"reserve: unexpected reply {r!r}")
        return ReserveResult("LIMITED", [], int(r[i + 1]),
                             "queue" if scope == "queue" else "group")
    raise ProtocolError(f"reserve: unexpected reply {r!r}")


def parse_reserve(queue: str, reply: Any) -> ReserveResult:
    """Parse reserve.lua's reply; the jobs' ``queue`` is ``queue`` (the physical queue)."""
    r = texts(reply)
    raise_if_error("reserve", r)
    return _reserve_at(queue, r, 0)


# -- ack_reserve -----------------------------------------------------------------------


def ack_reserve_args(
    now: int, keep_completed: int, acks: Sequence[Ack], count: int, keep_failed: str,
    events_maxlen: int,
) -> list[Any]:
    """ARGV of ack_reserve.lua: settle ``acks``, then reserve up to ``count`` (0: none).

    ``keep_failed`` is the script's text form: ``""`` keeps every failed job.
    """
    args: list[Any] = [now, keep_completed, len(acks)]
    for ack in acks:
        kind = "S" if ack.ok else ("X" if ack.final else "F")
        args += (ack.job_id, ack.lease_token, kind, ack.text)
    args += (count, keep_failed, events_maxlen)
    return args


def parse_ack_reserve(
    queue: str, reply: Any, job_ids: Sequence[str], deps_due: set[str] | None = None
) -> tuple[list[AckOutcome], ReserveResult | None]:
    """Parse ack_reserve.lua: per ack None (completed), a FailOutcome or the error, and the
    reservation (None when none was asked). An ack whose value is ``DEPS`` left ops in the
    queue's dependency outbox (docs/workflows.md): ``queue`` is added to ``deps_due``, the
    worker delivers them at once."""
    r = texts(reply)
    raise_if_error("ack_reserve", r)
    n = int(r[0])
    outcomes: list[AckOutcome] = []
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
        if value == "DEPS" and deps_due is not None:
            deps_due.add(queue)
    i = 1 + 2 * n
    return outcomes, (_reserve_at(queue, r, i) if i < len(r) else None)


# -- heartbeat -------------------------------------------------------------------------


def heartbeat_args(now: int, leases: Sequence[tuple[str, str]]) -> list[Any]:
    """ARGV of heartbeat.lua for ``(job_id, lease_token)`` pairs of one queue."""
    args: list[Any] = [now, len(leases)]
    for job_id, token in leases:
        args += (job_id, token)
    return args


def parse_heartbeats(reply: Any, job_ids: Sequence[str]) -> list[int | ScriptError]:
    """Per lease: the new lock_until_ms (a :class:`CancelRequested` when the job's cancel
    was requested), or the error (LeaseLost for a lost lease)."""
    r = parse_ok("heartbeat", reply)
    out: list[int | ScriptError] = []
    for k, job_id in enumerate(job_ids):
        status, value = r[2 + 2 * k], r[3 + 2 * k]
        if status == "OK":
            out.append(int(value))
        elif status == "CANCEL":
            out.append(CancelRequested(value))
        else:
            out.append(error_for_code("heartbeat", value, None, job_id))
    return out


# -- single acks -----------------------------------------------------------------------


def ack_success_args(
    job_id: str, now: int, token: str, result: bytes, keep_completed: int, events_maxlen: int
) -> tuple[Any, ...]:
    """ARGV of ack_success.lua (``result``: the encoded result, or empty)."""
    return (job_id, now, token, result, check_non_negative(keep_completed, "keep_completed"),
            events_maxlen)


def parse_ack_success(reply: Any, job_id: str) -> bool:
    """ack_success.lua replies ``{'OK'}``, or ``{'OK', 'DEPS'}`` when it left work in the
    dependency outbox (True); raises LeaseLost for a lost lease."""
    r = parse_ok("ack_success", reply, job_id)
    return len(r) > 1 and r[1] == "DEPS"


def ack_fail_args(
    job_id: str, now: int, token: str, error: str, final: bool, keep_failed: str,
    events_maxlen: int,
) -> tuple[Any, ...]:
    """ARGV of ack_fail.lua (``error`` already cut to ``MAX_ERROR_BYTES``)."""
    return (job_id, now, token, error, "1" if final else "0", keep_failed, events_maxlen)


def parse_fail(reply: Any, job_id: str) -> FailOutcome:
    """Parse ack_fail.lua's reply."""
    r = texts(reply)
    raise_if_error("ack_fail", r, job_id)
    if r[0] == "RETRY":
        return FailOutcome("RETRY", int(r[1]))
    if r[0] == "FAILED":  # (a second value 'DEPS': see fail_left_dependency_work)
        return FailOutcome("FAILED", None)
    raise ProtocolError(f"ack_fail: unexpected reply {r!r}")


def fail_left_dependency_work(reply: Any) -> bool:
    """Whether an ack_fail reply says it left work in the dependency outbox."""
    r = texts(reply)
    return len(r) > 1 and r[0] == "FAILED" and r[1] == "DEPS"
