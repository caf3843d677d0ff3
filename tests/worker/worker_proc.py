"""A worker process for the multi-process tests (run as a script, never imported by pytest).

    python worker_proc.py group URL QUEUE TAG CONCURRENCY LIMIT HOLD_S
    python worker_proc.py block URL QUEUE TAG
    python worker_proc.py rate URL QUEUE TAG CONCURRENCY
    python worker_proc.py sched URL QUEUES TAG

Everything it does is recorded in Redis keys under ``t:`` (ledgers the test reads):

``group``
    Says ``t:ready`` <- TAG, waits for ``t:go:TAG``, then runs a :class:`Worker` in the
    background until ``t:stop:TAG`` appears. Each job counts itself in the per-group
    in-flight counter ``t:inflight:<gid>`` (INCR on start, DECR before returning), keeps
    the highest value seen in the zset ``t:max`` (ZADD GT) and adds ``<gid>:<n>`` to the set
    ``t:violations`` when the counter exceeds LIMIT; it holds the job HOLD_S seconds and
    appends ``TAG:<job_id>`` to ``t:done``.
``block``
    Runs ``client.consume(QUEUE, handler)`` in the main thread (signals handled by the
    worker). The handler appends ``{"id", "attempt"}`` to ``t:started:TAG`` and then blocks
    until an item appears in ``t:release:TAG``. Every record of the ``omniq`` logger is
    appended to ``t:log:TAG``.
``rate``
    As ``group`` (ready, go, stop), with a handler that only appends ``TAG:<job_id>`` to
    ``t:done``; at the end it stores in ``t:calls:TAG`` how many reservation round trips
    (``client.routing.reserve`` calls) the worker made.
``sched``
    Runs a :class:`Worker` (which fires the schedules) on the comma-separated QUEUES until
    ``t:stop:TAG`` appears or it is killed; says ``t:ready`` <- TAG once started. Each job
    appends ``<logical queue>|<schedule>|<occurrence_ms>|TAG`` to ``t:runs``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import redis

from omniq import AsyncOmniq
from omniq.aio.worker import Worker


class RedisLog(logging.Handler):
    """Append every log message to a Redis list."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(logging.DEBUG)
        if url.startswith("redis+cluster://"):
            url = url.replace("redis+cluster://", "redis://", 1)
            self.r: redis.Redis | redis.RedisCluster = redis.RedisCluster.from_url(
                url, decode_responses=True
            )
        else:
            self.r = redis.Redis.from_url(url, decode_responses=True)
        self.key = key

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.r.rpush(self.key, record.getMessage())
        except Exception:  # pragma: no cover - diagnostics only
            self.handleError(record)


async def group_mode(url: str, queue: str, tag: str, concurrency: int, limit: int,
                     hold_s: float) -> None:
    client = AsyncOmniq(url=url)
    r = client.redis

    async def handler(ctx: Any) -> None:
        gid = ctx.gid
        n = await r.incr(f"t:inflight:{gid}")
        await r.zadd("t:max", {gid: n}, gt=True)
        if n > limit:
            await r.sadd("t:violations", f"{gid}:{n}")
        await asyncio.sleep(hold_s)  # the job's "work"
        await r.decr(f"t:inflight:{gid}")
        await r.rpush("t:done", f"{tag}:{ctx.job_id}")

    await r.rpush("t:ready", tag)
    if await r.blpop([f"t:go:{tag}"], timeout=30) is None:
        raise SystemExit("no go signal")
    worker = Worker(client, queue, handler, concurrency=concurrency,
                    maintenance_interval_s=0.2)
    await worker.start()
    if await r.blpop([f"t:stop:{tag}"], timeout=60) is None:
        raise SystemExit("no stop signal")
    await worker.stop()
    await client.aclose()


async def block_mode(url: str, queue: str, tag: str) -> None:
    log = logging.getLogger("omniq")
    log.setLevel(logging.INFO)
    log.addHandler(RedisLog(url, f"t:log:{tag}"))
    client = AsyncOmniq(url=url)
    r = client.redis

    async def handler(ctx: Any) -> dict[str, str]:
        await r.rpush(f"t:started:{tag}",
                      json.dumps({"id": ctx.job_id, "attempt": ctx.attempt}))
        await r.blpop([f"t:release:{tag}"], timeout=0)
        return {"released": tag}

    await client.consume(queue, handler, concurrency=1)
    await client.aclose()
    print("worker exited cleanly", flush=True)


async def rate_mode(url: str, queue: str, tag: str, concurrency: int) -> None:
    client = AsyncOmniq(url=url)
    r = client.redis
    calls = 0
    real = client.routing.reserve

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await real(*args, **kwargs)

    client.routing.reserve = counted  # type: ignore[method-assign]

    async def handler(ctx: Any) -> None:
        await r.rpush("t:done", f"{tag}:{ctx.job_id}")

    await r.rpush("t:ready", tag)
    if await r.blpop([f"t:go:{tag}"], timeout=30) is None:
        raise SystemExit("no go signal")
    worker = Worker(client, queue, handler, concurrency=concurrency)
    await worker.start()
    if await r.blpop([f"t:stop:{tag}"], timeout=60) is None:
        raise SystemExit("no stop signal")
    await worker.stop()
    await r.set(f"t:calls:{tag}", calls)
    await client.aclose()


async def sched_mode(url: str, queues: str, tag: str) -> None:
    client = AsyncOmniq(url=url)
    r = client.redis

    async def handler(ctx: Any) -> None:
        await r.rpush("t:runs", f"{ctx.logical_queue}|{ctx.schedule}|{ctx.occurrence_ms}|{tag}")

    worker = Worker(client, queues.split(","), handler, concurrency=4,
                    maintenance_interval_s=0.5)
    await worker.start()
    await r.rpush("t:ready", tag)
    await r.blpop([f"t:stop:{tag}"], timeout=0)
    await worker.stop()
    await client.aclose()


def main() -> None:
    mode, url, queue, tag, *rest = sys.argv[1:]
    if mode == "group":
        concurrency, limit, hold = int(rest[0]), int(rest[1]), float(rest[2])
        asyncio.run(group_mode(url, queue, tag, concurrency, limit, hold))
    elif mode == "rate":
        asyncio.run(rate_mode(url, queue, tag, int(rest[0])))
    elif mode == "sched":
        asyncio.run(sched_mode(url, queue, tag))
    elif mode == "block":
        asyncio.run(block_mode(url, queue, tag))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
