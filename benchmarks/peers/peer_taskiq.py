"""taskiq with taskiq-redis, run with its own venv.

Broker: ``RedisStreamBroker`` (a stream + consumer group, XACK after the task: the
taskiq-redis broker with acknowledgements, i.e. at-least-once like the others; the list
broker pops without ack). The consumer group is declared (``broker.startup()``) before
anything is published, since it reads from ``$``.

* Publish: ``task.kiq()``; no bulk API, so E2 is ``asyncio.gather`` of ``kiq`` by chunks of
  1,000, labelled as such.
* Process: taskiq's ``Receiver`` programmatically (what ``taskiq worker`` runs in each worker
  process), ``max_async_tasks=N``, defaults otherwise. The end is when the N-th task has run
  and the group has no pending (unacked) entry left. The connection pool is sized for the
concurrency, as taskiq-redis asks (its default of 50 deadlocks at 50 tasks).
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
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

WARMUP = 100
GATHER_CHUNK = 1000

_state: dict[str, Any] = {"count": 0, "n": 0, "done": None, "lat": None}


def _broker(url: str, concurrency: int = 100) -> RedisStreamBroker:
    # taskiq-redis: the pool "has to be at least number of workers + 1" (the listener holds
    # one connection); the default BlockingConnectionPool size (50) deadlocks at 50 tasks
    return RedisStreamBroker(url, queue_name=h.QUEUE, max_connection_pool_size=concurrency + 10)


def _register(broker: RedisStreamBroker) -> tuple[Any, Any]:
    @broker.task(task_name="noop")
    async def noop(i: int) -> None:
        _state["count"] += 1
        if _state["count"] == _state["n"] and _state["done"] is not None:
            _state["done"].set()

    @broker.task(task_name="lat")
    async def lat(p: dict[str, Any]) -> None:
        if _state["lat"] is not None and _state["lat"].record(p):
            _state["done"].set()

    return noop, lat


async def _started(url: str, concurrency: int = 100) -> tuple[RedisStreamBroker, Any, Any]:
    broker = _broker(url, concurrency)
    noop, lat = _register(broker)
    await broker.startup()
    return broker, noop, lat


async def e1(url: str, n: int) -> dict[str, Any]:
    broker, noop, _ = await _started(url)
    for i in range(WARMUP):
        await noop.kiq(-1 - i)
    t0 = time.perf_counter()
    for i in range(n):
        await noop.kiq(i)
    elapsed = time.perf_counter() - t0
    await broker.shutdown()
    return h.throughput(n, elapsed)


async def _gather_kiq(noop: Any, lo: int, hi: int) -> None:
    for start in range(lo, hi, GATHER_CHUNK):
        await asyncio.gather(*(noop.kiq(i) for i in range(start, min(hi, start + GATHER_CHUNK))))


async def e2(url: str, n: int) -> dict[str, Any]:
    broker, noop, _ = await _started(url)
    for i in range(WARMUP):
        await noop.kiq(-1 - i)
    t0 = time.perf_counter()
    await _gather_kiq(noop, 0, n)
    elapsed = time.perf_counter() - t0
    await broker.shutdown()
    return h.throughput(n, elapsed, api=f"gather(kiq) x{GATHER_CHUNK} (no bulk API)")


async def _pending(broker: RedisStreamBroker) -> int:
    from redis.asyncio import Redis

    async with Redis(connection_pool=broker.connection_pool) as r:
        info = await r.xpending(h.QUEUE, broker.consumer_group_name)
    return int(info["pending"])


async def process(url: str, n: int, concurrency: int) -> dict[str, Any]:
    broker, noop, _ = await _started(url, concurrency)
    await _gather_kiq(noop, 0, n)
    _state.update(count=0, n=n, done=asyncio.Event())
    t0 = time.perf_counter()
    _state["task"] = asyncio.create_task(run_receiver_task(broker, max_async_tasks=concurrency))
    try:
        await asyncio.wait_for(_state["done"].wait(), 300)
    except TimeoutError:
        return {"error": f"timeout: {_state['count']} of {n} ran"}
    deadline = time.perf_counter() + 30
    while await _pending(broker) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.0005)
    elapsed = time.perf_counter() - t0
    # the receiver's cancellation can hang (its thread pool / prefetcher): no clean-up
    h.emit(h.throughput(n, elapsed, concurrency=concurrency, broker="RedisStreamBroker"))
    os._exit(0)


async def p1(url: str, n: int) -> dict[str, Any]:
    return await process(url, n, 1)


async def p2(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    return await process(url, n, concurrency)


async def l1_worker(url: str, n: int) -> dict[str, Any]:
    broker, _, _ = await _started(url)
    lat = h.Latencies(n)
    _state.update(lat=lat, done=asyncio.Event())
    _state["task"] = asyncio.create_task(run_receiver_task(broker))
    await asyncio.sleep(0.5)
    h.ready()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_state["done"].wait(), h.L1_DEADLINE_S)
    h.emit(lat.result())
    os._exit(0)


async def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    broker, _, lat = await _started(url)

    async def publish(payload: dict[str, Any]) -> None:
        await lat.kiq(payload)

    result = await h.publish_paced_async(publish, n, interval_s)
    await broker.shutdown()
    return result


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker, "l1_publish": l1_publish,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
