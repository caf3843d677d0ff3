"""The official OmniQ Python SDK (PyPI ``omniq==4.0.0``), run ONLY with its own venv:
``benchmarks/.venvs/official/bin/python -I benchmarks/peers/peer_official.py '<json>'``.

The SDK is blocking and its ``consume`` loop runs one job at a time (a heartbeat thread per
job), has no concurrency option and never returns on an empty queue. Concurrency N is
therefore N ``consume`` loops in N threads, one ``OmniqClient`` each; the measuring thread
stops the process when done. There is no bulk publish.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h

import omniq
from omniq.client import OmniqClient

QUEUE = h.QUEUE
WARMUP = 100

_here = os.path.realpath(sys.prefix) + os.sep
assert os.path.realpath(omniq.__file__).startswith(_here), "not the official omniq package"


def _client(url: str) -> OmniqClient:
    host, port = h.url_host_port(url)
    return OmniqClient(host=host, port=port)


def e1(url: str, n: int) -> dict[str, Any]:
    client = _client(url)
    for i in range(WARMUP):
        client.publish(queue="warm", payload={"i": i})
    t0 = time.perf_counter()
    for i in range(n):
        client.publish(queue=QUEUE, payload={"i": i})
    elapsed = time.perf_counter() - t0
    return h.throughput(n, elapsed)


def e2(url: str, n: int) -> dict[str, Any]:
    return h.na("no bulk API (one EVALSHA round trip per publish; no pipeline support)")


def prefill(url: str, n: int, **options: Any) -> None:
    """n sequential publishes from 8 threads (not timed)."""
    def run(lo: int, hi: int) -> None:
        c = _client(url)
        for i in range(lo, hi):
            c.publish(queue=QUEUE, payload={"i": i}, **options)
        c.close()

    step = -(-n // 8)
    threads = [threading.Thread(target=run, args=(lo, min(n, lo + step)))
               for lo in range(0, n, step)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _wait_settled(url: str, deadline: float) -> None:
    """Poll until nothing is waiting or active (the last ack has landed)."""
    import redis

    host, port = h.url_host_port(url)
    r = redis.Redis(host=host, port=port)
    base = "{" + QUEUE + "}"
    while time.perf_counter() < deadline:
        pipe = r.pipeline(transaction=False)
        pipe.llen(base + ":wait")
        pipe.zcard(base + ":active")
        wait, active = pipe.execute()
        if wait == 0 and active == 0:
            return
        time.sleep(0.0005)


def process(url: str, n: int, concurrency: int) -> dict[str, Any]:
    prefill(url, n)
    done = threading.Event()
    count = 0
    lock = threading.Lock()

    def handler(ctx: Any) -> None:
        nonlocal count
        with lock:
            count += 1
            if count == n:
                done.set()

    clients = [_client(url) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for c in clients:
        threading.Thread(target=c.consume, kwargs={"queue": QUEUE, "handler": handler},
                         daemon=True).start()
    done.wait(600)
    _wait_settled(url, time.perf_counter() + 30)
    elapsed = time.perf_counter() - t0
    h.emit(h.throughput(n, elapsed, concurrency=concurrency, threads=concurrency))
    os._exit(0)


def p1(url: str, n: int) -> dict[str, Any]:
    return process(url, n, 1)


def p2(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    return process(url, n, concurrency)


def l1_worker(url: str, n: int) -> dict[str, Any]:
    lat = h.Latencies(n)
    done = threading.Event()

    def handler(ctx: Any) -> None:
        if lat.record(ctx.payload):
            done.set()

    client = _client(url)
    threading.Thread(target=client.consume, kwargs={"queue": QUEUE, "handler": handler},
                     daemon=True).start()
    time.sleep(0.5)
    h.ready({"poll_interval_s": 0.05})
    done.wait(h.L1_DEADLINE_S)
    h.emit(lat.result())
    os._exit(0)


def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    client = _client(url)
    return h.publish_paced_sync(lambda p: client.publish(queue=QUEUE, payload=p), n, interval_s)


def h1(url: str, jobs: int, timeout_ms: int) -> dict[str, Any]:
    prefill(url, jobs, timeout_ms=timeout_ms)
    started = 0
    lock = threading.Lock()
    all_started = threading.Event()
    forever = threading.Event()

    def handler(ctx: Any) -> None:
        nonlocal started
        with lock:
            started += 1
            if started == jobs:
                all_started.set()
        forever.wait()

    clients = [_client(url) for _ in range(jobs)]
    for c in clients:
        threading.Thread(target=c.consume, kwargs={"queue": QUEUE, "handler": handler},
                         daemon=True).start()
    all_started.wait(60)
    ops = clients[0].ops
    h.ready({
        "hb_interval_s": ops.derive_heartbeat_interval_s(timeout_ms),
        "hb_shas": [ops.scripts.heartbeat.sha],
        "in_flight": started,
    })
    sys.stdin.readline()
    h.emit({"jobs": jobs, "started": started})
    os._exit(0)


def m1(url: str, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    prefill(url, n)
    return {"n": n, "seconds": time.perf_counter() - t0}


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker,
    "l1_publish": l1_publish, "h1": h1, "m1": m1,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
