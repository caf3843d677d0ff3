"""BullMQ for Python (PyPI ``bullmq``, asyncio, redis-py), run with its own venv.

* Publish: ``Queue.add``; E2: ``Queue.addBulk`` (one call).
* Process: ``Worker(name, processor, {"concurrency": N})``, defaults otherwise (completed jobs
  are kept, as BullMQ does by default). Completion time comes from the ``completed`` event,
  emitted after the job is moved to completed.
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
from bullmq import Queue, Worker

WARMUP = 100


def _opts(url: str) -> dict[str, Any]:
    return {"connection": url}


async def _warm(url: str) -> None:
    warm = Queue("warm", _opts(url))
    for i in range(WARMUP):
        await warm.add("noop", {"i": i})
    await warm.close()


async def e1(url: str, n: int) -> dict[str, Any]:
    await _warm(url)
    queue = Queue(h.QUEUE, _opts(url))
    for i in range(10):
        await queue.add("noop", {"i": -1 - i})
    t0 = time.perf_counter()
    for i in range(n):
        await queue.add("noop", {"i": i})
    elapsed = time.perf_counter() - t0
    await queue.close()
    return h.throughput(n, elapsed)


async def e2(url: str, n: int) -> dict[str, Any]:
    await _warm(url)
    queue = Queue(h.QUEUE, _opts(url))
    for i in range(10):
        await queue.add("noop", {"i": -1 - i})
    jobs = [{"name": "noop", "data": {"i": i}} for i in range(n)]
    t0 = time.perf_counter()
    await queue.addBulk(jobs)
    elapsed = time.perf_counter() - t0
    await queue.close()
    return h.throughput(n, elapsed, api="addBulk")


async def process(url: str, n: int, concurrency: int) -> dict[str, Any]:
    queue = Queue(h.QUEUE, _opts(url))
    for start in range(0, n, 10_000):
        await queue.addBulk([{"name": "noop", "data": {"i": i}}
                             for i in range(start, min(n, start + 10_000))])
    await queue.close()
    completed = 0
    t_end = 0.0
    all_done = asyncio.Event()

    async def processor(job: Any, token: str) -> None:
        return None

    def on_completed(job: Any, result: Any) -> None:
        nonlocal completed, t_end
        completed += 1
        if completed == n:
            t_end = time.perf_counter()
            all_done.set()

    t0 = time.perf_counter()
    worker = Worker(h.QUEUE, processor, {**_opts(url), "concurrency": concurrency})
    worker.on("completed", on_completed)
    await asyncio.wait_for(all_done.wait(), 600)
    h.emit(h.throughput(n, t_end - t0, concurrency=concurrency))
    os._exit(0)


async def p1(url: str, n: int) -> dict[str, Any]:
    return await process(url, n, 1)


async def p2(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    return await process(url, n, concurrency)


async def l1_worker(url: str, n: int) -> dict[str, Any]:
    lat = h.Latencies(n)
    done = asyncio.Event()

    async def processor(job: Any, token: str) -> None:
        if lat.record(job.data):
            done.set()

    worker = Worker(h.QUEUE, processor, {**_opts(url), "concurrency": 10})
    await asyncio.sleep(0.5)
    h.ready()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), h.L1_DEADLINE_S)
    assert worker
    h.emit(lat.result())
    os._exit(0)


async def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    queue = Queue(h.QUEUE, _opts(url))

    async def publish(payload: dict[str, Any]) -> None:
        await queue.add("lat", payload)

    result = await h.publish_paced_async(publish, n, interval_s)
    await queue.close()
    return result


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker, "l1_publish": l1_publish,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
