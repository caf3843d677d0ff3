"""Schedules fired by running workers (docs/schedules.md), on the real clock.

Several worker processes race for every occurrence; the ledgers are the queues' event
streams (one ``fired`` entry per published occurrence, one ``misfired`` entry per skipped
range, each stamped by the server) and ``t:runs``, where every handler run appends
``<queue>|<schedule>|<occurrence_ms>|<worker>``. Intervals are the shortest allowed (1 s);
waits poll those ledgers with deadlines.
"""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
from worker_util import now_ms, poll_until, within

from omniq import AsyncOmniq, JobContext, Scheduler
from omniq._protocol.schedules import schedule_job_id

SECOND = 1000
QUEUES = ("q", "pq")  # a plain queue and a partitioned one, consumed by the same workers


async def _physical(omniq: AsyncOmniq) -> list[str]:
    return ["q", *await omniq.queue_partitions("pq")]


def _ledger(raw: Any, parts: list[str]) -> tuple[dict[str, list[tuple[int, int]]],
                                                  dict[str, list[tuple[int, int]]]]:
    """Per schedule: the fires ``(occurrence, server ms of the fire)`` and the skipped
    ranges ``(from, to)``, from the event streams."""
    fired: dict[str, list[tuple[int, int]]] = {}
    missed: dict[str, list[tuple[int, int]]] = {}
    for part in parts:
        for entry_id, f in raw.xrange("{" + part + "}:events"):
            if f["type"] == "fired":
                fired.setdefault(f["schedule"], []).append(
                    (int(f["occurrence"]), int(entry_id.split("-")[0])))
            elif f["type"] == "misfired":
                missed.setdefault(f["schedule"], []).append((int(f["from"]),
                                                             int(f["occurrence"])))
    return fired, missed


def _runs(raw: Any) -> list[tuple[str, str, int]]:
    out = []
    for line in raw.lrange("t:runs", 0, -1):
        queue, name, occurrence, _tag = line.split("|")
        out.append((queue, name, int(occurrence)))
    return out


async def _start(raw: Any, spawn: Any, n: int, first: int = 0) -> list[Any]:
    procs = [spawn("sched", ",".join(QUEUES), str(first + i)) for i in range(n)]
    await poll_until(lambda: raw.llen("t:ready") >= first + n, 30, "the workers to start")
    return procs


