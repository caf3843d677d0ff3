"""Starting and stopping a worker, graceful shutdown, the wake-up signal and logging."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import threading
import time
from typing import Any

import pytest
from worker_util import AckLog, Spy, jk, numsub, qk, within

from omniq import OmniqError
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker


async def wake_subscribers(omniq, queue: str) -> int:
    channel = qk(queue, "wake")
    return (await numsub(omniq.redis, channel))[channel]


async def begin_stop(worker: Worker, grace_period_s: float) -> asyncio.Task[None]:
    """Start ``worker.stop()`` in a task and let it make its (synchronous) stop request."""
    task = asyncio.create_task(worker.stop(grace_period_s=grace_period_s))
    await asyncio.sleep(0)  # one loop step: stop() runs up to its first await
    return task


async def test_stop_finishes_in_flight_jobs_and_leaves_waiting_ones(omniq, raw):
    calls: collections.Counter[str] = collections.Counter()
    all_started = asyncio.Event()
    release = asyncio.Event()

    async def handler(ctx: JobContext) -> dict[str, int]:
        calls[ctx.job_id] += 1
        if len(calls) == 3:
            all_started.set()
        await release.wait()
        return {"i": ctx.payload["i"]}

    acks = AckLog(omniq)
    ids = await omniq.publish_many("q", [{"i": i} for i in range(8)])
    worker = Worker(omniq, "q", handler, concurrency=3)
    await worker.start()
    await within(all_started.wait(), 5, "three jobs to start")
    stopping = await begin_stop(worker, grace_period_s=10)
    release.set()  # in-flight jobs finish after the stop request
    await within(stopping, 10, "the worker to stop")

    first, rest = ids[:3], ids[3:]
    assert sorted(calls) == sorted(first)
    assert all(n == 1 for n in calls.values())
    assert sorted(acks.ids()) == sorted(first)  # each acked once, nothing else
    for j in first:
        h = raw.hgetall(jk("q", j))
        assert h["state"] == "completed"
        assert await omniq.result("q", j) == {"i": ids.index(j)}
    for j in rest:
        h = raw.hgetall(jk("q", j))
        assert (h["state"], h["attempt"]) == ("wait", "0")
    assert raw.lrange(qk("q", "wait"), 0, -1) == rest
    assert worker.stats.completed == 3
    assert worker.stats.lost == 0
    assert worker.in_flight == 0


async def test_jobs_finishing_during_the_grace_period_are_acked_at_once(omniq, raw):
    """An ack must not wait for the slowest in-flight job: nothing heartbeats a finished
    job, so its lease (here 400 ms) would expire and the job would run again."""
    started: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
    release: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)

    async def handler(ctx: JobContext) -> None:
        started[ctx.payload["name"]].set()
        await release[ctx.payload["name"]].wait()

    acks = AckLog(omniq)
    quick = await omniq.publish("q", {"name": "quick"}, timeout_ms=400, backoff_ms=0)
    slow = await omniq.publish("q", {"name": "slow"}, timeout_ms=30_000)
    worker = Worker(omniq, "q", handler, concurrency=2, maintenance_interval_s=0.05)
    await worker.start()
    try:
        await within(started["quick"].wait(), 5, "the quick job to start")
        await within(started["slow"].wait(), 5, "the slow job to start")
        stopping = await begin_stop(worker, grace_period_s=10)
        release["quick"].set()
        await acks.until(lambda: quick in acks.ids(), 3, "the quick job's ack")
        assert raw.hget(jk("q", quick), "state") == "completed"
        assert worker.in_flight == 1
        assert not stopping.done()
        release["slow"].set()
        await within(stopping, 10, "the worker to stop")
    finally:
        for ev in release.values():
            ev.set()
        await worker.stop(grace_period_s=2)
    assert acks.ids() == [quick, slow]
    assert raw.hget(jk("q", slow), "state") == "completed"
    assert raw.hget(jk("q", quick), "attempt") == "1"


async def test_job_over_the_grace_period_is_cancelled_and_not_acked(omniq, raw):
    started: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
    cancelled = asyncio.Event()
    release_fast = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        name = ctx.payload["name"]
        started[name].set()
        if name == "fast":
            await release_fast.wait()
            return
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    acks = AckLog(omniq)
    stuck = await omniq.publish("q", {"name": "stuck"}, timeout_ms=30_000)
    fast = await omniq.publish("q", {"name": "fast"}, timeout_ms=30_000)
    worker = Worker(omniq, "q", handler, concurrency=2)
    await worker.start()
    await within(started["stuck"].wait(), 5, "the stuck job to start")
    await within(started["fast"].wait(), 5, "the fast job to start")
    t0 = time.monotonic()
    stopping = await begin_stop(worker, grace_period_s=0.3)
    release_fast.set()
    await within(stopping, 5, "the worker to stop")
    assert time.monotonic() - t0 < 3
    assert cancelled.is_set()
    assert acks.ids() == [fast]
    assert raw.hget(jk("q", fast), "state") == "completed"
    h = raw.hgetall(jk("q", stuck))
    # left to expire: still active under this worker's lease, picked up again elsewhere
    assert (h["state"], h["attempt"]) == ("active", "1")
    assert h["lease_token"] != ""
    assert raw.zscore(qk("q", "active"), stuck) is not None


@pytest.mark.parametrize("sync", [False, True], ids=["async", "thread"])
async def test_second_stop_request_stops_at_once(omniq, raw, sync):
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    cancelled = asyncio.Event()
    gate = threading.Event()

    async def ahandler(ctx: JobContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def shandler(ctx: JobContext) -> None:
        loop.call_soon_threadsafe(started.set)
        gate.wait(20)

    acks = AckLog(omniq)
    jid = await omniq.publish("q", {}, timeout_ms=30_000)
    worker = Worker(omniq, "q", shandler if sync else ahandler, grace_period_s=30)
    await worker.start()
    try:
        await within(started.wait(), 5, "the job to start")
        t0 = time.monotonic()
        worker.request_stop()
        worker.request_stop()
        await within(worker.stop(), 5, "the worker to stop")
        elapsed = time.monotonic() - t0
    finally:
        gate.set()
    assert elapsed < 2  # not the 30 s grace period
    if not sync:
        assert cancelled.is_set()
    assert acks.ids() == []
    h = raw.hgetall(jk("q", jid))
    assert (h["state"], h["attempt"]) == ("active", "1")


async def test_async_with_runs_in_background_and_stops_on_exit(omniq, raw):
    done = asyncio.Event()

    async def handler(ctx: JobContext) -> str:
        done.set()
        return "ok"

    async with Worker(omniq, "q", handler) as worker:
        jid = await omniq.publish("q", {})
        await within(done.wait(), 5, "the job to run")  # runs in the background
    # stopped on exit: the finished job was acked, nothing listens any more
    assert raw.hget(jk("q", jid), "state") == "completed"
    assert await omniq.result("q", jid) == "ok"
    assert await wake_subscribers(omniq, "q") == 0
    assert worker.stats.completed == 1


async def test_start_and_stop(omniq, raw):
    done = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        done.set()

    worker = Worker(omniq, "q", handler)
    await worker.start()
    with pytest.raises(OmniqError):
        await worker.start()
    jid = await omniq.publish("q", {})
    await within(done.wait(), 5, "the job to run")
    await within(worker.stop(), 5, "the worker to stop")
    assert raw.hget(jk("q", jid), "state") == "completed"
    assert await wake_subscribers(omniq, "q") == 0
    assert worker.stats.completed == 1


async def test_idle_worker_wakes_up_on_publish(omniq, raw):
    """poll_max_s=5: only the wake-up signal can explain a pickup within 1 s."""
    picked: dict[str, float] = {}
    done = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        picked[ctx.job_id] = time.monotonic()
        done.set()

    reserves = Spy(omniq.routing, "reserve")  # the worker's reservations

    def longest_gap() -> float:
        times = [c[0] for c in reserves.calls]
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    worker = Worker(omniq, "q", handler, poll_max_s=5.0)
    await worker.start()
    try:
        # idle back-off: once two polls are >= 1 s apart, the next wait is >= 2 s
        await reserves.until(lambda: longest_gap() >= 1.0, 10, "the worker to idle")
        assert await wake_subscribers(omniq, "q") == 1
        t0 = time.monotonic()
        jid = await omniq.publish("q", {})
        await within(done.wait(), 5, "the job to run")
    finally:
        await worker.stop(grace_period_s=2)
    assert picked[jid] - t0 < 1.0
    assert raw.hget(jk("q", jid), "state") == "completed"


async def test_verbose_logs_reserve_and_ack(omniq, caplog):
    caplog.set_level(logging.INFO, logger="omniq")

    async def handler(ctx: JobContext) -> None:
        if ctx.payload["fail"]:
            raise RuntimeError("nope")

    ok = await omniq.publish("q", {"fail": False})
    bad = await omniq.publish("q", {"fail": True}, max_attempts=1)
    worker = Worker(omniq, "q", handler, verbose=True, drain=True)
    await within(worker.run(), 10, "the worker to drain")
    messages = [r.getMessage() for r in caplog.records if r.name == "omniq"]
    text = "\n".join(messages)
    assert f"reserved q/{ok} attempt 1/3" in text
    assert f"completed q/{ok}" in text
    assert f"reserved q/{bad} attempt 1/1" in text
    assert f"q/{bad} failed for good" in text


async def test_quiet_by_default(omniq, caplog):
    caplog.set_level(logging.INFO, logger="omniq")

    async def handler(ctx: JobContext) -> None:
        return None

    jid = await omniq.publish("q", {})
    await within(Worker(omniq, "q", handler, drain=True).run(), 10, "the worker to drain")
    assert not [r for r in caplog.records if r.name == "omniq" and jid in r.getMessage()]


async def test_stop_of_a_worker_that_never_ran_returns(omniq):
    async def handler(ctx: JobContext) -> None:
        return None

    await within(Worker(omniq, "q", handler).stop(), 2, "stop() of a worker never started")


async def test_cancelling_stop_is_not_swallowed(omniq, raw):
    """A caller's timeout around stop() (wait_for, asyncio.timeout) must still fire: the
    grace period here is longer than the caller is willing to wait."""
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    acks = AckLog(omniq)
    jid = await omniq.publish("q", {}, timeout_ms=30_000)
    worker = Worker(omniq, "q", handler)
    await worker.start()
    await within(started.wait(), 5, "the job to start")
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(worker.stop(grace_period_s=30), 0.3)
    assert time.monotonic() - t0 < 3
    await within(worker.stop(), 5, "the worker to stop")
    assert acks.ids() == []
    assert raw.hget(jk("q", jid), "state") == "active"


async def test_the_same_job_id_in_two_queues_runs_in_both(omniq):
    """Job ids are unique per queue only: one worker consuming both runs each job."""
    started: list[str] = []
    both = asyncio.Event()
    release = asyncio.Event()

    async def handler(ctx: Any) -> str:
        started.append(ctx.queue)
        if len(started) == 2:
            both.set()
        await release.wait()  # both run at once: neither lease is taken for the other's
        return ctx.queue

    await omniq.publish("a", {}, job_id="same")
    await omniq.publish("b", {}, job_id="same")
    worker = Worker(omniq, ["a", "b"], handler, concurrency=2)
    async with worker:
        await within(both.wait(), 10, "both jobs to start")
        release.set()
        assert await within(omniq.wait("a", "same"), 10, "a") == "a"
        assert await within(omniq.wait("b", "same"), 10, "b") == "b"
    assert (worker.stats.completed, worker.stats.lost) == (2, 0)
