"""rq (blocking, redis-py), run with its own venv.

* Publish: ``Queue.enqueue``; E2: ``Queue.enqueue_many`` (one pipeline).
* Process: ``SimpleWorker`` (runs jobs in the worker process; the default ``Worker`` forks a
  child per job) in burst mode, logging at WARNING (``rq worker --quiet``; the default INFO
  level writes two log lines per job). rq has no in-process concurrency (concurrency means
  more worker processes), so P2 is n/a.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h
from redis import Redis
from rq import Queue, SimpleWorker
from rq.registry import FinishedJobRegistry
from rq_jobs import lat, noop

WARMUP = 100


def _conn(url: str) -> Redis:
    host, port = h.url_host_port(url)
    return Redis(host=host, port=port)


def e1(url: str, n: int) -> dict[str, Any]:
    conn = _conn(url)
    warm = Queue("warm", connection=conn)
    for i in range(WARMUP):
        warm.enqueue(noop, i=i)
    q = Queue(h.QUEUE, connection=conn)
    t0 = time.perf_counter()
    for i in range(n):
        q.enqueue(noop, i=i)
    elapsed = time.perf_counter() - t0
    return h.throughput(n, elapsed)


def _enqueue_many(q: Queue, lo: int, hi: int) -> None:
    q.enqueue_many([Queue.prepare_data(noop, kwargs={"i": i}) for i in range(lo, hi)])


def e2(url: str, n: int) -> dict[str, Any]:
    conn = _conn(url)
    warm = Queue("warm", connection=conn)
    for i in range(WARMUP):
        warm.enqueue(noop, i=i)
    q = Queue(h.QUEUE, connection=conn)
    t0 = time.perf_counter()
    _enqueue_many(q, 0, n)
    elapsed = time.perf_counter() - t0
    return h.throughput(n, elapsed, api="enqueue_many")


def p1(url: str, n: int) -> dict[str, Any]:
    conn = _conn(url)
    q = Queue(h.QUEUE, connection=conn)
    for start in range(0, n, 10_000):
        _enqueue_many(q, start, min(n, start + 10_000))
    worker = SimpleWorker([q], connection=conn)
    t0 = time.perf_counter()
    worker.work(burst=True, logging_level="WARNING")
    elapsed = time.perf_counter() - t0
    done = FinishedJobRegistry(queue=q).count
    assert done == n, (done, n)
    return h.throughput(n, elapsed, concurrency=1, worker="SimpleWorker")


def p2(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    return h.na("no in-process concurrency: one job at a time per worker process "
                "(concurrency = more processes)")


def l1_worker(url: str, n: int) -> dict[str, Any]:
    import rq_jobs

    rq_jobs.latencies = h.Latencies(n)
    conn = _conn(url)
    q = Queue(h.QUEUE, connection=conn)

    def later() -> None:
        time.sleep(0.5)
        h.ready()
        time.sleep(h.L1_DEADLINE_S)
        assert rq_jobs.latencies is not None
        h.emit(rq_jobs.latencies.result())
        os._exit(0)

    threading.Thread(target=later, daemon=True).start()
    SimpleWorker([q], connection=conn).work(logging_level="WARNING")
    return h.na("worker stopped early")


def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    q = Queue(h.QUEUE, connection=_conn(url))
    return h.publish_paced_sync(lambda p: q.enqueue(lat, p=p), n, interval_s)


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker, "l1_publish": l1_publish,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
