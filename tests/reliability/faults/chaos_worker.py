"""A worker process for the crash tests (run as a script, never imported by pytest).

    python chaos_worker.py URL QUEUE CONCURRENCY WORK_MS KEEP_COMPLETED

Runs a :class:`Worker` on QUEUE until SIGTERM (graceful, exit 0) or SIGKILL. The
handler keeps an external ledger in Redis, under ``t:``:

* ``t:att:<job_id>`` (hash) -- attempt -> pid, written when the attempt starts;
* ``t:done`` (set) and ``t:runs`` (hash job_id -> count), written in one MULTI/EXEC when the
  handler finishes, *before* it returns (so before the worker acks the job).

``t:ready`` (list) gets the pid once the worker runs (and handles SIGTERM).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from omniq import AsyncOmniq
from omniq.aio.worker import Worker


async def main(url: str, queue: str, concurrency: int, work_ms: int, keep: int) -> None:
    client = AsyncOmniq(url=url, keep_completed=keep)  # every completed job stays listed
    r = client.redis
    pid = os.getpid()
    work_s = work_ms / 1000

    async def handler(ctx: Any) -> None:
        await r.hset(f"t:att:{ctx.job_id}", str(ctx.attempt), str(pid))
        if work_s:
            await asyncio.sleep(work_s)  # the job's "work"
        pipe = r.pipeline(transaction=True)
        pipe.sadd("t:done", ctx.job_id)
        pipe.hincrby("t:runs", ctx.job_id, 1)
        await pipe.execute()

    worker = Worker(client, queue, handler, concurrency=concurrency,
                    maintenance_interval_s=0.2, handle_signals=True)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0)  # run() has installed its SIGTERM handler
    await r.rpush("t:ready", str(pid))
    await task
    await client.aclose()
    print(f"worker {pid} exited cleanly", flush=True)


if __name__ == "__main__":
    url, queue, conc, work, keep = sys.argv[1:6]
    asyncio.run(main(url, queue, int(conc), int(work), int(keep)))
