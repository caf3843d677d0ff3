"""Our scenarios through the asyncio API (``AsyncOmniq`` + ``Worker``).

Run by the runner as ``python -m benchmarks.peers.omniq_async '<json params>'`` with this
repository's interpreter; the functions are also imported by the smoke test.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import statistics
import sys
import time
from typing import Any

from benchmarks.peers import _harness as h
from omniq import AsyncOmniq
from omniq._protocol.events import events_key
from omniq._scripts import SCRIPTS
from omniq.aio.worker import Worker

QUEUE = h.QUEUE
WARMUP = 100


async def _warm(client: AsyncOmniq) -> None:
    """Connect and load the scripts (on a separate queue)."""
    for i in range(WARMUP):
        await client.publish("warm", {"i": i})


def _client(url: str, events_maxlen: int | None) -> AsyncOmniq:
    """The client; ``events_maxlen`` None keeps the default (events on), 0 turns them off."""
    if events_maxlen is None:
        return AsyncOmniq(url=url)
    return AsyncOmniq(url=url, events_maxlen=events_maxlen)


async def e1(url: str, n: int, events_maxlen: int | None = None) -> dict[str, Any]:
    """n sequential awaited publishes."""
    async with _client(url, events_maxlen) as client:
        await _warm(client)
        publish = client.publish
        t0 = time.perf_counter()
        for i in range(n):
            await publish(QUEUE, {"i": i})
        elapsed = time.perf_counter() - t0
        assert (await client.stats(QUEUE)).waiting == n
        maxlen = client.events_maxlen
    return h.throughput(n, elapsed, events_maxlen=maxlen)


async def e2(url: str, n: int, events_maxlen: int | None = None) -> dict[str, Any]:
    """n jobs through publish_many (one script call per 1,000 jobs)."""
    async with _client(url, events_maxlen) as client:
        await _warm(client)
        payloads = [{"i": i} for i in range(n)]
        t0 = time.perf_counter()
        await client.publish_many(QUEUE, payloads)
        elapsed = time.perf_counter() - t0
        assert (await client.stats(QUEUE)).waiting == n
    return h.throughput(n, elapsed, api="publish_many")


async def prefill(client: AsyncOmniq, n: int, **options: Any) -> None:
    for start in range(0, n, 10_000):
        await client.publish_many(
            QUEUE, [{"i": i} for i in range(start, min(n, start + 10_000))], **options
        )


async def _noop(ctx: Any) -> None:
    return None


async def process(url: str, n: int, concurrency: int,
                  events_maxlen: int | None = None) -> dict[str, Any]:
    """Drain n queued no-op jobs with one worker; from worker start to its last ack."""
    async with _client(url, events_maxlen) as client:
        await prefill(client, n)
        worker = Worker(client, QUEUE, _noop, concurrency=concurrency, drain=True)
        t0 = time.perf_counter()
        await worker.run()  # drain=True: returns once empty, after the last ack
        elapsed = time.perf_counter() - t0
        done = worker.stats.completed
        assert done == n, (done, n)
        maxlen = client.events_maxlen
    return h.throughput(n, elapsed, concurrency=concurrency, events_maxlen=maxlen)


async def p1(url: str, n: int, events_maxlen: int | None = None) -> dict[str, Any]:
    return await process(url, n, 1, events_maxlen)


async def p2(url: str, n: int, concurrency: int = 50,
             events_maxlen: int | None = None) -> dict[str, Any]:
    return await process(url, n, concurrency, events_maxlen)


async def l1_worker(url: str, n: int) -> dict[str, Any]:
    """An idle worker; handler start latency of the publisher's jobs."""
    lat = h.Latencies(n)
    done = asyncio.Event()

    async def handler(ctx: Any) -> None:
        if lat.record(ctx.payload):
            done.set()

    async with AsyncOmniq(url=url) as client:
        worker = Worker(client, QUEUE, handler, concurrency=10)
        await worker.start()
        await asyncio.sleep(0.5)
        h.ready()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), h.L1_DEADLINE_S)
        await worker.stop()
    return lat.result()


async def l1_publish(url: str, n: int, interval_s: float) -> dict[str, Any]:
    async with AsyncOmniq(url=url) as client:
        await client.ping()

        async def publish(payload: dict[str, Any]) -> None:
            await client.publish(QUEUE, payload)

        return await h.publish_paced_async(publish, n, interval_s)


