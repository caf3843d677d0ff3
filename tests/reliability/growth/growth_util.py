"""The soak used by test_growth.py: publish many grouped jobs, drain them with a Worker, and
describe what is left in the keyspace."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from typing import Any

import redis

from omniq import AsyncOmniq, JobSpec
from omniq._scripts import SCRIPTS
from omniq.aio.worker import Fail, Worker

FAIL_EVERY = 997  # these jobs fail for good (Fail)
RETRY_EVERY = 101  # these jobs fail once, then succeed


def load_scripts(r: redis.Redis) -> None:
    """Load every script, so that the baseline memory already holds the script cache."""
    for s in SCRIPTS.values():
        r.script_load(s.source)


def used_memory(r: redis.Redis) -> int:
    """used_memory after the server had a moment to shrink its tables."""
    time.sleep(0.3)  # serverCron resizes hash tables that emptied
    info: dict[str, Any] = r.info("memory")
    return int(info["used_memory"])


def pattern(key: str, queue: str) -> str:
    """A key with its variable part replaced: {q}:job:* / {q}:g:*:limit ..."""
    b = re.escape("{" + queue + "}")
    key = re.sub(rf"^{b}:job:.*$", "{q}:job:*", key)
    key = re.sub(rf"^{b}:g:.*:(wait|inflight|limit)$", r"{q}:g:*:\1", key)
    return key.replace("{" + queue + "}", "{q}")


def key_patterns(r: redis.Redis, queue: str) -> Counter[str]:
    return Counter(pattern(k, queue) for k in r.scan_iter(count=10_000))


async def soak(client: AsyncOmniq, queue: str, jobs: int, groups: int,
               concurrency: int = 50, round_no: int = 0) -> tuple[float, float, Worker]:
    """Publish ``jobs`` jobs over ``groups`` groups (limits 1-3, some without a limit),
    drain them; return (publish seconds, drain seconds, the worker)."""
    specs = [
        JobSpec(payload={"i": i}, job_id=f"job-{round_no}-{i}", gid=f"tenant-{i % groups}",
                group_limit=(i % groups) % 4)  # 0 = no limit key (default 1)
        for i in range(jobs)
    ]
    t0 = time.perf_counter()
    await client.publish_many(queue, specs, backoff_ms=0)
    t1 = time.perf_counter()

    async def handler(ctx: Any) -> Any:
        i = ctx.payload["i"]
        if i % FAIL_EVERY == 0:
            raise Fail("given up")
        if i % RETRY_EVERY == 0 and ctx.attempt == 1:
            raise ValueError("try again")
        return {"i": i} if i % 2 else None

    worker = Worker(client, queue, handler, concurrency=concurrency, drain=True,
                    maintenance_interval_s=0.2)
    await asyncio.wait_for(worker.run(), 300)
    return t1 - t0, time.perf_counter() - t1, worker
