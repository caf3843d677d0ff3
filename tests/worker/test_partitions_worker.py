"""Workers on partitioned queues: FIFO per group and group limits across partitions,
fair service of the partitions, exactly-once processing with several workers, wake-ups
and picking up a layout declared after the worker started."""

from __future__ import annotations

import asyncio
import collections
import random
import zlib
from typing import Any

from worker_util import numsub, poll_until, qk, within

from omniq import AsyncOmniq, JobSpec
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker

N = 4


def part_of(gid: str, n: int = N) -> int:
    return zlib.crc32(gid.encode()) % n


async def test_fifo_per_group_and_group_limit_hold_across_partitions(omniq, raw):
    await omniq.partition_queue("po", N)
    limits = {f"g{i}": 1 + i % 3 for i in range(12)}  # limits 1, 2 and 3
    assert len({part_of(g) for g in limits}) == N  # the groups cover every partition
    jobs = [JobSpec(payload={"g": g, "k": k}, gid=g, group_limit=lim)
            for k in range(8) for g, lim in limits.items()]
    random.Random(7).shuffle(jobs)  # interleave the groups; order inside a group kept
    order = {g: [j.payload["k"] for j in jobs if j.gid == g] for g in limits}
    for j in jobs:  # one by one: the publish order per group is the order above
        await omniq.publish("po", j.payload, gid=j.gid, group_limit=j.group_limit)
    await omniq.publish_many("po", [{"g": None, "k": k} for k in range(40)])

    starts: dict[str, list[int]] = collections.defaultdict(list)
    running: collections.Counter[str] = collections.Counter()
    peak: collections.Counter[str] = collections.Counter()
    queues: dict[str, set[str]] = collections.defaultdict(set)

    async def handler(ctx: JobContext) -> None:
        g = ctx.payload["g"]
        if g is None:
            return
        assert ctx.gid == g
        assert ctx.logical_queue == "po"
        queues[g].add(ctx.queue)
        starts[g].append(ctx.payload["k"])
        running[g] += 1
        peak[g] = max(peak[g], running[g])
        for _ in range(random.randint(1, 5)):
            await asyncio.sleep(0.001)  # the job's work, of varying length
        running[g] -= 1

    worker = Worker(omniq, "po", handler, concurrency=16, drain=True)
    await within(worker.run(), 60, "the worker to drain the partitioned queue")
    assert worker.stats.completed == len(jobs) + 40
    for g, lim in limits.items():
        assert starts[g] == order[g], g  # FIFO per group
        assert peak[g] <= lim, (g, peak[g], lim)
        assert queues[g] == {f"po.p{part_of(g)}"}
    assert max(peak[g] for g, lim in limits.items() if lim == 3) > 1  # limits were reached
    assert (await omniq.stats("po")).waiting_total == 0


async def test_partitions_are_served_in_turn(omniq):
    await omniq.partition_queue("fair", N)
    await omniq.publish_many("fair", [{"i": i} for i in range(10 * N)])
    served: list[str] = []
    done = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        served.append(ctx.queue)
        if len(served) == 5 * N:
            done.set()

    async with Worker(omniq, "fair", handler, concurrency=1):
        await within(done.wait(), 30, "the first jobs")
    counts = collections.Counter(served[: 5 * N])
    assert counts == {f"fair.p{i}": 5 for i in range(N)}, counts


async def test_partitioned_queue_keeps_its_priority_level(omniq):
    """A partitioned high-priority queue is drained before a plain low one, and its
    partitions share the level (no partition waits behind another)."""
    await omniq.partition_queue("hi", N)
    await omniq.publish_many("lo", [{"q": "lo"} for _ in range(10)])
    await omniq.publish_many("hi", [{"q": "hi"} for _ in range(20)])
    seen: list[str] = []

    async def handler(ctx: JobContext) -> None:
        seen.append(ctx.queue)

    worker = Worker(omniq, ["hi", "lo"], handler, concurrency=1, drain=True)
    await within(worker.run(), 30, "the worker to drain both queues")
    assert [q.split(".p")[0] for q in seen] == ["hi"] * 20 + ["lo"] * 10
    assert set(seen[:N]) == {f"hi.p{i}" for i in range(N)}


