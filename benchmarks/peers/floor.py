"""The client-side floor: plain redis-py EVALSHA of a trivial script (``return 1``) with
hiredis, the same stack our client uses, and nothing else.

* ``seq``: n awaited ``redis.asyncio`` EVALSHA calls, one at a time (also the per-call latency
  of one round trip);
* ``pipelined``: n calls in non-transactional pipelines of ``batch`` calls;
* ``seq_sync``: n blocking redis-py EVALSHA calls (the floor of the blocking facade).
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio

from benchmarks.peers import _harness as h

SCRIPT = "return 1"
WARMUP = 100


async def seq(url: str, n: int) -> dict[str, Any]:
    r = redis.asyncio.Redis.from_url(url)
    try:
        sha = await r.script_load(SCRIPT)
        for _ in range(WARMUP):
            await r.evalsha(sha, 0)
        execute = r.execute_command
        lat: list[float] = []
        clock = time.perf_counter
        t0 = clock()
        for _ in range(n):
            t = clock()
            await execute("EVALSHA", sha, 0)
            lat.append((clock() - t) * 1000.0)
        elapsed = clock() - t0
    finally:
        await r.aclose()
    return h.throughput(n, elapsed, p50_ms=h.percentile(lat, 50), p99_ms=h.percentile(lat, 99))


async def pipelined(url: str, n: int, batch: int = 1000) -> dict[str, Any]:
    r = redis.asyncio.Redis.from_url(url)
    try:
        sha = await r.script_load(SCRIPT)
        for _ in range(WARMUP):
            await r.evalsha(sha, 0)
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            pipe = r.pipeline(transaction=False)
            for _ in range(min(batch, n - start)):
                pipe.execute_command("EVALSHA", sha, 0)
            await pipe.execute()
        elapsed = time.perf_counter() - t0
    finally:
        await r.aclose()
    return h.throughput(n, elapsed, batch=batch)


def seq_sync(url: str, n: int) -> dict[str, Any]:
    r = redis.Redis.from_url(url)
    try:
        sha = r.script_load(SCRIPT)
        for _ in range(WARMUP):
            r.evalsha(sha, 0)
        execute = r.execute_command
        t0 = time.perf_counter()
        for _ in range(n):
            execute("EVALSHA", sha, 0)
        elapsed = time.perf_counter() - t0
    finally:
        r.close()
    return h.throughput(n, elapsed)


SCENARIOS = {"seq": seq, "pipelined": pipelined, "seq_sync": seq_sync}

if __name__ == "__main__":
    h.main(SCENARIOS)