def _abba(blocks: int) -> list[bool]:
    """The order of the events on (True) / off (False) blocks: on off off on on off ..."""
    return [(k % 4) in (0, 3) for k in range(2 * blocks)]


class _EvBlocks:
    """Per events state (True = on): wall time of each timed block, the server's time in
    our scripts (INFO commandstats: EVALSHA usec, which includes the commands the scripts
    run, and of that the XADDs) and this process's CPU time."""

    def __init__(self, probe: AsyncOmniq) -> None:
        self.probe = probe
        self.wall: dict[bool, list[float]] = {True: [], False: []}
        self.script: dict[bool, float] = {True: 0.0, False: 0.0}
        self.xadd: dict[bool, float] = {True: 0.0, False: 0.0}
        self.client: dict[bool, float] = {True: 0.0, False: 0.0}
        self.calls: dict[bool, float] = {True: 0.0, False: 0.0}
        self._start = (0.0, 0.0, 0.0, 0.0, 0.0)

    async def _server_us(self) -> tuple[float, float, float]:
        stats = await self.probe.redis.info("commandstats")
        # our scripts: FCALL (EVALSHA where the server has no functions)
        calls = [stats.get(f"cmdstat_{c}", {}) for c in ("evalsha", "fcall")]
        return (sum(float(c.get("usec", 0)) for c in calls),
                sum(float(c.get("calls", 0)) for c in calls),
                float(stats.get("cmdstat_xadd", {}).get("usec", 0)))

    async def begin(self) -> None:
        script, calls, xadd = await self._server_us()
        self._start = (script, calls, xadd, time.process_time(), time.perf_counter())

    async def end(self, state: bool) -> None:
        wall, proc = time.perf_counter(), time.process_time()
        self.wall[state].append(wall - self._start[4])
        self.client[state] += proc - self._start[3]
        script, calls, xadd = await self._server_us()
        self.script[state] += script - self._start[0]
        self.calls[state] += calls - self._start[1]
        self.xadd[state] += xadd - self._start[2]

    def result(self, n: int, per_block: int, **extra: Any) -> dict[str, Any]:
        on_ops, off_ops = n / sum(self.wall[True]), n / sum(self.wall[False])
        return {"n": n, "on_ops": on_ops, "off_ops": off_ops, "ratio": on_ops / off_ops,
                "cost": 1.0 - on_ops / off_ops, "block_jobs": per_block,
                "on_block_s": self.wall[True], "off_block_s": self.wall[False],
                "script_us_per_job_on": self.script[True] / n,
                "script_us_per_job_off": self.script[False] / n,
                "xadd_us_per_job_on": self.xadd[True] / n,
                "script_calls_on": self.calls[True], "script_calls_off": self.calls[False],
                "client_us_per_job_on": self.client[True] * 1e6 / n,
                "client_us_per_job_off": self.client[False] * 1e6 / n, **extra}


async def ev_e1(url: str, n: int, blocks: int = 4) -> dict[str, Any]:
    """E1 with events on (the default events_maxlen) and off (``events_maxlen=0``): two
    clients in this process on the same server, n publishes each, in 2 x ``blocks``
    alternating blocks (on off off on ...) so the machine's drift hits both alike."""
    per = n // blocks
    async with AsyncOmniq(url=url) as on, AsyncOmniq(url=url, events_maxlen=0) as off:
        assert on.events_maxlen > 0
        assert off.events_maxlen == 0
        await _warm(on)
        await _warm(off)
        rec = _EvBlocks(on)
        for state in _abba(blocks):
            client = on if state else off
            queue, publish = f"{QUEUE}-{'on' if state else 'off'}", client.publish
            await rec.begin()
            for i in range(per):
                await publish(queue, {"i": i})
            await rec.end(state)
        for name in (f"{QUEUE}-on", f"{QUEUE}-off"):
            assert (await on.stats(name)).waiting == per * blocks
        streamed = await on.redis.xlen(events_key(f"{QUEUE}-on"))
        unstreamed = await on.redis.exists(events_key(f"{QUEUE}-off"))
    assert streamed > 0, streamed
    assert not unstreamed, unstreamed
    return rec.result(per * blocks, per, events_maxlen=on.events_maxlen)


