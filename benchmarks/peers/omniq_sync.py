"""Our scenarios through the blocking facade (``OmniqClient``, the documented OmniQ Python
API), with plain ``def`` handlers (they run in the worker's thread pool)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any

from benchmarks.peers import _harness as h
from omniq.client import OmniqClient

QUEUE = h.QUEUE
WARMUP = 100


def _client(url: str) -> OmniqClient:
    client = OmniqClient(redis_url=url)
    for i in range(WARMUP):
        client.publish(queue="warm", payload={"i": i})
    return client


def e1(url: str, n: int) -> dict[str, Any]:
    with _client(url) as client:
        publish = client.publish
        t0 = time.perf_counter()
        for i in range(n):
            publish(queue=QUEUE, payload={"i": i})
        elapsed = time.perf_counter() - t0
        assert client.stats(QUEUE).waiting == n
    return h.throughput(n, elapsed)


def e2(url: str, n: int) -> dict[str, Any]:
    with _client(url) as client:
        payloads = [{"i": i} for i in range(n)]
        t0 = time.perf_counter()
        client.publish_many(QUEUE, payloads)
        elapsed = time.perf_counter() - t0
        assert client.stats(QUEUE).waiting == n
    return h.throughput(n, elapsed, api="publish_many")


def _noop(ctx: Any) -> None:
    return None


def process(url: str, n: int, concurrency: int) -> dict[str, Any]:
    with OmniqClient(redis_url=url) as client:
        for start in range(0, n, 10_000):
            client.publish_many(QUEUE, [{"i": i} for i in range(start, min(n, start + 10_000))])
        t0 = time.perf_counter()
        worker = client.consume(queue=QUEUE, handler=_noop, concurrency=concurrency, drain=True,
                                handle_signals=False)
        elapsed = time.perf_counter() - t0
        assert worker.stats.completed == n, (worker.stats, n)
    return h.throughput(n, elapsed, concurrency=concurrency)


def p1(url: str, n: int) -> dict[str, Any]:
    return process(url, n, 1)


def p2(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    return process(url, n, concurrency)


def l1_worker(url: str, n: int) -> dict[str, Any]:
    lat = h.Latencies(n)

    def handler(ctx: Any) -> None:
        if lat.record(ctx.payload):
            os.kill(os.getpid(), signal.SIGTERM)  # consume's graceful stop

    def deadline() -> None:
        time.sleep(0.5)
        h.ready()
        time.sleep(h.L1_DEADLINE_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=deadline, daemon=True).start()
    with OmniqClient(redis_url=url) as client:
        client.consume(queue=QUEUE, handler=handler, concurrency=10)
    return lat.result()


def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    with OmniqClient(redis_url=url) as client:
        client.ping()
        return h.publish_paced_sync(lambda p: client.publish(queue=QUEUE, payload=p), n,
                                    interval_s)


def _stamp(ctx: Any) -> float:
    return time.time()  # W1: the result is the handler's clock just before it returns


def w1_worker(url: str) -> dict[str, Any]:
    """An idle ``consume`` (concurrency 10) until the runner writes "stop" on stdin."""
    def stopper() -> None:
        time.sleep(0.5)
        h.ready()
        with contextlib.suppress(OSError, ValueError):
            sys.stdin.readline()
        os.kill(os.getpid(), signal.SIGTERM)  # consume's graceful stop

    threading.Thread(target=stopper, daemon=True).start()
    with OmniqClient(redis_url=url) as client:
        worker = client.consume(queue=QUEUE, handler=_stamp, concurrency=10)
    return {"completed": worker.stats.completed}


def w1_wait(url: str, n: int, mode: str = "wait",
            warmup: int = h.W1_WARMUP) -> dict[str, Any]:
    """n times, one after the other: publish, then the blocking ``client.wait``."""
    lat = h.WaitLatencies()
    with OmniqClient(redis_url=url) as client:
        for i in range(-warmup, n):
            t0 = time.perf_counter()
            job_id = client.publish(queue=QUEUE, payload={"i": i})
            done = client.wait(QUEUE, job_id, timeout=30)
            if i >= 0:
                lat.record(t0, done)
    return lat.result(api="OmniqClient.wait")


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker, "l1_publish": l1_publish,
    "w1_worker": w1_worker, "w1_wait": w1_wait,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
