"""saq (asyncio, redis-py), run with its own venv.

* Publish: ``Queue.enqueue``. saq has no bulk enqueue; its own ``Queue.map`` enqueues with
  ``asyncio.gather``, so E2 is ``asyncio.gather`` of ``enqueue`` by chunks of 1,000 (saq
  throttles them to ``max_concurrent_ops`` = 20 in flight), labelled as such.
* Process: ``Worker(queue, functions, concurrency=N)``, defaults otherwise (blocking BLMOVE
  dequeue, no polling). Completion time comes from the ``after_process`` hook, which runs
  after ``job.finish`` (the job's final state is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h
from saq import Queue, Worker

WARMUP = 100
GATHER_CHUNK = 1000
REFRESH_WAIT_S = 5.0  # W1: until_complete of Job.refresh


async def noop(ctx: dict[str, Any], *, i: int) -> None:
    return None


async def _queue(url: str, name: str = h.QUEUE) -> Queue:
    queue = Queue.from_url(url, name=name)
    await queue.connect()
    return queue


async def _warm(url: str) -> None:
    warm = await _queue(url, "warm")
    for i in range(WARMUP):
        await warm.enqueue("noop", i=i)
    await warm.disconnect()


async def e1(url: str, n: int) -> dict[str, Any]:
    await _warm(url)
    queue = await _queue(url)
    for i in range(10):
        await queue.enqueue("noop", i=-1 - i)  # connect and load scripts on this queue too
    t0 = time.perf_counter()
    for i in range(n):
        await queue.enqueue("noop", i=i)
    elapsed = time.perf_counter() - t0
    await queue.disconnect()
    return h.throughput(n, elapsed)


async def _gather_enqueue(queue: Queue, lo: int, hi: int) -> None:
    for start in range(lo, hi, GATHER_CHUNK):
        await asyncio.gather(*(queue.enqueue("noop", i=i)
                               for i in range(start, min(hi, start + GATHER_CHUNK))))


async def e2(url: str, n: int) -> dict[str, Any]:
    await _warm(url)
    queue = await _queue(url)
    for i in range(10):
        await queue.enqueue("noop", i=-1 - i)
    t0 = time.perf_counter()
    await _gather_enqueue(queue, 0, n)
    elapsed = time.perf_counter() - t0
    await queue.disconnect()
    return h.throughput(n, elapsed, api=f"gather(enqueue) x{GATHER_CHUNK} (no bulk API)")


async def process(url: str, n: int, concurrency: int) -> dict[str, Any]:
    queue = await _queue(url)
    await _gather_enqueue(queue, 0, n)
    finished = 0
    all_done = asyncio.Event()
    t_end = 0.0

    async def after_process(ctx: dict[str, Any]) -> None:
        nonlocal finished, t_end
        finished += 1
        if finished == n:
            t_end = time.perf_counter()
            all_done.set()

    worker = Worker(queue, functions=[noop], concurrency=concurrency,
                    after_process=after_process)
    t0 = time.perf_counter()
    task = asyncio.create_task(worker.start())
    await asyncio.wait_for(all_done.wait(), 600)
    await worker.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await queue.disconnect()
    return h.throughput(n, t_end - t0, concurrency=concurrency)


async def p1(url: str, n: int) -> dict[str, Any]:
    return await process(url, n, 1)


async def p2(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    return await process(url, n, concurrency)


async def l1_worker(url: str, n: int) -> dict[str, Any]:
    lat = h.Latencies(n)
    done = asyncio.Event()

    async def lat_job(ctx: dict[str, Any], *, p: dict[str, Any]) -> None:
        if lat.record(p):
            done.set()

    queue = await _queue(url)
    worker = Worker(queue, functions=[("lat", lat_job)])
    task = asyncio.create_task(worker.start())
    await asyncio.sleep(0.5)
    h.ready()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), h.L1_DEADLINE_S)
    await worker.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await queue.disconnect()
    return lat.result()


async def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    queue = await _queue(url)

    async def publish(payload: dict[str, Any]) -> None:
        await queue.enqueue("lat", p=payload)

    result = await h.publish_paced_async(publish, n, interval_s)
    await queue.disconnect()
    return result


async def stamp(ctx: dict[str, Any]) -> float:
    return time.time()  # W1: the result is the handler's clock just before it returns


async def w1_worker(url: str) -> dict[str, Any]:
    """An idle worker (concurrency 10, as in L1) until the runner says stop."""
    queue = await _queue(url)
    worker = Worker(queue, functions=[stamp], concurrency=10)
    task = asyncio.create_task(worker.start())
    await asyncio.sleep(0.5)
    h.ready()
    await h.until_stop()
    await worker.stop()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await queue.disconnect()
    return {}


async def w1_wait(url: str, n: int, mode: str = "apply",
                  warmup: int = h.W1_WARMUP) -> dict[str, Any]:
    """n times, one after the other: ``apply`` (enqueue, then poll every 0.5 s, its
    default) or ``enqueue`` then ``job.refresh(until_complete=...)`` (pub/sub)."""
    queue = await _queue(url)
    lat = h.WaitLatencies()
    missed = 0
    for i in range(-warmup, n):
        t0 = time.perf_counter()
        if mode == "apply":
            done = await queue.apply("stamp", timeout=30)
        else:
            job = await queue.enqueue("stamp")
            assert job is not None
            try:
                await job.refresh(until_complete=REFRESH_WAIT_S)
            except TimeoutError:
                # the job finished between refresh's read and its subscription: saq's
                # notification was missed and refresh waited out until_complete
                missed += i >= 0
                await job.refresh()
            assert job.status == "complete", job.status
            done = job.result
        if i >= 0:
            lat.record(t0, done)
    await queue.disconnect()
    if mode == "apply":
        return lat.result(api="Queue.apply(timeout=30) (default poll_interval 0.5 s)")
    return lat.result(api=f"enqueue + Job.refresh(until_complete={REFRESH_WAIT_S:g}) (pub/sub)",
                      missed_wakeups=missed)


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker, "l1_publish": l1_publish,
    "w1_worker": w1_worker, "w1_wait": w1_wait,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