async def ev_p2(url: str, n: int, blocks: int = 2, concurrency: int = 50) -> dict[str, Any]:
    """P2 with events on and off, as ``ev_e1``: 2 x ``blocks`` drains of n / blocks queued
    jobs (each block its own queue, prefilled untimed by the same client), alternating."""
    per = n // blocks
    async with AsyncOmniq(url=url) as on, AsyncOmniq(url=url, events_maxlen=0) as off:
        await _warm(on)
        await _warm(off)
        rec = _EvBlocks(on)
        for k, state in enumerate(_abba(blocks)):
            client = on if state else off
            queue = f"{QUEUE}-{'on' if state else 'off'}-{k}"
            for start in range(0, per, 10_000):
                await client.publish_many(
                    queue, [{"i": i} for i in range(start, min(per, start + 10_000))])
            worker = Worker(client, queue, _noop, concurrency=concurrency, drain=True)
            await rec.begin()
            await worker.run()
            await rec.end(state)
            assert worker.stats.completed == per, (worker.stats.completed, per)
            assert bool(await client.redis.exists(events_key(queue))) == state
    return rec.result(per * blocks, per, concurrency=concurrency,
                      events_maxlen=on.events_maxlen)


# JC: the cost of job controls when used (rate limit, dedup keys), as EV: on/off blocks
JC_RATE = (100_000, 100)  # an active queue-wide limit that never binds: 10^6 jobs per s


async def jc_dedup_e1(url: str, n: int, blocks: int = 4) -> dict[str, Any]:
    """E1 with a distinct ``dedup_key`` per job (on) and without (off): one client, each
    state its own queue, 2 x ``blocks`` alternating blocks of n / blocks publishes."""
    per = n // blocks
    async with AsyncOmniq(url=url) as client:
        await _warm(client)
        rec = _EvBlocks(client)
        publish = client.publish
        for k, state in enumerate(_abba(blocks)):
            queue = f"{QUEUE}-{'on' if state else 'off'}"
            await rec.begin()
            if state:
                for i in range(per):
                    await publish(queue, {"i": i}, dedup_key=f"k{k}-{i}")
            else:
                for i in range(per):
                    await publish(queue, {"i": i})
            await rec.end(state)
        for name in (f"{QUEUE}-on", f"{QUEUE}-off"):
            assert (await client.stats(name)).waiting == per * blocks
    return rec.result(per * blocks, per, control="dedup_key")


async def jc_rate_p2(url: str, n: int, blocks: int = 2, concurrency: int = 50) -> dict[str, Any]:
    """P2 on a queue with an active (never binding) rate limit (on) and on one without
    (off), as ``ev_p2``: 2 x ``blocks`` drains of n / blocks queued jobs, alternating."""
    per = n // blocks
    async with AsyncOmniq(url=url) as client:
        await _warm(client)
        rec = _EvBlocks(client)
        for k, state in enumerate(_abba(blocks)):
            queue = f"{QUEUE}-{'on' if state else 'off'}-{k}"
            if state:
                await client.set_rate_limit(queue, *JC_RATE)
            for start in range(0, per, 10_000):
                await client.publish_many(
                    queue, [{"i": i} for i in range(start, min(per, start + 10_000))])
            worker = Worker(client, queue, _noop, concurrency=concurrency, drain=True)
            await rec.begin()
            await worker.run()
            await rec.end(state)
            assert worker.stats.completed == per, (worker.stats.completed, per)
            assert (await client.get_rate_limit(queue) is not None) == state
    return rec.result(per * blocks, per, concurrency=concurrency, control="rate_limit",
                      rate_limit=list(JC_RATE))


# SC: the cost of active schedules on a worker's throughput, as JC: with/without blocks
SC_SCHEDULES = 1000  # schedules on the measured queue
SC_STEP_MS = 60  # their stagger: one due every 60 ms, about 17 fires/s (1,000 every minute)
SC_LEAD_MS = 200  # the first occurrence: this long plus 1.5 ms per schedule after creation
SC_IDLE_START_MS = 3_600_000  # "idle": the first occurrence an hour away (none due)