async def _setup(omniq: AsyncOmniq, schedules: dict[str, dict[str, Any]]) -> int:
    """Create each schedule on both queues (``pq`` partitioned), starting at the next whole
    second + 1 s (the workers run already: none is late); returns that start."""
    start = (now_ms() // SECOND + 2) * SECOND
    for queue in QUEUES:
        for name, options in schedules.items():
            await omniq.schedule(queue, name, every_ms=SECOND, start_ms=start, **options)
    return start


# processes and the real clock: the same scripts run on Redis and Valkey (the core suite
# runs them on both), so these run on one single server and on the cluster
@pytest.mark.kinds("redis", "cluster")
async def test_three_workers_fire_every_occurrence_exactly_once(omniq, raw, spawn):
    await omniq.partition_queue("pq", 3)
    procs = await _start(raw, spawn, 3)
    start = await _setup(omniq, {"tick": {}, "grouped": {"gid": "tenant-1"}})
    # two queues, two schedules, five occurrences each
    published = {(q, n, o) for q in QUEUES for n in ("tick", "grouped")
                 for o in range(start, start + 5 * SECOND, SECOND)}
    try:
        await poll_until(lambda: published <= set(_runs(raw)), 30, "five runs of each schedule")
    except AssertionError:
        missing = published - set(_runs(raw))
        for q, n, o in missing:
            jid = schedule_job_id("q", n, o)
            info = await omniq.get_job(q, jid)
            print("MISSING", q, n, o, jid, info)
        print("STATS", await omniq.stats("q"), await omniq.stats("pq"))
        for p in procs:
            print(p.output()[-3000:])
        raise
    for i in range(3):
        raw.rpush(f"t:stop:{i}", "1")
    for p in procs:
        assert await p.wait(30) == 0, p.output()
    fired, missed = _ledger(raw, await _physical(omniq))
    assert missed == {}
    for name in ("tick", "grouped"):
        occurrences = sorted(o for o, _ in fired[name])
        # each occurrence once per queue, none skipped: start, start + 1 s, ...
        per_queue = len(occurrences) // 2
        assert per_queue >= 5
        assert occurrences == sorted(2 * [start + k * SECOND for k in range(per_queue)])
        # published on time: by the server's clock, less than a second late
        assert all(0 <= at - o < SECOND for o, at in fired[name]), fired[name]
    runs = _runs(raw)
    assert len(runs) == len(set(runs))  # no occurrence ran twice
    assert all(o >= start for _, _, o in runs)


@pytest.mark.kinds("redis", "cluster")
async def test_kill_every_worker_then_restart_gives_what_each_policy_promises(
        omniq, raw, spawn):
    policies = {"once": {}, "all": {"misfire": "all"},
                "skip": {"misfire": "skip", "misfire_grace_ms": 300}}
    await omniq.partition_queue("pq", 3)
    procs = await _start(raw, spawn, 3)
    start = await _setup(omniq, policies)
    await poll_until(lambda: raw.llen("t:runs") >= 2 * 3 * 2, 30, "two rounds of runs")
    for p in procs:
        p.popen.send_signal(signal.SIGKILL)
    for p in procs:
        await p.wait(10)
    killed = now_ms()
    # the outage: several occurrences come due with no worker to fire them
    await asyncio.sleep(3.5)
    before_restart = now_ms()
    procs = await _start(raw, spawn, 3, first=3)
    parts = await _physical(omniq)

    def fired_after_restart() -> bool:
        fired, _ = _ledger(raw, parts)
        return all(sum(at > before_restart for _, at in fired.get(n, ())) >= 2 * 2
                   for n in policies)

    await poll_until(fired_after_restart, 30, "two fires of every schedule after the restart")
    for i in range(3, 6):
        raw.rpush(f"t:stop:{i}", "1")
    for p in procs:
        assert await p.wait(30) == 0, p.output()
    skipped_any = False
    for queue in QUEUES:
        fired, missed = _ledger(raw, ["q"] if queue == "q" else parts[1:])
        for name in policies:
            mine = sorted(o for o, _ in fired[name])
            gaps = sorted(missed.get(name, []))
            skipped_any = skipped_any or bool(gaps)
            # published and skipped together cover the pattern from the start, each
            # occurrence exactly once
            covered = sorted(mine + [t for a, b in gaps for t in range(a, b + 1, SECOND)])
            assert covered == [start + k * SECOND for k in range(len(covered))], (name, queue)
            outage = [t for t in range(start, before_restart, SECOND) if t > killed]
            assert len(outage) >= 3
            if name == "all":
                assert gaps == []
                assert set(outage) <= set(mine)
            elif name == "once":
                # one catch-up: the latest occurrence due at the first fire after restart
                assert len(gaps) == 1, gaps
                a, b = gaps[0]
                assert a > killed - SECOND  # (one due at the kill may not have fired)
                assert b + SECOND in mine
            else:
                # skip: none of the missed occurrences
                assert len(gaps) == 1, gaps
                assert not set(outage) & set(mine)
                assert gaps[0][1] + SECOND in mine
    assert skipped_any


async def test_pause_stops_firing_at_once_and_resume_continues_from_the_next(omniq):
    seen: list[int] = []
    got = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        assert ctx.schedule == "tick"
        assert ctx.occurrence_ms is not None
        seen.append(ctx.occurrence_ms)
        got.set()

    start = (now_ms() // SECOND + 1) * SECOND
    await omniq.schedule("q", "tick", every_ms=SECOND, start_ms=start)
    async with asyncio.timeout(30):
        from omniq import Worker

        async with Worker(omniq, "q", handler, maintenance_interval_s=0.2):
            while len(seen) < 2:
                got.clear()
                await got.wait()
            assert await omniq.pause_schedule("q", "tick") is True
            paused_at = now_ms()
            fires = (await omniq.get_schedule("q", "tick")).fires  # type: ignore[union-attr]
            await asyncio.sleep(1.5)  # what is tested: nothing fires while paused
            assert (await omniq.get_schedule("q", "tick")).fires == fires  # type: ignore[union-attr]
            assert await omniq.resume_schedule("q", "tick") is True
            resumed_at = now_ms()
            n = len(seen)
            while len(seen) < n + 1:
                got.clear()
                await got.wait()
    after = [o for o in seen if o > paused_at]
    # no catch-up of the paused time: the first run after the pause is the first
    # occurrence after the resume
    assert after
    assert after[0] > resumed_at - SECOND
    assert all(o < paused_at + SECOND for o in seen[:n])
    assert seen == sorted(set(seen))


async def test_a_drain_fires_what_is_due_and_the_handler_sees_its_occurrence(omniq):
    got: list[tuple[str | None, int | None]] = []

    def handler(ctx: JobContext) -> None:  # a plain function: thread handlers too
        got.append((ctx.schedule, ctx.occurrence_ms))

    start = now_ms() - 10 * SECOND
    await omniq.schedule("q", "catch-up", every_ms=SECOND, start_ms=start)
    await within(omniq.consume("q", handler, drain=True), 20, "the drain")
    info = await omniq.get_schedule("q", "catch-up")
    assert info is not None
    assert got == [("catch-up", info.last_fire_ms)]  # misfire once: the latest only
    assert info.last_fire_ms is not None
    assert info.last_fire_ms > start
    # a worker with schedules=False fires nothing
    await omniq.schedule("q", "off", every_ms=SECOND, start_ms=now_ms() - 5 * SECOND)
    await within(omniq.consume("q", handler, drain=True, schedules=False), 20, "drain")
    assert (await omniq.get_schedule("q", "off")).fires == 0  # type: ignore[union-attr]


async def test_a_standalone_scheduler_fires_for_queues_it_does_not_consume(omniq):
    start = (now_ms() // SECOND + 1) * SECOND
    await omniq.schedule("q", "s", every_ms=SECOND, start_ms=start, payload={"k": 1})
    t0 = time.monotonic()
    async with Scheduler(omniq, ["q"], interval_s=0.5) as scheduler:
        await poll_until(lambda: scheduler.published >= 2, 10, "two fires")
    assert time.monotonic() - t0 < 5
    job = await omniq.reserve("q")
    assert job is not None
    assert (job.schedule, job.occurrence_ms, job.payload) == ("s", start, {"k": 1})


@pytest.mark.parametrize("interval", [0, -1, True])
async def test_scheduler_arguments(omniq, interval):
    from omniq import InvalidArgument

    with pytest.raises(InvalidArgument):
        Scheduler(omniq, ["q"], interval_s=interval)
    with pytest.raises(InvalidArgument):
        Scheduler(omniq, [])


async def test_handlers_manage_schedules_through_ctx_exec(omniq):
    """A job can stop (or look at) the schedule that published it, async or blocking."""
    seen: list[object] = []

    async def ahandler(ctx: JobContext) -> None:
        info = await ctx.exec.get_schedule(ctx.logical_queue, ctx.schedule)
        seen.append(info.fires if info else None)
        seen.append(await ctx.exec.pause_schedule(ctx.logical_queue, ctx.schedule))
        seen.append(await ctx.exec.resume_schedule(ctx.logical_queue, ctx.schedule))

    def shandler(ctx: JobContext) -> None:
        seen.append(ctx.exec.pause_schedule(ctx.logical_queue, "other"))
        seen.append(ctx.exec.get_schedule(ctx.logical_queue, "other").paused)
        seen.append(ctx.exec.unschedule(ctx.logical_queue, "other"))

    past = now_ms() - 5 * SECOND
    await omniq.schedule("a", "mine", every_ms=SECOND, start_ms=past)
    await omniq.schedule("b", "mine", every_ms=SECOND, start_ms=past)
    await omniq.schedule("b", "other", every_ms=60 * SECOND)
    await within(omniq.consume("a", ahandler, drain=True), 20, "async drain")
    await within(omniq.consume("b", shandler, drain=True), 20, "sync drain")
    assert seen == [1, True, True, True, True, True]
    assert await omniq.get_schedule("b", "other") is None


async def test_a_failing_pass_is_logged_and_the_scheduler_goes_on(omniq, caplog):
    real = omniq.fire_schedules
    calls = 0

    async def flaky(queue: str, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")  # a bug, not a server error: logged with its traceback
        return await real(queue, **kw)

    omniq.fire_schedules = flaky  # type: ignore[method-assign]
    await omniq.schedule("q", "s", every_ms=SECOND, start_ms=now_ms() - 500)  # due now
    with caplog.at_level("WARNING", logger="omniq"):
        async with Scheduler(omniq, ["q"], interval_s=0.2) as scheduler:
            await poll_until(lambda: scheduler.published >= 1, 10, "a fire after the failure")
    failed = [r for r in caplog.records if "firing schedules failed" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].levelname == "ERROR"
    assert failed[0].exc_info is not None
    assert "boom" in failed[0].getMessage()
