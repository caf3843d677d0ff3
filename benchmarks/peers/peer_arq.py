"""arq (asyncio, redis-py), run with its own venv.

* Publish: ``ArqRedis.enqueue_job``. arq has no bulk enqueue: E2 is ``asyncio.gather`` of
  ``enqueue_job`` by chunks of 1,000 (what arq users do), labelled as such.
* Process: ``Worker(burst=True, max_jobs=concurrency)``. arq's worker polls the queue every
  ``poll_delay`` (default 0.5 s) and, in burst mode, sleeps out the rest of that period after
  each batch even while jobs are waiting; for P1/P2 ``poll_delay`` is lowered to 10 ms so the
  measurement is not dominated by that sleep. L1 uses the defaults (0.5 s poll), which is what
  an idle arq worker does. Completion time comes from the ``after_job_end`` hook (after the
  result is stored and the job removed from the queue).
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
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

QUEUE = "arq:queue"
WARMUP = 100
GATHER_CHUNK = 1000
PROCESS_POLL_DELAY_S = 0.01


def _settings(url: str) -> RedisSettings:
    host, port = h.url_host_port(url)
    return RedisSettings(host=host, port=port)


async def noop(ctx: dict[str, Any], i: int) -> None:
    return None


async def e1(url: str, n: int) -> dict[str, Any]:
    pool = await create_pool(_settings(url))
    for i in range(WARMUP):
        await pool.enqueue_job("noop", i, _queue_name="warm")
    t0 = time.perf_counter()
    for i in range(n):
        await pool.enqueue_job("noop", i)
    elapsed = time.perf_counter() - t0
    await pool.aclose()
    return h.throughput(n, elapsed)


async def _gather_enqueue(pool: Any, lo: int, hi: int) -> None:
    for start in range(lo, hi, GATHER_CHUNK):
        await asyncio.gather(*(pool.enqueue_job("noop", i)
                               for i in range(start, min(hi, start + GATHER_CHUNK))))


async def e2(url: str, n: int) -> dict[str, Any]:
    pool = await create_pool(_settings(url))
    for i in range(WARMUP):
        await pool.enqueue_job("noop", i, _queue_name="warm")
    t0 = time.perf_counter()
    await _gather_enqueue(pool, 0, n)
    elapsed = time.perf_counter() - t0
    await pool.aclose()
    return h.throughput(n, elapsed, api=f"gather(enqueue_job) x{GATHER_CHUNK} (no bulk API)")


async def process(url: str, n: int, concurrency: int) -> dict[str, Any]:
    pool = await create_pool(_settings(url))
    await _gather_enqueue(pool, 0, n)
    await pool.aclose()
    finished = 0
    t_end = 0.0

    async def after_job_end(ctx: dict[str, Any]) -> None:
        nonlocal finished, t_end
        finished += 1
        if finished == n:
            t_end = time.perf_counter()

    worker = Worker(
        functions=[noop], redis_settings=_settings(url), burst=True, max_jobs=concurrency,
        poll_delay=PROCESS_POLL_DELAY_S, handle_signals=False, after_job_end=after_job_end,
    )
    t0 = time.perf_counter()
    await worker.main()
    t_end = t_end or time.perf_counter()
    await worker.close()
    assert finished == n, (finished, n)
    return h.throughput(n, t_end - t0, concurrency=concurrency,
                        poll_delay_s=PROCESS_POLL_DELAY_S)


async def p1(url: str, n: int) -> dict[str, Any]:
    return await process(url, n, 1)


async def p2(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    return await process(url, n, concurrency)


async def l1_worker(url: str, n: int) -> dict[str, Any]:
    lat = h.Latencies(n)
    done = asyncio.Event()

    async def lat_job(ctx: dict[str, Any], payload: dict[str, Any]) -> None:
        if lat.record(payload):
            done.set()

    lat_job.__qualname__ = lat_job.__name__ = "lat"
    worker = Worker(functions=[lat_job], redis_settings=_settings(url), handle_signals=False)
    task = asyncio.create_task(worker.main())
    await asyncio.sleep(0.5)
    h.ready({"poll_delay_s": worker.poll_delay_s})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), h.L1_DEADLINE_S)
    assert task
    h.emit(lat.result())  # before clean-up: closing arq's worker cancels into its job tasks
    os._exit(0)


async def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    pool = await create_pool(_settings(url))

    async def publish(payload: dict[str, Any]) -> None:
        await pool.enqueue_job("lat", payload)

    result = await h.publish_paced_async(publish, n, interval_s)
    await pool.aclose()
    return result


async def stamp(ctx: dict[str, Any]) -> float:
    return time.time()  # W1: the result is the handler's clock just before it returns


async def w1_worker(url: str) -> dict[str, Any]:
    """An idle worker with arq's defaults (0.5 s poll) until the runner says stop."""
    worker = Worker(functions=[stamp], redis_settings=_settings(url), handle_signals=False)
    task = asyncio.create_task(worker.main())
    await asyncio.sleep(0.5)
    h.ready({"poll_delay_s": worker.poll_delay_s})
    await h.until_stop()
    h.emit({"completed": worker.jobs_complete})
    assert task
    os._exit(0)  # closing arq's worker cancels into its job tasks


async def w1_wait(url: str, n: int, mode: str = "result",
                  warmup: int = h.W1_WARMUP) -> dict[str, Any]:
    """n times, one after the other: ``enqueue_job``, then ``await job.result()`` with its
    default ``poll_delay`` (0.5 s)."""
    pool = await create_pool(_settings(url))
    lat = h.WaitLatencies()
    for i in range(-warmup, n):
        t0 = time.perf_counter()
        job = await pool.enqueue_job("stamp")
        assert job is not None
        done = await job.result(timeout=30)
        if i >= 0:
            lat.record(t0, done)
    await pool.aclose()
    return lat.result(api="Job.result(timeout=30) (default poll_delay 0.5 s)")


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker, "l1_publish": l1_publish,
    "w1_worker": w1_worker, "w1_wait": w1_wait,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