async def test_every_job_runs_exactly_once_with_several_workers(omniq, omniq_redis_url):
    await omniq.partition_queue("many", N)
    ids = await omniq.publish_many(
        "many", [JobSpec(payload={"i": i}, gid=f"t{i % 7}" if i % 3 else None, group_limit=2)
                 for i in range(600)]
    )
    ledger: collections.Counter[str] = collections.Counter()

    async def handler(ctx: JobContext) -> None:
        ledger[ctx.job_id] += 1
        await asyncio.sleep(0)

    clients = [AsyncOmniq(url=omniq_redis_url) for _ in range(3)]
    try:
        workers = [Worker(c, "many", handler, concurrency=8, drain=True)
                   for c in clients for _ in range(2)]
        await within(asyncio.gather(*(w.run() for w in workers)), 60, "six workers")
    finally:
        for c in clients:
            await c.aclose()
    assert set(ledger) == set(ids)
    assert set(ledger.values()) == {1}
    assert sum(w.stats.completed for w in workers) == 600
    assert sum(w.stats.lost for w in workers) == 0
    stats = await omniq.stats("many")
    assert (stats.waiting_total, stats.active, stats.failed) == (0, 0, 0)


async def test_idle_worker_wakes_on_a_publish_to_any_partition(omniq):
    await omniq.partition_queue("wake", N)
    got: asyncio.Queue[str] = asyncio.Queue()
    reserved_once = asyncio.Event()
    real = omniq.routing.reserve

    async def spy(*args: Any, **kwargs: Any) -> Any:
        result = await real(*args, **kwargs)
        reserved_once.set()
        return result

    omniq.routing.reserve = spy  # type: ignore[method-assign]

    async def handler(ctx: JobContext) -> None:
        got.put_nowait(ctx.queue)

    # polling is slowed to a minute: only the wake-up signal can bring the jobs quickly
    async with Worker(omniq, "wake", handler, poll_max_s=60.0, maintenance_interval_s=60.0):
        await within(reserved_once.wait(), 10, "the worker's first (empty) reservation")
        channels = [qk(f"wake.p{p}", "wake") for p in range(N)]

        async def subscribed() -> bool:
            counts = await numsub(omniq.redis, *channels)
            return all(counts.get(c, 0) == 1 for c in channels)

        await poll_until(subscribed, 10, "the subscription to every partition's channel")
        for p in range(N):
            gid = next(f"w{i}" for i in range(1000) if part_of(f"w{i}") == p)
            await omniq.publish("wake", {"p": p}, gid=gid)
            assert await within(got.get(), 5, f"the job of partition {p}") == f"wake.p{p}"


async def test_worker_picks_up_a_layout_declared_after_it_started(omniq, raw, omniq_redis_url):
    got: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    first = asyncio.Event()
    real = omniq.routing.targets

    async def spy(queue: str) -> Any:
        result = await real(queue)
        first.set()
        return result

    omniq.routing.targets = spy  # type: ignore[method-assign]

    async def handler(ctx: JobContext) -> None:
        got.put_nowait((ctx.queue, ctx.logical_queue))

    async with Worker(omniq, "late", handler, maintenance_interval_s=0.05):
        await within(first.wait(), 10, "the worker to read the layout")
        async with AsyncOmniq(url=omniq_redis_url) as admin:
            await admin.partition_queue("late", N)
            await admin.publish_many("late", [{"i": i} for i in range(N)])
        seen = {await within(got.get(), 10, "a job of the partitioned queue")
                for _ in range(N)}
    assert seen == {(f"late.p{i}", "late") for i in range(N)}
    assert not raw.exists(qk("late", "wait"))


async def test_handler_exec_works_on_its_partition(omniq, raw):
    await omniq.partition_queue("ex", N)
    await omniq.publish("ex", {"a": 1}, gid="x")
    results: list[Any] = []

    async def handler(ctx: JobContext) -> dict[str, Any]:
        results.append(await ctx.exec.heartbeat())
        results.append((await ctx.exec.stats("ex")).active)
        if "child" not in ctx.payload:
            await ctx.exec.publish("ex", {"child": 1}, gid="x")
        return {"q": ctx.queue}

    worker = Worker(omniq, "ex", handler, drain=True)
    await within(worker.run(), 20, "the worker to drain")
    assert worker.stats.completed == 2
    assert results[1] == 1
    assert results[0] > 0
    jobs = raw.lrange(qk(f"ex.p{part_of('x')}", "completed"), 0, -1)
    assert len(jobs) == 2