async def _create_schedules(client: AsyncOmniq, queue: str, count: int,
                            firing: bool) -> tuple[float, float, float]:
    """``count`` interval schedules on ``queue``, each every ``count * SC_STEP_MS`` ms,
    staggered by SC_STEP_MS (schedule i starts i * SC_STEP_MS after the first), so one is
    due every SC_STEP_MS whatever the count. ``firing``: the first is due a lead after the
    creation began (longer than the creation takes on a healthy machine), and this waits
    until then, so the worker starts on the first occurrence; else the first is an hour
    away. Returns (seconds the creation took, seconds waited after it, ms the creation
    overran the lead: the schedules due by then fire at the worker's start)."""
    now_s, now_us = await client.redis.time()  # the server's clock: the one that fires
    first = int(now_s) * 1000 + int(now_us) // 1000
    first += SC_LEAD_MS + count * 3 // 2 if firing else SC_IDLE_START_MS
    t0 = time.perf_counter()
    for i in range(count):
        await client.schedule(queue, f"s{i}", every_ms=count * SC_STEP_MS,
                              start_ms=first + i * SC_STEP_MS, payload={"s": i})
    took = time.perf_counter() - t0
    if not firing:
        return took, 0.0, 0.0
    left = first - time.time() * 1000  # (the server's clock is this machine's)
    if left > 0:
        await asyncio.sleep(left / 1000)
    return took, max(0.0, left / 1000), max(0.0, -left)


async def _run_until(client: AsyncOmniq, queue: str, per: int, concurrency: int,
                     rec: _EvBlocks, state: bool) -> int:
    """P2 with a running worker (the default ``Worker``, which runs its ``Scheduler``; a
    draining one fires schedules only at its last look), timed (``rec``) from its start
    until the ``per`` queued jobs are acknowledged; the jobs the schedules published
    meanwhile are run too, and not counted. Returns the scheduled jobs run in that time."""
    done = 0
    scheduled = 0
    all_done = asyncio.Event()

    async def handler(ctx: Any) -> None:
        nonlocal done, scheduled
        if ctx.schedule is not None:
            scheduled += 1
            return
        done += 1
        if done == per:
            all_done.set()

    worker = Worker(client, queue, handler, concurrency=concurrency)
    await rec.begin()
    await worker.start()
    await all_done.wait()
    # the last queued job's handler has returned: its ack goes with the next reserve call
    # (no event tells; the worker counts it: look at each turn of the loop, one round trip)
    target = per + scheduled
    while worker.stats.completed < target:  # noqa: ASYNC110
        await asyncio.sleep(0)
    await rec.end(state)
    in_window = scheduled
    await worker.stop()
    assert worker.stats.failed == 0, worker.stats
    assert worker.stats.lost == 0, worker.stats
    return in_window


async def sc_p2(url: str, n: int, blocks: int = 2, concurrency: int = 50,
                variant: str = "fire", schedules: int = SC_SCHEDULES) -> dict[str, Any]:
    """P2 on a queue with ``schedules`` active schedules (on) and on one without (off), as
    ``jc_rate_p2``: 2 x ``blocks`` runs of n / blocks queued jobs, alternating, each block
    its own queue (prefilled, and its schedules created, untimed), each run by a default
    (running) worker until its queued jobs are acknowledged. ``variant`` "fire": one
    schedule is due every SC_STEP_MS during the run (about 17 a second; their jobs go to
    the same queue and are run by the same worker, but only the queued jobs are counted);
    "idle": none is due (the cost of having them: the scheduler's read of the due ones)."""
    if variant not in ("fire", "idle"):
        raise ValueError(f"variant must be 'fire' or 'idle', not {variant!r}")
    firing = variant == "fire"
    per = n // blocks
    run_id = secrets.token_hex(3)  # fresh queues: a second run on the same server starts clean
    async with AsyncOmniq(url=url) as client:
        await _warm(client)
        rec = _EvBlocks(client)
        scheduled = fires = 0
        late_ms = create_s = pause_s = 0.0
        for k, state in enumerate(_abba(blocks)):
            queue = f"{QUEUE}-sc{run_id}-{'on' if state else 'off'}-{k}"
            for start in range(0, per, 10_000):
                await client.publish_many(
                    queue, [{"i": i} for i in range(start, min(per, start + 10_000))])
            if state:
                took, pause_s, late = await _create_schedules(client, queue, schedules, firing)
                create_s += took
                late_ms += late
            elif pause_s:
                # as long an idle pause as before the last "on" block (the first block is
                # one): a run that starts from idle may be slower, both states alike
                await asyncio.sleep(pause_s)
            gc.collect()  # (the creation's garbage is not collected in the window)
            ran = await _run_until(client, queue, per, concurrency, rec, state)
            infos = await client.schedules(queue)
            assert len(infos) == (schedules if state else 0), len(infos)
            if state:
                scheduled += ran
                fires += sum(s.fires for s in infos)
        on_s = sum(rec.wall[True])
    if not firing:
        assert scheduled == 0, scheduled
        assert fires == 0, fires
    return rec.result(per * blocks, per, concurrency=concurrency, variant=variant,
                      schedules=schedules, every_ms=schedules * SC_STEP_MS,
                      scheduled_jobs=scheduled, scheduled_per_s=scheduled / on_s, fires=fires,
                      late_ms_per_block=late_ms / blocks, create_s_per_block=create_s / blocks)


