"""Rate limits with real workers: the limit holds across workers (three processes), a
limited group does not hold up the others, and a limited worker waits instead of spinning.

Reservation times are the jobs' ``last_started_ms``: the clock the reserve script counted
with (the events' entry ids come later in the script), so the window check is exact.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from worker_util import Spy, jk, qk, run_until_done, within

from omniq import JobSpec, RateLimit
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker


def reserved_times(raw: Any, queue: str, ids: list[str]) -> dict[str, list[int]]:
    """Reservation times (the scripts' clock) per gid ('' = ungrouped) of jobs run once."""
    out: dict[str, list[int]] = {}
    for jid in ids:
        h = raw.hgetall(jk(queue, jid))
        assert h["attempt"] == "1", h
        out.setdefault(h.get("gid", ""), []).append(int(h["last_started_ms"]))
    return out


def most_in_a_window(times: list[int], per_ms: int) -> int:
    """The most reservations any window of per_ms milliseconds holds."""
    ts = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(ts):
        while ts[j] <= t - per_ms:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_queue_limit_paces_one_worker_without_spinning(omniq, raw):
    ids = await omniq.publish_many("q", [{"i": i} for i in range(9)])
    await omniq.set_rate_limit("q", 3, 400)
    calls = Spy(omniq.routing, "reserve")

    async def handler(ctx: JobContext) -> None:
        return None

    worker = Worker(omniq, "q", handler, concurrency=9, drain=True)
    t0 = time.monotonic()
    await within(worker.run(), 20, "the worker to drain the queue")
    took = time.monotonic() - t0
    assert worker.stats.completed == len(ids)  # drain waited out the windows
    times = reserved_times(raw, "q", ids)[""]
    assert most_in_a_window(times, 400) == 3
    assert 800 <= max(times) - min(times) < 800 + 400  # three windows, no more
    assert took < 3
    # a few calls per window (the LIMITED reply, the acks, the window's opening), where
    # a spinning worker makes hundreds
    assert len(calls.calls) < 20, len(calls.calls)  # 8 seen


async def test_a_limited_group_does_not_hold_up_the_others(omniq, raw):
    jobs = [JobSpec(payload={"g": g}, gid=g, group_limit=5) for g in ("A", "B") for _ in range(5)]
    ids = await omniq.publish_many("q", jobs)
    await omniq.set_rate_limit("q", 1, 300, gid="A")
    done: list[tuple[str, float]] = []
    all_done = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        done.append((ctx.gid, time.monotonic()))
        if len(done) == len(jobs):
            all_done.set()

    async with Worker(omniq, "q", handler, concurrency=4):
        await within(all_done.wait(), 20, "every job")
    times = reserved_times(raw, "q", ids)
    assert most_in_a_window(times["A"], 300) == 1
    assert max(times["A"]) - min(times["A"]) >= 4 * 300
    # B, unlimited, was done while A had run at most two of its jobs
    b_last = max(t for g, t in done if g == "B")
    assert sum(1 for g, t in done if g == "A" and t <= b_last) <= 2


async def test_clearing_a_limit_wakes_the_waiting_worker(omniq):
    await omniq.set_rate_limit("q", 1, 60_000)
    first = await omniq.publish("q", {"i": 0})
    second = await omniq.publish("q", {"i": 1})
    calls = Spy(omniq.routing, "reserve")

    async def handler(ctx: JobContext) -> int:
        return int(ctx.payload["i"])

    async with Worker(omniq, "q", handler):
        assert await within(omniq.wait("q", first), 10, "the first job") == 0
        # the second waits for a window a minute away: the worker asks no more meanwhile
        await calls.until(lambda: any(c[3][1] is not None and c[3][1].status == "LIMITED"
                                      for c in calls.calls), 10, "a LIMITED reply")
        n = len(calls.calls)
        await asyncio.sleep(0.3)  # a spinning worker would call all the time
        assert len(calls.calls) <= n + 1
        assert await omniq.clear_rate_limit("q") is True
        assert await within(omniq.wait("q", second), 5, "the second job, after clear") == 1


async def test_limits_hold_across_three_worker_processes(omniq, raw, spawn):
    per, limit, n = 500, 4, 24
    ids = await omniq.publish_many("q", [{"i": i} for i in range(n)])
    await omniq.set_rate_limit("q", limit, per)
    procs = [spawn("rate", "q", tag, 4) for tag in range(3)]
    await run_until_done(omniq, procs, len(ids))
    times = reserved_times(raw, "q", ids)[""]
    assert len(times) == n
    assert most_in_a_window(times, per) == limit  # reached and never exceeded
    windows = n // limit
    assert (windows - 1) * per <= max(times) - min(times) < windows * per + 500
    done = raw.lrange("t:done", 0, -1)
    assert sorted(d.split(":", 1)[1] for d in done) == sorted(ids)
    assert len({d.split(":", 1)[0] for d in done}) >= 2  # the work was shared
    calls = sum(int(raw.get(f"t:calls:{tag}")) for tag in range(3))
    # per process and window a handful of round trips (acks, LIMITED, the window's
    # opening); spinning would be thousands
    assert calls < 3 * windows * 4, calls  # 26 seen


async def test_group_limits_hold_across_three_worker_processes(omniq, raw, spawn):
    per, n = 400, 6
    groups = {"A": 1, "B": 2}  # rate per window; C has none
    jobs = [JobSpec(payload={}, gid=g, group_limit=3) for g in ("A", "B", "C") for _ in range(n)]
    ids = await omniq.publish_many("q", jobs)
    for g, m in groups.items():
        await omniq.set_rate_limit("q", m, per, gid=g)
    procs = [spawn("rate", "q", tag, 3) for tag in range(3)]
    await run_until_done(omniq, procs, len(ids))
    times = reserved_times(raw, "q", ids)
    for g, m in groups.items():
        assert most_in_a_window(times[g], per) == m, g
        assert max(times[g]) - min(times[g]) >= (n // m - 1) * per, g
    # C was never held up by the limited groups: all its jobs went in the first window
    assert max(times["C"]) - min(times["C"]) < per
    assert raw.zcard(qk("q", "groups:limited")) == 0


async def test_handlers_set_limits_through_ctx_exec(omniq):
    """A handler that hits an upstream's limit (HTTP 429) tightens its group's rate."""
    seen: list[Any] = []

    async def ahandler(ctx: JobContext) -> None:
        await ctx.exec.set_rate_limit("other", 3, 1000, gid=ctx.gid)
        seen.append(await ctx.exec.get_rate_limit("other", gid=ctx.gid))
        seen.append(await ctx.exec.clear_rate_limit("other"))

    def shandler(ctx: JobContext) -> None:
        ctx.exec.set_rate_limit("other", 4, 2000)
        seen.append(ctx.exec.get_rate_limit("other"))
        seen.append(ctx.exec.clear_rate_limit("other", gid="acme"))

    await omniq.publish("q", {}, gid="acme")
    await within(Worker(omniq, "q", ahandler, drain=True).run(), 10, "the async handler")
    await omniq.publish("q", {})
    await within(Worker(omniq, "q", shandler, drain=True).run(), 10, "the thread handler")
    assert [(x.max_jobs, x.per_ms, x.gid) if hasattr(x, "gid") else x for x in seen] == [
        (3, 1000, "acme"), False, (4, 2000, None), True]
    assert await omniq.rate_limits("other") == [RateLimit(max_jobs=4, per_ms=2000)]
