"""A worker process for the flow crash test (run as a script, never imported by pytest).

    python flow_worker.py URL QUEUES CONCURRENCY KEEP_COMPLETED [stall]

Runs a :class:`Worker` on the comma-separated QUEUES (priority order) until SIGTERM
(graceful, exit 0) or SIGKILL. Jobs are the nodes of flows published by
``test_flow_crash.py``: the payload holds ``work_ms`` (how long the handler "works") and, for
a job with children, ``children`` (``[queue, id]`` pairs). The handler keeps an external
ledger in Redis, every key under the hash tag ``{t}`` (one slot on a cluster):

* ``{t}:att:<queue>:<id>`` (hash) -- attempt -> pid, written when the attempt starts;
* ``{t}:parents`` (list) -- for a job with children, when it starts: JSON
  ``{"ref", "attempt", "pid", "seen", "results_ok", "done"}``: how many children results
  ``ctx.children_results()`` gave, whether each is the child's own result, and how many of
  its children were in state ``completed`` (their job hashes, read just before);
* ``{t}:done`` (set of ``<queue>:<id>``) and ``{t}:runs`` (hash ref -> count), written in one
  MULTI/EXEC when the handler finishes, *before* it returns (so before the worker acks it).

It returns ``{"ref": "<queue>:<id>"}`` (a child's result, which its parent checks).
``{t}:ready`` (list) gets the pid once the worker runs (and handles SIGTERM).

With ``stall``, the first delivery of dependency work that takes ops from an outbox
(``deps_pending`` answered some) stops there for good, as if the process died between
taking the ops and acknowledging them: ``{t}:stalled`` gets ``<pid> <n ops>`` and the
delivery never goes on (the test SIGKILLs the process). Its jobs keep running.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from omniq import AsyncOmniq
from omniq._protocol import deps
from omniq.aio.worker import Worker


def job_key(queue: str, job_id: str) -> str:
    return "{" + queue + "}:job:" + job_id


def stall_deliveries(client: AsyncOmniq, pid: int) -> None:
    """Make the first ``deps_pending`` call that hands out ops never return."""
    routing = client.routing
    real = routing.call
    forever = asyncio.Event()  # never set

    async def call(script: Any, queue: str, args: Any) -> Any:
        reply = await real(script, queue, args)
        if script is deps.DEPS_PENDING and (n := len(deps.parse_pending(reply))):
            await client.redis.rpush("{t}:stalled", f"{pid} {n}")
            await forever.wait()
        return reply

    routing.call = call  # type: ignore[method-assign]


async def main(url: str, queues: list[str], concurrency: int, keep: int,
               stall: bool) -> None:
    client = AsyncOmniq(url=url, keep_completed=keep)  # every completed job stays readable
    r = client.redis
    pid = os.getpid()
    if stall:
        stall_deliveries(client, pid)

    async def handler(ctx: Any) -> dict[str, str]:
        ref = f"{ctx.queue}:{ctx.job_id}"
        await r.hset("{t}:att:" + ref, str(ctx.attempt), str(pid))
        children = ctx.payload.get("children") or []
        if children:
            pipe = r.pipeline(transaction=False)  # the children may live on other nodes
            for q, cid in children:
                pipe.hget(job_key(q, cid), "state")
            states = await pipe.execute()
            results = await ctx.children_results()
            ok = all(results.get(cid) == {"ref": f"{q}:{cid}"} for q, cid in children)
            await r.rpush("{t}:parents", json.dumps({
                "ref": ref, "attempt": ctx.attempt, "pid": pid, "seen": len(results),
                "results_ok": ok, "done": sum(s == "completed" for s in states)}))
        await asyncio.sleep(ctx.payload["work_ms"] / 1000)  # the job's "work"
        pipe = r.pipeline(transaction=True)
        pipe.sadd("{t}:done", ref)
        pipe.hincrby("{t}:runs", ref, 1)
        await pipe.execute()
        return {"ref": ref}

    worker = Worker(client, queues, handler, concurrency=concurrency,
                    maintenance_interval_s=0.2, handle_signals=True)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0)  # run() has installed its SIGTERM handler
    await r.rpush("{t}:ready", str(pid))
    await task
    await client.aclose()
    print(f"worker {pid} exited cleanly", flush=True)


if __name__ == "__main__":
    url, queues, conc, keep = sys.argv[1:5]
    asyncio.run(main(url, queues.split(","), int(conc), int(keep), sys.argv[5:] == ["stall"]))