async def _stamp(ctx: Any) -> float:
    return time.time()  # W1: the result is the handler's clock just before it returns


async def w1_worker(url: str) -> dict[str, Any]:
    """An idle worker for W1 (concurrency 10, as in L1) until the runner says stop."""
    async with AsyncOmniq(url=url) as client:
        worker = Worker(client, QUEUE, _stamp, concurrency=10)
        await worker.start()
        await asyncio.sleep(0.5)
        h.ready()
        await h.until_stop()
        await worker.stop()
        done = worker.stats.completed
    return {"completed": done}


async def w1_wait(url: str, n: int, mode: str = "wait",
                  warmup: int = h.W1_WARMUP) -> dict[str, Any]:
    """n times, one after the other: publish, then ``await omniq.wait(q, job_id)``."""
    lat = h.WaitLatencies()
    async with AsyncOmniq(url=url) as client:
        for i in range(-warmup, n):
            t0 = time.perf_counter()
            job_id = await client.publish(QUEUE, {"i": i})
            done = await client.wait(QUEUE, job_id, timeout=30)
            if i >= 0:
                lat.record(t0, done)
    return lat.result(api="AsyncOmniq.wait")


# FI: a fan-in flow, one parent waiting for n children, against BullMQ's FlowProducer
FI_QUEUE = "fi"
FI_WAIT_S = 60.0
_SCRIPT_CMDS = ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro")


async def _server_counters(client: AsyncOmniq) -> tuple[float, float, float]:
    """The server's time in script calls (INFO commandstats usec of EVALSHA / FCALL and
    co., which includes the commands the scripts run), in all commands (but INFO), and its
    CPU time, all in microseconds."""
    stats = await client.redis.info("commandstats")
    usec = {k.removeprefix("cmdstat_"): float(v.get("usec", 0)) for k, v in stats.items()}
    script = sum(usec.get(c, 0.0) for c in _SCRIPT_CMDS)
    every = sum(v for k, v in usec.items() if k != "info")
    cpu = await client.redis.info("cpu")
    return script, every, (float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])) * 1e6


async def fi_worker(url: str, n: int, concurrency: int = 50) -> dict[str, Any]:
    """An idle worker on the flow queue until the runner says stop. Children return
    ``{"n": i}``; the parent checks that it sees all n children's results."""
    parents = 0

    async def handler(ctx: Any) -> Any:
        nonlocal parents
        payload = ctx.payload
        if not payload.get("parent"):
            return {"n": payload["i"]}
        results = await ctx.children_results()
        if len(results) != n:
            raise RuntimeError(f"parent saw {len(results)} children results, not {n}")
        parents += 1
        return {"children": len(results)}

    async with AsyncOmniq(url=url) as client:
        worker = Worker(client, FI_QUEUE, handler, concurrency=concurrency)
        await worker.start()
        await asyncio.sleep(0.5)
        h.ready()
        await h.until_stop()
        await worker.stop()
        stats = worker.stats
    return {"parents": parents, "completed": stats.completed, "failed": stats.failed}


