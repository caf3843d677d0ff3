"""Our scenarios through the asyncio API (``AsyncOmniq`` + ``Worker``).

Run by the runner as ``python -m benchmarks.peers.omniq_async '<json params>'`` with this
repository's interpreter; the functions are also imported by the smoke test.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

from benchmarks.peers import _harness as h
from omniq import AsyncOmniq
from omniq._scripts import SCRIPTS
from omniq.aio.worker import Worker

QUEUE = h.QUEUE
WARMUP = 100


async def _warm(client: AsyncOmniq) -> None:
    """Connect and load the scripts (on a separate queue)."""
    for i in range(WARMUP):
        await client.publish("warm", {"i": i})


def _client(url: str, events_maxlen: int | None) -> AsyncOmniq:
    """The client; ``events_maxlen`` None keeps the default (events on), 0 turns them off."""
    if events_maxlen is None:
        return AsyncOmniq(url=url)
    return AsyncOmniq(url=url, events_maxlen=events_maxlen)


async def e1(url: str, n: int, events_maxlen: int | None = None) -> dict[str, Any]:
    """n sequential awaited publishes."""
    async with _client(url, events_maxlen) as client:
        await _warm(client)
        publish = client.publish
        t0 = time.perf_counter()
        for i in range(n):
            await publish(QUEUE, {"i": i})
        elapsed = time.perf_counter() - t0
        assert (await client.stats(QUEUE)).waiting == n
        maxlen = client.events_maxlen
    return h.throughput(n, elapsed, events_maxlen=maxlen)


async def e2(url: str, n: int) -> dict[str, Any]:
    """n jobs through publish_many (one script call per 1,000 jobs)."""
    async with AsyncOmniq(url=url) as client:
        await _warm(client)
        payloads = [{"i": i} for i in range(n)]
        t0 = time.perf_counter()
        await client.publish_many(QUEUE, payloads)
        elapsed = time.perf_counter() - t0
        assert (await client.stats(QUEUE)).waiting == n
    return h.throughput(n, elapsed, api="publish_many")


async def prefill(client: AsyncOmniq, n: int, **options: Any) -> None:
    for start in range(0, n, 10_000):
        await client.publish_many(
            QUEUE, [{"i": i} for i in range(start, min(n, start + 10_000))], **options
        )


async def _noop(ctx: Any) -> None:
    return None


async def process(url: str, n: int, concurrency: int,
                  events_maxlen: int | None = None) -> dict[str, Any]:
    """Drain n queued no-op jobs with one worker; from worker start to its last ack."""
    async with _client(url, events_maxlen) as client:
        await prefill(client, n)
        worker = Worker(client, QUEUE, _noop, concurrency=concurrency, drain=True)
        t0 = time.perf_counter()
        await worker.run()  # drain=True: returns once empty, after the last ack
        elapsed = time.perf_counter() - t0
        done = worker.stats.completed
        assert done == n, (done, n)
        maxlen = client.events_maxlen
    return h.throughput(n, elapsed, concurrency=concurrency, events_maxlen=maxlen)


async def p1(url: str, n: int, events_maxlen: int | None = None) -> dict[str, Any]:
    return await process(url, n, 1, events_maxlen)


async def p2(url: str, n: int, concurrency: int = 50,
             events_maxlen: int | None = None) -> dict[str, Any]:
    return await process(url, n, concurrency, events_maxlen)


async def l1_worker(url: str, n: int) -> dict[str, Any]:
    """An idle worker; handler start latency of the publisher's jobs."""
    lat = h.Latencies(n)
    done = asyncio.Event()

    async def handler(ctx: Any) -> None:
        if lat.record(ctx.payload):
            done.set()

    async with AsyncOmniq(url=url) as client:
        worker = Worker(client, QUEUE, handler, concurrency=10)
        await worker.start()
        await asyncio.sleep(0.5)
        h.ready()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), h.L1_DEADLINE_S)
        await worker.stop()
    return lat.result()


async def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    async with AsyncOmniq(url=url) as client:
        await client.ping()

        async def publish(payload: dict[str, Any]) -> None:
            await client.publish(QUEUE, payload)

        return await h.publish_paced_async(publish, n, interval_s)


async def _stamp(ctx: Any) -> float:
    return time.time()  # W1: the result is the handler's clock just before it returns


async def w1_worker(url: str) -> dict[str, Any]:
    """An idle worker for W1 (concurrency 10, as in L1) until the runner says stop."""
    async with AsyncOmniq(url=url) as client:
        worker = Worker(client, QUEUE, _stamp, concurrency=10)
        await worker.start()
        await asyncio.sleep(0.5)
        h.ready()
        await h.until_stop()
        await worker.stop()
        done = worker.stats.completed
    return {"completed": done}


async def w1_wait(url: str, n: int, mode: str = "wait") -> dict[str, Any]:
    """n times, one after the other: publish, then ``await omniq.wait(q, job_id)``."""
    lat = h.WaitLatencies()
    async with AsyncOmniq(url=url) as client:
        for i in range(-h.W1_WARMUP, n):
            t0 = time.perf_counter()
            job_id = await client.publish(QUEUE, {"i": i})
            done = await client.wait(QUEUE, job_id, timeout=30)
            if i >= 0:
                lat.record(t0, done)
    return lat.result(api="AsyncOmniq.wait")


async def h1(url: str, jobs: int, timeout_ms: int) -> dict[str, Any]:
    """``jobs`` in-flight jobs whose handlers block; runs until the runner says stop."""
    started = 0
    all_started = asyncio.Event()
    forever = asyncio.Event()

    async def handler(ctx: Any) -> None:
        nonlocal started
        started += 1
        if started == jobs:
            all_started.set()
        await forever.wait()

    async with AsyncOmniq(url=url) as client:
        await prefill(client, jobs, timeout_ms=timeout_ms)
        worker = Worker(client, QUEUE, handler, concurrency=jobs)
        await worker.start()
        await asyncio.wait_for(all_started.wait(), 30)
        h.ready({
            "hb_interval_s": timeout_ms / 3000.0,
            "hb_shas": [SCRIPTS["heartbeat"].sha],
            "in_flight": worker.in_flight,
        })
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # the runner's "stop"
        worker.request_stop(0)
        worker.request_stop(0)  # second request: cancel the blocked handlers now
        await worker.stop()
    return {"jobs": jobs, "started": started}


async def m1(url: str, n: int) -> dict[str, Any]:
    """Leave n waiting jobs (the runner reads used_memory before and after)."""
    async with AsyncOmniq(url=url) as client:
        t0 = time.perf_counter()
        await prefill(client, n)
        elapsed = time.perf_counter() - t0
        assert (await client.stats(QUEUE)).waiting == n
    return {"n": n, "seconds": elapsed}


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker,
    "l1_publish": l1_publish, "h1": h1, "m1": m1, "w1_worker": w1_worker, "w1_wait": w1_wait,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
