"""Real worker processes: group limits across processes, crashes and signals.

The processes run ``worker_proc.py`` and report through Redis ledgers (``t:*`` keys);
the test waits on them with BLPOP or bounded polling only.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

from worker_util import Spy, jk, qk, run_until_done, within

from omniq import JobSpec
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker


async def blpop(omniq: Any, key: str, seconds: int, what: str) -> str:
    item = await omniq.redis.blpop([key], timeout=seconds)
    assert item is not None, f"timed out after {seconds}s waiting for {what}"
    return str(item[1])


async def wait_log(omniq: Any, tag: str, needle: str, seconds: float, proc: Any) -> None:
    """Wait until the process logged a message containing ``needle``."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        item = await omniq.redis.blpop([f"t:log:{tag}"], timeout=max(1, int(left)))
        if item is not None and needle in item[1]:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line with {needle!r}; output:\n{proc.output()}")


async def test_group_limit_holds_across_three_processes(omniq, raw, spawn):
    groups, per_group, limit = ["g0", "g1", "g2"], 12, 2
    jobs = [JobSpec(payload={"i": i}, gid=g, group_limit=limit)
            for i in range(per_group) for g in groups]
    ids = await omniq.publish_many("q", jobs)
    # 3 processes x 2 slots = the 6 slots the three groups allow: every process stays busy
    procs = [spawn("group", "q", tag, 2, limit, 0.1) for tag in range(3)]
    await run_until_done(omniq, procs, len(ids))

    assert raw.smembers("t:violations") == set()
    # the limit was reached in every group (the test exercised it) and never exceeded
    assert {g: int(s) for g, s in raw.zrange("t:max", 0, -1, withscores=True)} == {
        g: limit for g in groups
    }
    done = raw.lrange("t:done", 0, -1)
    handled = [entry.split(":", 1)[1] for entry in done]
    assert sorted(handled) == sorted(ids)  # each job once
    assert {entry.split(":", 1)[0] for entry in done} == {"0", "1", "2"}
    for j in ids:
        h = raw.hgetall(jk("q", j))
        assert (h["state"], h["attempt"]) == ("completed", "1")
    for g in groups:
        assert int(raw.get(f"{{q}}:g:{g}:inflight") or 0) == 0


async def test_crashed_worker_job_runs_again_elsewhere(omniq, raw, spawn):
    ids = await omniq.publish_many("q", [{"i": i} for i in range(4)], timeout_ms=500,
                                   backoff_ms=0, max_attempts=3)
    proc = spawn("block", "q", "crash")
    try:
        started = json.loads(await blpop(omniq, "t:started:crash", 30, "the job to start"))
        assert started == {"id": ids[0], "attempt": 1}
        proc.popen.send_signal(signal.SIGKILL)
        assert await proc.wait(10) == -signal.SIGKILL
    finally:
        proc.close()
    assert raw.hget(jk("q", ids[0]), "state") == "active"

    attempts: dict[str, int] = {}
    all_done = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        attempts[ctx.job_id] = ctx.attempt
        if len(attempts) == len(ids):
            all_done.set()

    reaped = Spy(omniq, "reap_expired")
    worker = Worker(omniq, "q", handler, concurrency=2, maintenance_interval_s=0.05)
    await worker.start()
    try:
        await within(all_done.wait(), 15, "every job, the crashed one included, to run")
    finally:
        await worker.stop(grace_period_s=2)
    assert attempts == {ids[0]: 2, ids[1]: 1, ids[2]: 1, ids[3]: 1}
    assert sum(c[3] for c in reaped.calls) == 1  # this worker's maintenance reaped it
    for j in ids:
        assert raw.hget(jk("q", j), "state") == "completed"
    assert "LeaseExpired" in raw.hget(jk("q", ids[0]), "last_error")
    assert raw.zcard(qk("q", "active")) == 0


async def test_sigterm_finishes_the_job_in_flight_then_exits(omniq, raw, spawn):
    first, second = await omniq.publish_many("q", [{"i": 0}, {"i": 1}])
    proc = spawn("block", "q", "term")
    try:
        started = json.loads(await blpop(omniq, "t:started:term", 30, "the job to start"))
        assert started["id"] == first
        proc.popen.send_signal(signal.SIGTERM)
        await wait_log(omniq, "term", "SIGTERM received", 10, proc)
        await omniq.redis.rpush("t:release:term", "1")  # let the in-flight job finish
        assert await proc.wait(20) == 0, proc.output()
    finally:
        proc.close()
    assert "worker exited cleanly" in proc.output()
    h = raw.hgetall(jk("q", first))
    assert (h["state"], h["attempt"]) == ("completed", "1")
    assert json.loads(h["result"]) == {"released": "term"}
    # no new job was taken after the signal
    h2 = raw.hgetall(jk("q", second))
    assert (h2["state"], h2["attempt"]) == ("wait", "0")
    assert raw.llen("t:started:term") == 0


async def test_second_sigint_exits_at_once_without_ack(omniq, raw, spawn):
    jid = await omniq.publish("q", {}, timeout_ms=30_000)
    proc = spawn("block", "q", "int")
    try:
        await blpop(omniq, "t:started:int", 30, "the job to start")
        proc.popen.send_signal(signal.SIGINT)
        await wait_log(omniq, "int", "SIGINT received, finishing", 10, proc)
        t0 = time.monotonic()
        proc.popen.send_signal(signal.SIGINT)
        code = await proc.wait(10)
        elapsed = time.monotonic() - t0
    finally:
        proc.close()
    assert elapsed < 5, proc.output()
    assert code == 0, proc.output()
    assert "Traceback" not in proc.output()
    h = raw.hgetall(jk("q", jid))
    # the handler was abandoned: no ack, the lease is left to expire
    assert (h["state"], h["attempt"]) == ("active", "1")
    assert h["lease_token"] != ""
    assert "result" not in h
