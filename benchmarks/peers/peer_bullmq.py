"""BullMQ for Python (PyPI ``bullmq``, asyncio, redis-py), run with its own venv.

* Publish: ``Queue.add``; E2: ``Queue.addBulk`` (one call).
* Process: ``Worker(name, processor, {"concurrency": N})``, defaults otherwise (completed jobs
  are kept, as BullMQ does by default). Completion time comes from the ``completed`` event,
  emitted after the job is moved to completed.
* FI: ``FlowProducer.add``; the publisher learns that the parent completed from a
  ``QueueEvents`` ``completed`` event (what Node's ``job.waitUntilFinished`` listens to; the
  Python port has no such method); the parent reads ``job.getChildrenValues()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h
import redis.asyncio as aioredis
from bullmq import FlowProducer, Queue, QueueEvents, Worker

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


FI_QUEUE = "fi"
FI_WAIT_S = 60.0
_SCRIPT_CMDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")


async def _server_counters(probe: Any) -> tuple[float, float, float]:
    """Server time in script calls and in all commands (but INFO), and its CPU time (us)."""
    stats = await probe.info("commandstats")
    usec = {k.removeprefix("cmdstat_"): float(v.get("usec", 0)) for k, v in stats.items()}
    script = sum(usec.get(c, 0.0) for c in _SCRIPT_CMDS)
    every = sum(v for k, v in usec.items() if k != "info")
    cpu = await probe.info("cpu")
    return script, every, (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


async def fi_worker(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    """An idle worker on the flow queue until the runner says stop; the parent checks that
    it sees all n children's values."""
    parents = 0

    async def processor(job: Any, token: str) -> Any:
        nonlocal parents
        if job.name != "parent":
            return {"n": job.data["i"]}
        values = await job.getChildrenValues()
        if len(values) != n:
            raise RuntimeError(f"parent saw {len(values)} children values, not {n}")
        parents += 1
        return {"children": len(values)}

    worker = Worker(FI_QUEUE, processor, {**_opts(url), "concurrency": concurrency})
    await asyncio.sleep(0.5)
    h.ready()
    await h.until_stop()
    await worker.close()
    return {"parents": parents}


async def fi_publish(url: str, n: int, flows: int = 7, warmup: int = 3) -> dict[str, Any]:
    """``warmup`` unmeasured flows, then ``flows`` flows one after the other: each
    ``FlowProducer.add`` (timed: publish) of a parent with n children, then its
    ``completed`` event (timed from the start of the add: the flow)."""
    producer = FlowProducer(_opts(url))
    events = QueueEvents(FI_QUEUE, _opts(url))
    probe = aioredis.Redis.from_url(url)
    finished: dict[str, asyncio.Future[Any]] = {}
    loop = asyncio.get_running_loop()

    def future(job_id: str) -> asyncio.Future[Any]:
        return finished.setdefault(job_id, loop.create_future())

    def on_completed(args: dict[str, Any], entry_id: str) -> None:
        fut = future(args["jobId"])
        if not fut.done():
            fut.set_result(args.get("returnvalue"))

    events.on("completed", on_completed)
    await asyncio.sleep(0.5)  # (QueueEvents reads from "$": let its XREAD start)
    publish_ms: list[float] = []
    flow_ms: list[float] = []
    script_us: list[float] = []
    server_us: list[float] = []
    cpu_us: list[float] = []
    jobs = n + 1
    for k in range(-warmup, flows):
        children = [{"name": "child", "queueName": FI_QUEUE, "data": {"i": i}}
                    for i in range(n)]
        before = await _server_counters(probe)
        t0 = time.perf_counter()
        node = await producer.add({"name": "parent", "queueName": FI_QUEUE,
                                   "data": {"parent": True}, "children": children})
        t1 = time.perf_counter()
        result = await asyncio.wait_for(future(node["job"].id), FI_WAIT_S)
        t2 = time.perf_counter()
        after = await _server_counters(probe)
        assert result == {"children": n}, result
        assert len(node["children"]) == n, len(node["children"])
        if k < 0:
            continue
        publish_ms.append((t1 - t0) * 1000.0)
        flow_ms.append((t2 - t0) * 1000.0)
        script_us.append((after[0] - before[0]) / jobs)
        server_us.append((after[1] - before[1]) / jobs)
        cpu_us.append((after[2] - before[2]) / jobs)
    await events.close()
    await producer.close()
    await probe.aclose()
    flow = statistics.median(flow_ms)
    return {"n": n, "flows": flows, "publish_ms": statistics.median(publish_ms),
            "flow_ms": flow, "flows_per_s": 1000.0 / flow, "jobs_per_s": jobs * 1000.0 / flow,
            "script_us_per_job": statistics.median(script_us),
            "server_us_per_job": statistics.median(server_us),
            "server_cpu_us_per_job": statistics.median(cpu_us),
            "publish_ms_all": publish_ms, "flow_ms_all": flow_ms,
            "api": "FlowProducer.add + QueueEvents completed"}


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker, "l1_publish": l1_publish,
    "fi_worker": fi_worker, "fi_publish": fi_publish,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
