"""Helpers of tests/core/test_dependencies.py (imported by module name: tests/core is on
sys.path).

* :func:`job` / :func:`state` -- a job's stored record (it must exist) / its state or None.
* :func:`run` / :func:`fail` -- lease the next job of a queue and complete / fail it.
* :func:`drain` -- a real worker on some queues until nothing is left, bounded in time.
* :func:`official_ack` / :func:`official_fail` -- what the official client's ack scripts
  write (they know nothing of dependents), done with plain commands.
* :func:`job_events` -- the (type, fields) of a job's events, read from the stream.
* :func:`lua_constant` -- a numeric constant of lib.lua (those only the scripts know).
* :func:`tagged` -- every key of one queue's hash tag, with its value (nothing-written
  checks).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from core_util import dump_db
from shared_util import jk, qk, within

from omniq import AsyncOmniq
from omniq.types import JobInfo, ReservedJob

__all__ = [
    "drain",
    "fail",
    "far_future",
    "job",
    "job_event_types",
    "job_events",
    "lease",
    "lua_constant",
    "official_ack",
    "official_fail",
    "outbox",
    "run",
    "state",
    "tagged",
    "waiting_deps",
]


async def job(omniq: AsyncOmniq, queue: str, job_id: str) -> JobInfo:
    info = await omniq.get_job(queue, job_id)
    assert info is not None, f"{queue}:{job_id} does not exist"
    return info


async def state(omniq: AsyncOmniq, queue: str, job_id: str) -> str | None:
    info = await omniq.get_job(queue, job_id)
    return None if info is None else info.state


async def lease(omniq: AsyncOmniq, queue: str, job_id: str | None = None, *,
                now_ms: int = 0) -> ReservedJob:
    got = await omniq.reserve(queue, now_ms=now_ms)
    assert got is not None, f"nothing to reserve on {queue}"
    if job_id is not None:
        assert got.job_id == job_id, (got.job_id, job_id)
    return got


async def run(omniq: AsyncOmniq, queue: str, job_id: str | None = None, *,
              result: Any = None, now_ms: int = 0) -> ReservedJob:
    """Lease the next job of ``queue`` (it must be ``job_id`` when given) and complete it
    with ``ack_success`` (which delivers dependency work for other queues at once)."""
    got = await lease(omniq, queue, job_id, now_ms=now_ms)
    await omniq.ack_success(got.queue, got.job_id, got.lease_token, result=result,
                            now_ms=now_ms + 1 if now_ms else 0)
    return got


async def fail(omniq: AsyncOmniq, queue: str, job_id: str | None = None, *,
               error: str = "boom", now_ms: int = 0) -> ReservedJob:
    """Lease the next job of ``queue`` and fail it for good (``final=True``)."""
    got = await lease(omniq, queue, job_id, now_ms=now_ms)
    outcome = await omniq.ack_fail(got.queue, got.job_id, got.lease_token, error, final=True,
                                   now_ms=now_ms + 1 if now_ms else 0)
    assert outcome.status == "FAILED"
    return got


async def drain(omniq: AsyncOmniq, queues: str | Sequence[str], handler: Callable[..., Any],
                *, concurrency: int = 1, seconds: float = 60) -> None:
    """A real worker on ``queues`` with ``drain=True``: it returns once nothing is ready
    and nothing is in flight."""
    await within(omniq.consume(queues, handler, concurrency=concurrency, drain=True,
                               handle_signals=False), seconds, f"a drain of {queues}")


def official_ack(r: redis.Redis, queue: str, leased: ReservedJob, now: int) -> None:
    """Complete a leased job as the official client's ack_success.lua (4.0.0) does: its
    state, the active set and indexes, the completed list; nothing about dependents."""
    q, i = queue, leased.job_id
    assert r.hget(jk(q, i), "lease_token") == leased.lease_token
    assert r.zrem(qk(q, "active"), i) == 1
    r.hset(jk(q, i), mapping={"state": "completed", "updated_ms": now, "completed_ms": now,
                              "lease_token": "", "lock_until_ms": ""})
    r.zrem(qk(q, "idx:active"), i)
    r.zadd(qk(q, "idx:completed"), {i: now})
    r.hincrby(qk(q, "stats"), "active", -1)
    r.lpush(qk(q, "completed"), i)


def official_fail(r: redis.Redis, queue: str, leased: ReservedJob, now: int,
                  error: str = "official boom") -> None:
    """Fail a leased job (its last attempt) as the official client's ack_fail.lua does."""
    q, i = queue, leased.job_id
    assert r.zrem(qk(q, "active"), i) == 1
    r.hset(jk(q, i), mapping={"last_error": error, "last_error_ms": now, "state": "failed",
                              "updated_ms": now, "failed_ms": now, "lease_token": "",
                              "lock_until_ms": ""})
    r.zrem(qk(q, "idx:active"), i)
    r.zadd(qk(q, "idx:failed"), {i: now})
    r.hincrby(qk(q, "stats"), "active", -1)
    r.lpush(qk(q, "failed"), i)


def job_events(r: redis.Redis, queue: str, job_id: str) -> list[tuple[str, dict[str, str]]]:
    """The events of one job as (type, the other fields but id and ms), oldest first."""
    out = []
    for _, f in r.xrange(qk(queue, "events")):
        if f.get("id") == job_id:
            rest = {k: v for k, v in f.items() if k not in ("type", "id", "ms")}
            out.append((f["type"], rest))
    return out


def job_event_types(r: redis.Redis, queue: str, job_id: str) -> list[str]:
    return [t for t, _ in job_events(r, queue, job_id)]


def waiting_deps(r: redis.Redis, queue: str) -> list[str]:
    """The ids of the queue's ``waiting_deps`` lane."""
    return list(r.zrange(qk(queue, "waiting_deps"), 0, -1))


def outbox(r: redis.Redis, queue: str) -> list[str]:
    """The ops of the queue's dependency outbox (``{queue}:deps:out``)."""
    return list(r.zrange(qk(queue, "deps:out"), 0, -1))


def tagged(r: redis.Redis, queue: str) -> dict[str, Any]:
    """Every key of the hash tag ``{queue}`` with its type, value and PTTL."""
    prefix = "{" + queue + "}"
    return {k: v for k, v in dump_db(r).items() if k.startswith(prefix)}


def far_future(ms: int = 0) -> int:
    """Epoch ms ``ms`` after the real clock (the embedded servers run on this machine)."""
    return int(time.time() * 1000) + ms


def lua_constant(name: str) -> int:
    """The value of ``local <name> = <integer>`` in omniq/lua/lib.lua."""
    from omniq._scripts import SCRIPTS

    m = re.search(rf"^local {name} = (\d+)$", SCRIPTS["deps_pending"].source, re.M)
    assert m is not None, name
    return int(m.group(1))
