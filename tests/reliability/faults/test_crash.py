"""Worker crashes: SIGKILL chaos against real worker processes on a real server.

4 worker processes (``chaos_worker.py``) consume the jobs while a chaos loop SIGKILLs a
random one every ~0.5 s and starts a replacement. Every handler writes an external ledger
(attempt -> pid when it starts; done/runs before it returns). After the chaos, the
survivors drain the queue (expired leases of killed workers are reaped and retried), then:

* every job is completed, and acknowledged exactly once (the completed list holds each id
  once; ``keep_completed`` is large enough to keep all of them);
* nothing is lost, nothing is left active, waiting, delayed or failed;
* a job ran more than once only when an earlier attempt was started by a killed process.

``OMNIQ_CHAOS_JOBS`` (default 5000) sets the number of jobs.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

from faults_util import WorkerProc, env_int, figure, jk, poll_until, qk

from omniq import AsyncOmniq

QUEUE = "chaos"
WORKERS = 4
CONCURRENCY = 4
WORK_MS = 20  # each handler "works" 20 ms: kills land on running handlers too
TIMEOUT_MS = 2000  # lease of a killed worker expires after 2 s
KILL_EVERY_S = 0.5


async def test_sigkill_chaos_every_job_completed_exactly_once(omniq_server_factory, tmp_path):
    n = env_int("OMNIQ_CHAOS_JOBS", 5000)
    server = omniq_server_factory()
    keep = max(10_000, n)  # every completed job stays in the completed list, to be checked
    client = AsyncOmniq(url=server.url, keep_completed=keep)
    r = client.redis
    procs: list[WorkerProc] = []
    killed: set[int] = set()

    def spawn() -> WorkerProc:
        log = tmp_path / f"worker-{len(procs)}.log"
        proc = WorkerProc([server.url, QUEUE, str(CONCURRENCY), str(WORK_MS), str(keep)], Path(log))
        procs.append(proc)
        return proc

    try:
        ids = await client.publish_many(
            QUEUE, [{"i": i} for i in range(n)],
            max_attempts=100, timeout_ms=TIMEOUT_MS, backoff_ms=0,
        )
        t0 = time.monotonic()
        live = [spawn() for _ in range(WORKERS)]

        # -- chaos: SIGKILL a random worker every ~0.5 s, start a new one -------------
        kills = 0
        rng = random.Random(os.environ.get("OMNIQ_CHAOS_SEED"))
        chaos_limit = max(30.0, n / 100)
        # the chaos stops with 2% of the jobs left: its last kills strand leases that the
        # survivors must reap while they finish the rest
        while int(await r.scard("t:done")) < n * 0.98 and time.monotonic() - t0 < chaos_limit:
            await asyncio.sleep(rng.uniform(0.7, 1.3) * KILL_EVERY_S)  # chaos pacing
            victim = rng.choice(live)
            os.kill(victim.pid, signal.SIGKILL)
            await asyncio.to_thread(victim.popen.wait, 10)
            killed.add(victim.pid)
            kills += 1
            live.remove(victim)
            live.append(spawn())
        chaos_s = time.monotonic() - t0
        done_at_chaos_end = int(await r.scard("t:done"))

        # -- the survivors drain: expired leases are reaped and retried ---------------
        async def drained() -> bool:
            s = await client.stats(QUEUE)
            return (s.completed_kept >= n and s.active == 0 and s.waiting_total == 0
                    and s.delayed == 0)

        try:
            drain_s = await poll_until(drained, 60, "the survivors to drain the queue", 0.1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {await client.stats(QUEUE)}") from None
        total_s = time.monotonic() - t0

        async def survivors_ready() -> bool:
            ready = {int(x) for x in await r.lrange("t:ready", 0, -1)}
            return all(p.pid in ready for p in live)

        await poll_until(survivors_ready, 30, "the surviving workers to be running")
        for p in live:  # graceful stop: SIGTERM, exit 0
            p.popen.send_signal(signal.SIGTERM)
        for p in live:
            rc = await asyncio.to_thread(p.popen.wait, 30)
            assert rc == 0, p.output()
        survivors = {p.pid for p in live}

        # -- the ledger ---------------------------------------------------------------
        stats = await client.stats(QUEUE)
        assert (stats.active, stats.waiting_total, stats.delayed, stats.failed) == (0, 0, 0, 0)
        completed = await r.lrange(qk(QUEUE, "completed"), 0, -1)
        assert len(completed) == n
        assert set(completed) == set(ids)
        assert await r.smembers("t:done") == set(ids)  # every handler ran to the end
        runs = {k: int(v) for k, v in (await r.hgetall("t:runs")).items()}

        states: list[tuple[str, str]] = []
        attempts: list[dict[str, str]] = []
        for start in range(0, n, 1000):
            pipe = r.pipeline(transaction=False)
            for j in ids[start : start + 1000]:
                pipe.hmget(jk(QUEUE, j), "state", "attempt")
                pipe.hgetall(f"t:att:{j}")
            out = await pipe.execute()
            states += out[0::2]
            attempts += out[1::2]

        reexecuted = extra_starts = unacked_runs = unseen_leases = 0
        ours = killed | survivors
        for j, (state, attempt), atts in zip(ids, states, attempts, strict=True):
            assert state == "completed", (j, state)
            final = int(attempt)
            started = {int(a): int(pid) for a, pid in atts.items()}
            assert set(started.values()) <= ours, (j, started)
            # the attempt that completed the job ran its handler; no attempt came after it
            assert final in started, (j, final, started)
            assert max(started) == final, (j, final, started)
            for a, pid in started.items():
                if a != final:  # a re-execution: the earlier attempt's process was killed
                    assert pid in killed, (j, a, pid, started)
            assert 1 <= runs[j] <= len(started), (j, runs[j], started)
            if len(started) > 1:
                reexecuted += 1
                extra_starts += len(started) - 1
            unacked_runs += runs[j] - 1  # handler finished, the process died before the ack
            unseen_leases += final - len(started)  # leased by a process killed before start

        figure(
            "crash", jobs=n, workers=WORKERS, concurrency=CONCURRENCY, kills=kills,
            chaos_s=round(chaos_s, 1), done_at_chaos_end=done_at_chaos_end,
            drain_s=round(drain_s, 1), total_s=round(total_s, 1),
            jobs_reexecuted=reexecuted, extra_starts=extra_starts,
            finished_but_unacked=unacked_runs, leased_never_started=unseen_leases,
            lease_timeout_ms=TIMEOUT_MS,
        )
        assert kills >= 3, "the chaos loop must have killed workers"
    finally:
        for p in procs:
            p.close()
        await client.aclose()
