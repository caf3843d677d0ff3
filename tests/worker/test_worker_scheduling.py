"""Scheduling inside one worker: concurrency, groups, queue priority and drain."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any

import pytest
from worker_util import jk, now_ms, qk, within

from omniq import JobSpec
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker


@pytest.mark.parametrize("sync", [False, True], ids=["async", "thread"])
async def test_concurrency_never_exceeds_the_limit(omniq, raw, sync):
    lock = threading.Lock()
    state = {"now": 0, "max": 0, "runs": 0}

    def enter() -> None:
        with lock:
            state["now"] += 1
            state["runs"] += 1
            state["max"] = max(state["max"], state["now"])

    def leave() -> None:
        with lock:
            state["now"] -= 1

    async def ahandler(ctx: JobContext) -> None:
        enter()
        await asyncio.sleep(0.005)  # the job's work
        leave()

    def shandler(ctx: JobContext) -> None:
        enter()
        time.sleep(0.005)  # the job's work
        leave()

    ids = await omniq.publish_many("q", [{"i": i} for i in range(50)])
    worker = Worker(omniq, "q", shandler if sync else ahandler, concurrency=5, drain=True)
    await within(worker.run(), 20, "the worker to drain 50 jobs")
    assert state["runs"] == 50
    assert state["max"] == 5  # reached, never exceeded
    assert worker.stats.completed == 50
    assert all(raw.hget(jk("q", j), "state") == "completed" for j in ids)


async def test_fifo_within_group_and_round_robin_between_groups(omniq, raw):
    """group_limit 1, concurrency 2, three groups: every freed slot goes to the group that
    has waited longest, and each group runs its jobs in publish order.

    Ready times are millisecond scores and groups readied in the same millisecond are
    served in gid order, so each release happens in a later millisecond than the previous.
    """
    started: asyncio.Queue[str] = asyncio.Queue()
    release: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)

    starts: list[str] = []

    async def handler(ctx: JobContext) -> None:
        name = f"{ctx.gid}{ctx.payload['i']}"
        # recorded before any await: two handlers started together write to Redis over
        # separate pooled connections, in either order
        starts.append(name)
        started.put_nowait(name)
        await omniq.redis.rpush(f"t:starts:{ctx.gid}", ctx.payload["i"])
        await release[name].wait()

    jobs = [JobSpec(payload={"i": i}, gid=g) for g in "abc" for i in range(3)]
    await omniq.publish_many("q", jobs)
    worker = Worker(omniq, "q", handler, concurrency=2)
    await worker.start()
    try:
        in_flight = collections.deque()
        for _ in range(2):
            in_flight.append(await within(started.get(), 5, "a first job"))
        order = list(in_flight)
        while in_flight:
            await asyncio.sleep(0.003)  # not synchronisation: a distinct ms for the next ack
            release[in_flight.popleft()].set()
            if len(order) < 9:
                name = await within(started.get(), 5, f"the job after {order}")
                order.append(name)
                in_flight.append(name)
    finally:
        for ev in release.values():
            ev.set()
        await worker.stop(grace_period_s=2)

    assert order == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    assert starts == order
    for g in "abc":
        assert raw.lrange(f"t:starts:{g}", 0, -1) == ["0", "1", "2"]
    assert raw.llen(qk("q", "completed")) == 9


async def test_round_robin_between_groups_in_one_batch(omniq, raw):
    """group_limit 4, concurrency 4, two groups of 4: one batch reservation shares the
    slots 2/2 (a group served in the batch goes back in line behind the other)."""
    started: list[str] = []
    all_started = asyncio.Event()
    release = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        await omniq.redis.rpush("t:starts", f"{ctx.gid}{ctx.payload['i']}")
        started.append(ctx.gid)
        if len(started) == 4:
            all_started.set()
        await release.wait()

    jobs = [JobSpec(payload={"i": i}, gid=g, group_limit=4) for g in "ab" for i in range(4)]
    await omniq.publish_many("q", jobs)
    worker = Worker(omniq, "q", handler, concurrency=4)
    await worker.start()
    try:
        await within(all_started.wait(), 5, "four jobs to start")
        first = raw.lrange("t:starts", 0, 3)
    finally:
        release.set()
        await worker.stop(grace_period_s=2)
    assert collections.Counter(g[0] for g in first) == {"a": 2, "b": 2}, first


async def test_queue_priority_high_before_low(omniq):
    order: list[str] = []

    async def handler(ctx: JobContext) -> None:
        order.append(ctx.queue)

    # the low jobs are older: priority must win over age
    await omniq.publish_many("low", [{"i": i} for i in range(5)])
    await omniq.publish_many("high", [{"i": i} for i in range(5)])
    worker = Worker(omniq, ["high", "low"], handler, concurrency=1, drain=True)
    await within(worker.run(), 10, "the worker to drain")
    assert order == ["high"] * 5 + ["low"] * 5


async def test_drain_returns_when_empty_and_nothing_in_flight(omniq, raw):
    finished: list[str] = []

    async def handler(ctx: JobContext) -> None:
        if ctx.payload["slow"]:
            await asyncio.sleep(0.2)  # still running when the queue is already empty
        finished.append(ctx.job_id)

    ids = await omniq.publish_many("q", [{"slow": i == 9} for i in range(10)])
    worker = Worker(omniq, "q", handler, concurrency=3, drain=True)
    await within(worker.run(), 10, "the worker to drain")
    assert sorted(finished) == sorted(ids)
    assert worker.in_flight == 0
    assert worker.stats.completed == 10
    # every job was acked before run() returned
    assert all(raw.hget(jk("q", j), "state") == "completed" for j in ids)


async def test_drain_runs_due_delayed_jobs(omniq, raw):
    seen: list[str] = []

    async def handler(ctx: JobContext) -> None:
        seen.append(ctx.job_id)

    now = now_ms()
    past_due = await omniq.publish("q", {"k": "due_ms in the past"}, due_ms=now - 10_000)
    # published "5 s ago" with a 1 s delay: stored as delayed, due 4 s ago
    delayed_due = await omniq.publish("q", {"k": "delayed"}, delay_ms=1000, now_ms=now - 5000)
    assert raw.hget(jk("q", delayed_due), "state") == "delayed"
    # the maintenance timer cannot explain it: drain itself promotes what is due
    worker = Worker(omniq, "q", handler, drain=True, maintenance_interval_s=60)
    await within(worker.run(), 10, "the worker to drain")
    assert sorted(seen) == sorted([past_due, delayed_due])
    assert raw.hget(jk("q", delayed_due), "state") == "completed"
    assert raw.hget(jk("q", past_due), "state") == "completed"


async def test_drain_does_not_wait_for_future_jobs(omniq, raw):
    seen: list[str] = []

    async def handler(ctx: JobContext) -> None:
        seen.append(ctx.job_id)

    later = await omniq.publish("q", {"k": "later"}, delay_ms=600_000)
    now = await omniq.publish("q", {"k": "now"})
    worker = Worker(omniq, "q", handler, drain=True, maintenance_interval_s=0.05)
    t0 = time.monotonic()
    await within(worker.run(), 10, "the worker to drain")
    assert time.monotonic() - t0 < 5
    assert seen == [now]
    h: dict[str, Any] = raw.hgetall(jk("q", later))
    assert (h["state"], h["attempt"]) == ("delayed", "0")
