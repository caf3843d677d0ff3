"""Server crash and restart: SIGKILL the server in the middle of publishing and consuming.

The server runs with ``appendonly yes`` and ``appendfsync always`` in a data dir of the test.
A publisher publishes jobs with its own ids; two in-process workers consume them. The
server is SIGKILLed mid-way, stays down ~1 s and is restarted on the same port and data:

* every publish that returned is in the restarted server (AOF, fsync always);
* a publish that raised :class:`ConnectionFailed` had an unknown outcome: the publisher
  retries it with the same id, and :class:`DuplicateJobError` on a retry means it had landed;
* the workers reconnect by themselves (bounded backoff) and finish every job;
* the restarted server's script cache is empty: scripts are reloaded after NOSCRIPT.

``OMNIQ_RESTART_JOBS`` (default 600) and ``OMNIQ_RESTART_KILLS`` (default 1) scale it up.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import redis.asyncio as aredis
from faults_util import env_int, figure, jk, poll_until
from redis.asyncio.cluster import RedisCluster

from omniq import AsyncOmniq
from omniq._scripts import LIBRARY_NAME, SCRIPTS
from omniq.aio.worker import Worker
from omniq.errors import ConnectionFailed, DuplicateJobError

QUEUE = "restart"


async def test_server_sigkill_and_restart_loses_no_acknowledged_publish(
    omniq_server_factory, tmp_path
):
    n = env_int("OMNIQ_RESTART_JOBS", 600)
    rounds = env_int("OMNIQ_RESTART_KILLS", 1)
    server = omniq_server_factory(
        appendonly=True, appendfsync="always", data_dir=tmp_path / "data"
    )
    url = server.url
    pub = AsyncOmniq(url=url, keep_completed=100_000, socket_timeout=2)
    wclients = [AsyncOmniq(url=url, keep_completed=100_000, socket_timeout=2)
                for _ in range(2)]
    handled: dict[str, float] = {}  # job id -> monotonic time its handler finished

    async def handler(ctx: Any) -> dict[str, int]:
        await asyncio.sleep(0.002)
        handled.setdefault(ctx.job_id, time.monotonic())
        return {"i": ctx.payload["i"]}

    confirmed: list[str] = []  # publish returned: the job exists
    confirmed_by_retry: list[str] = []  # a retry got DuplicateJobError: it had landed
    unknown_outcomes = 0  # publishes that raised ConnectionFailed
    first_ok_after: list[float] = []  # monotonic time of each successful publish
    progress = asyncio.Event()
    kill_marks = [int(n * (k + 1) / (rounds + 1)) for k in range(rounds)]

    async def publisher() -> None:
        nonlocal unknown_outcomes
        for i in range(n):
            jid = f"job-{i:06d}"
            retried = False
            while True:
                try:
                    await pub.publish(QUEUE, {"i": i}, job_id=jid, max_attempts=20,
                                      timeout_ms=10_000, backoff_ms=0)
                    confirmed.append(jid)
                    first_ok_after.append(time.monotonic())
                    break
                except ConnectionFailed:
                    unknown_outcomes += 1
                    retried = True
                    await asyncio.sleep(0.05)  # the publisher's own retry pacing
                except DuplicateJobError:
                    assert retried, f"{jid} duplicate on its first publish"
                    confirmed.append(jid)
                    confirmed_by_retry.append(jid)
                    break
            if len(confirmed) in kill_marks:
                progress.set()
            await asyncio.sleep(0.004)  # a steady stream of publishes

    workers = [Worker(c, QUEUE, handler, concurrency=4, maintenance_interval_s=0.2)
               for c in wclients]
    timings: list[dict[str, float]] = []
    try:
        for w in workers:
            await w.start()
        pub_task = asyncio.create_task(publisher())
        for _ in range(rounds):
            await asyncio.wait_for(progress.wait(), 60)
            progress.clear()
            before = list(confirmed)
            handled_before = len(handled)
            t_kill = time.monotonic()
            await asyncio.to_thread(server.kill)  # SIGKILL: a crash, no shutdown save
            await asyncio.sleep(1.0)  # the outage (fault duration, not synchronisation)
            await asyncio.to_thread(server.restart)  # same port, same data dir, AOF replay
            t_up = time.monotonic()

            # every publish acknowledged before the crash survived it
            async with aredis.Redis.from_url(url, decode_responses=True) as check:
                pipe = check.pipeline(transaction=False)
                for jid in before:
                    pipe.exists(jk(QUEUE, jid))
                assert all(await pipe.execute()), "an acknowledged publish was lost"

            async def resumed(t: float = t_up, h: int = handled_before) -> bool:
                return any(v > t for v in handled.values()) and len(handled) > h

            resume_s = await poll_until(resumed, 20, "the workers to resume after restart",
                                        0.01)
            publish_s = next(t for t in first_ok_after if t > t_up) - t_up \
                if any(t > t_up for t in first_ok_after) else -1.0
            timings.append({"down_s": round(t_up - t_kill, 2),
                            "first_job_done_after_up_s": round(resume_s, 2),
                            "first_publish_after_up_s": round(publish_s, 2)})

        await asyncio.wait_for(pub_task, 120)
        assert len(confirmed) == n
        assert len(set(confirmed)) == n

        async def all_done() -> bool:
            try:
                s = await pub.stats(QUEUE)
            except ConnectionFailed:
                # the first read on a pooled connection that died with the server fails
                # (nothing is re-sent by itself); the next one connects again
                return False
            return s.completed_kept == n and s.active == 0 and s.waiting_total == 0

        await poll_until(all_done, 60, "the workers to finish every job", 0.05)
    finally:
        for w in workers:
            await w.stop(grace_period_s=5)
        for c in wclients:
            await c.aclose()

    # every job exists and is completed (with its result), none failed
    pipe = pub.redis.pipeline(transaction=False)
    for jid in confirmed:
        pipe.hmget(jk(QUEUE, jid), "state", "result")
    rows = await pipe.execute()
    assert all(state == "completed" for state, _ in rows)
    assert sorted(int(re.sub(r"\D", "", r)) for _, r in rows) == list(range(n))
    stats = await pub.stats(QUEUE)
    assert stats.failed == 0
    assert stats.delayed == 0
    assert set(handled) == set(confirmed)
    errorstats = await pub.redis.info("errorstats")
    noscript = int(errorstats.get("errorstat_NOSCRIPT", {}).get("count", 0))
    if isinstance(pub.redis, RedisCluster):
        # EVALSHA: the clients hit NOSCRIPT on the restarted server and reloaded the scripts
        assert noscript >= 1, errorstats
        assert all(await pub.redis.script_exists(SCRIPTS["enqueue"].sha,
                                                 SCRIPTS["ack_reserve"].sha))
    else:
        # FCALL: the function library is data (replayed from the AOF), so the restarted
        # server still had it and no call needed a reload
        assert noscript == 0, errorstats
        assert await pub.redis.function_list(library=LIBRARY_NAME)
    await pub.aclose()
    figure("restart", jobs=n, kills=rounds, unknown_publish_outcomes=unknown_outcomes,
           landed_before_error=len(confirmed_by_retry), noscript_replies=noscript,
           rounds=timings)