async def fi_publish(url: str, n: int, flows: int = 7, warmup: int = 3) -> dict[str, Any]:
    """``warmup`` unmeasured flows, then ``flows`` flows one after the other: each
    ``publish_flow`` (timed: publish) of a parent with n children, then ``wait`` on the
    parent (timed from the start of the publish: the flow)."""
    from omniq import FlowJob  # (the flows API: not imported at the top, E1 & co. need none)

    publish_ms: list[float] = []
    flow_ms: list[float] = []
    script_us: list[float] = []
    server_us: list[float] = []
    cpu_us: list[float] = []
    jobs = n + 1
    async with AsyncOmniq(url=url) as client:
        await client.ping()
        for k in range(-warmup, flows):
            flow = FlowJob(queue=FI_QUEUE, payload={"parent": True},
                           children=[FlowJob(queue=FI_QUEUE, payload={"i": i})
                                     for i in range(n)])
            before = await _server_counters(client)
            t0 = time.perf_counter()
            node = await client.publish_flow(flow)
            t1 = time.perf_counter()
            result = await client.wait(FI_QUEUE, node.job_id, timeout=FI_WAIT_S)
            t2 = time.perf_counter()
            after = await _server_counters(client)
            assert result == {"children": n}, result
            assert len(node.children) == n, len(node.children)
            if k < 0:
                continue
            publish_ms.append((t1 - t0) * 1000.0)
            flow_ms.append((t2 - t0) * 1000.0)
            script_us.append((after[0] - before[0]) / jobs)
            server_us.append((after[1] - before[1]) / jobs)
            cpu_us.append((after[2] - before[2]) / jobs)
    flow = statistics.median(flow_ms)
    return {"n": n, "flows": flows, "publish_ms": statistics.median(publish_ms),
            "flow_ms": flow, "flows_per_s": 1000.0 / flow, "jobs_per_s": jobs * 1000.0 / flow,
            "script_us_per_job": statistics.median(script_us),
            "server_us_per_job": statistics.median(server_us),
            "server_cpu_us_per_job": statistics.median(cpu_us),
            "publish_ms_all": publish_ms, "flow_ms_all": flow_ms,
            "api": "AsyncOmniq.publish_flow + AsyncOmniq.wait"}


async def h1(url: str, jobs: int, timeout_ms: int) -> dict[str, Any]:
    """``jobs`` in-flight jobs whose handlers block; runs until the runner says stop."""
    started = 0
    all_started = asyncio.Event()
    forever = asyncio.Event()

    async def handler(ctx: Any) -> None:
        nonlocal started
        started += 1
        if started == jobs:
            all_started.set()
        await forever.wait()

    async with AsyncOmniq(url=url) as client:
        await prefill(client, jobs, timeout_ms=timeout_ms)
        worker = Worker(client, QUEUE, handler, concurrency=jobs)
        await worker.start()
        await asyncio.wait_for(all_started.wait(), 30)
        h.ready({
            "hb_interval_s": timeout_ms / 3000.0,
            "hb_shas": [SCRIPTS["heartbeat"].sha, SCRIPTS["heartbeat"].function],
            "in_flight": worker.in_flight,
        })
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # the runner's "stop"
        worker.request_stop(0)
        worker.request_stop(0)  # second request: cancel the blocked handlers now
        await worker.stop()
    return {"jobs": jobs, "started": started}


async def m1(url: str, n: int) -> dict[str, Any]:
    """Leave n waiting jobs (the runner reads used_memory before and after)."""
    async with AsyncOmniq(url=url) as client:
        t0 = time.perf_counter()
        await prefill(client, n)
        elapsed = time.perf_counter() - t0
        assert (await client.stats(QUEUE)).waiting == n
    return {"n": n, "seconds": elapsed}


SCENARIOS = {
    "e1": e1, "e2": e2, "p1": p1, "p2": p2, "l1_worker": l1_worker,
    "l1_publish": l1_publish, "h1": h1, "m1": m1, "w1_worker": w1_worker, "w1_wait": w1_wait,
    "ev_e1": ev_e1, "ev_p2": ev_p2, "jc_dedup_e1": jc_dedup_e1, "jc_rate_p2": jc_rate_p2,
    "sc_p2": sc_p2, "fi_worker": fi_worker, "fi_publish": fi_publish,
}

if __name__ == "__main__":
    h.main(SCENARIOS)
