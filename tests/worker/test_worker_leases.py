"""Leases: batched heartbeats, manual heartbeats, lease loss and maintenance while busy."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from worker_util import AckLog, Spy, jk, now_ms, qk, within

from omniq import LeaseLost
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker

FAR_FUTURE = 3_600_000  # ms added to the clock to expire every lease at once


def evalsha_calls(raw: Any) -> int:
    """Script calls: EVALSHA, and FCALL (the queue scripts as functions)."""
    stats = raw.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "fcall"))


async def test_heartbeats_keep_leases_with_one_round_trip_per_tick(omniq, raw):
    n = 20
    ids = await omniq.publish_many("q", [{"i": i} for i in range(n)], timeout_ms=600,
                                   backoff_ms=0)
    ctxs: dict[str, JobContext] = {}
    initial: dict[str, int] = {}
    all_started = asyncio.Event()
    release = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        ctxs[ctx.job_id] = ctx
        initial[ctx.job_id] = ctx.lock_until_ms
        if len(ctxs) == n:
            all_started.set()
        await release.wait()

    hb = Spy(omniq, "heartbeat_many")
    # (fire_schedules: the scheduler's read of due schedules, one call each;
    # resolve_dependencies: one deps_pending call while the outbox is empty)
    maint = [Spy(omniq, "promote_delayed"), Spy(omniq, "reap_expired"),
             Spy(omniq, "fire_schedules"), Spy(omniq, "resolve_dependencies")]
    # frequent maintenance: a lease that heartbeats fail to keep is reaped within 0.2 s
    worker = Worker(omniq, "q", handler, concurrency=n, maintenance_interval_s=0.2)
    await worker.start()
    try:
        await within(all_started.wait(), 5, "20 jobs to start")
        t_start = time.monotonic()
        hb0, m0, e0 = len(hb.calls), sum(len(m.calls) for m in maint), evalsha_calls(raw)
        # watch heartbeats for more than two lease timeouts (~1.5 s of handler time)
        await hb.until(
            lambda: len(hb.calls) - hb0 >= 4 and time.monotonic() - t_start >= 1.4,
            10, "heartbeats over 1.4 s",
        )
        hb1, m1, e1 = len(hb.calls), sum(len(m.calls) for m in maint), evalsha_calls(raw)
        with raw.pipeline(transaction=True) as pipe:  # one consistent snapshot
            for j in ids:
                pipe.hgetall(jk("q", j))
            pipe.zrange(qk("q", "active"), 0, -1, withscores=True)
            *hashes, scores = pipe.execute()
        stored = dict(zip(ids, hashes, strict=True))
        active_scores = dict(scores)
    finally:
        release.set()
        await worker.stop(grace_period_s=2)

    # every tick carried every lease, in one call
    for _t, args, _kw, results in hb.calls:
        assert len(args[0]) == n
        assert all(isinstance(r, int) for r in results), results
    # ... and one script call per tick: the whole window's EVALSHAs are the heartbeat and
    # maintenance calls (a per-lease heartbeat would add 19 more per tick); calls in flight
    # at either end of the window may be counted on one side only
    ticks = hb1 - hb0
    assert ticks >= 4
    assert e1 - e0 <= ticks + (m1 - m0) + 4, (e1 - e0, ticks, m1 - m0)
    # leases moved forward and were never reaped
    for j in ids:
        assert stored[j]["state"] == "active"
        assert stored[j]["attempt"] == "1"
        assert int(stored[j]["lock_until_ms"]) > initial[j] + 600
        assert active_scores[j] == int(stored[j]["lock_until_ms"])
        assert ctxs[j].lock_until_ms > initial[j] + 600  # ctx follows the heartbeats
        assert not ctxs[j].lease_lost
    assert worker.stats.lost == 0
    assert worker.stats.completed == n
    for j in ids:
        h = raw.hgetall(jk("q", j))
        assert (h["state"], h["attempt"]) == ("completed", "1")
        assert "last_error" not in h


async def test_manual_heartbeat_extends_the_lease(omniq, raw):
    out: dict[str, int] = {}

    async def handler(ctx: JobContext) -> None:
        first = ctx.lock_until_ms
        await asyncio.sleep(0.01)  # not synchronisation: let the clock move on
        lock = await ctx.exec.heartbeat()
        out.update(first=first, lock=lock, ctx_lock=ctx.lock_until_ms,
                   stored=int(await omniq.redis.hget(jk("q", ctx.job_id), "lock_until_ms")),
                   score=int(await omniq.redis.zscore(qk("q", "active"), ctx.job_id)))

    hb = Spy(omniq, "heartbeat_many")
    jid = await omniq.publish("q", {}, timeout_ms=30_000)
    worker = Worker(omniq, "q", handler, drain=True)
    await within(worker.run(), 10, "the worker to drain")
    assert hb.calls == []  # the worker's own heartbeat was not due: this was the manual one
    assert out["lock"] > out["first"]
    assert out["ctx_lock"] == out["lock"] == out["stored"] == out["score"]
    assert raw.hget(jk("q", jid), "state") == "completed"


async def test_manual_heartbeat_on_a_lost_lease_raises(omniq, raw):
    started = asyncio.Event()
    stolen = asyncio.Event()
    seen: dict[str, Any] = {}

    async def handler(ctx: JobContext) -> str:
        started.set()
        await stolen.wait()
        try:
            await ctx.exec.heartbeat()
        except LeaseLost as exc:
            seen["error"] = exc
        seen["lost"] = ctx.lease_lost
        return "done anyway"

    acks = AckLog(omniq)
    jid = await omniq.publish("q", {}, timeout_ms=30_000, backoff_ms=60_000)
    worker = Worker(omniq, "q", handler)
    await worker.start()
    try:
        await within(started.wait(), 5, "the job to start")
        assert await omniq.reap_expired("q", now_ms=now_ms() + FAR_FUTURE) == 1
        stolen.set()
    finally:
        await worker.stop(grace_period_s=2)
    assert isinstance(seen["error"], LeaseLost)
    assert seen["lost"] is True
    assert jid not in acks.ids()
    assert worker.stats.lost == 1
    assert worker.stats.completed == 0
    h = raw.hgetall(jk("q", jid))
    assert (h["state"], h["attempt"]) == ("delayed", "1")
    assert "result" not in h


@pytest.mark.parametrize("swallow", [False, True], ids=["reraise", "swallow-cancel"])
async def test_lease_loss_cancels_an_async_handler(omniq, raw, swallow):
    started = asyncio.Event()
    cancelled = asyncio.Event()
    ctxs: list[JobContext] = []

    async def handler(ctx: JobContext) -> str:
        ctxs.append(ctx)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            if not swallow:
                raise
        return "finished after the lease was lost"

    acks = AckLog(omniq)
    jid = await omniq.publish("q", {}, timeout_ms=600, backoff_ms=60_000)
    worker = Worker(omniq, "q", handler, maintenance_interval_s=0.05)
    await worker.start()
    try:
        await within(started.wait(), 5, "the job to start")
        # steal the lease: expire it now (the job goes back to delayed, far in the future)
        assert await omniq.reap_expired("q", now_ms=now_ms() + FAR_FUTURE) == 1
        await within(cancelled.wait(), 5, "the handler to be cancelled")
        assert ctxs[0].lease_lost is True
    finally:
        await worker.stop(grace_period_s=2)
    assert jid not in acks.ids()
    assert worker.stats.lost == 1
    assert worker.stats.completed == 0
    h = raw.hgetall(jk("q", jid))
    assert (h["state"], h["attempt"]) == ("delayed", "1")
    assert "LeaseExpired" in h["last_error"]
    assert "result" not in h


async def test_lease_loss_flags_a_thread_handler_and_skips_its_ack(omniq, raw):
    """Two thread handlers; the lease of one is taken over (its token replaced, as a new
    holder would). The worker flags it, stops heartbeating it and never acks it, while the
    other lease keeps being heartbeated and is acked."""
    loop = asyncio.get_running_loop()
    both_started = asyncio.Event()
    release = threading.Event()
    ctxs: dict[str, JobContext] = {}
    seen: dict[str, Any] = {}

    def handler(ctx: JobContext) -> str:
        ctxs[ctx.job_id] = ctx
        if len(ctxs) == 2:
            loop.call_soon_threadsafe(both_started.set)
        release.wait(20)
        seen[ctx.job_id] = ctx.lease_lost
        return "finished"

    hb = Spy(omniq, "heartbeat_many")
    acks = AckLog(omniq)
    lost, kept = await omniq.publish_many("q", [{"i": 0}, {"i": 1}], timeout_ms=300)
    worker = Worker(omniq, "q", handler, concurrency=2, maintenance_interval_s=0.05)
    await worker.start()
    try:
        await within(both_started.wait(), 5, "both jobs to start")
        raw.hset(jk("q", lost), "lease_token", "f" * 40)  # someone else holds it now

        def reported() -> int:
            return sum(
                1 for _t, args, _kw, res in hb.calls
                for lease, r in zip(args[0], res, strict=True)
                if lease.job_id == lost and isinstance(r, LeaseLost)
            )

        # the loss is handled as soon as the heartbeat call returns to the worker
        await hb.until(lambda: reported() == 1, 5, "a heartbeat to report the loss")
        assert ctxs[lost].lease_lost is True
        assert ctxs[kept].lease_lost is False
        assert worker.in_flight == 2  # the thread is still running
        # three more ticks of the other lease: the lost one is not heartbeated again
        n = len(hb.calls)
        await hb.until(lambda: len(hb.calls) >= n + 3, 5, "three more heartbeats")
        later = [lease.job_id for _t, args, _kw, _r in hb.calls[n:] for lease in args[0]]
    finally:
        release.set()
        await worker.stop(grace_period_s=2)
    assert later == [kept] * len(later)
    assert seen == {lost: True, kept: False}
    assert lost not in acks.ids()
    assert acks.ids() == [kept]
    assert worker.stats.lost == 1
    assert worker.stats.completed == 1
    h = raw.hgetall(jk("q", lost))
    # not completed: still held by the foreign token, or reaped once its lease expired
    assert h["state"] in ("active", "delayed"), h
    assert h["attempt"] == "1"
    assert "result" not in h
    assert raw.hget(jk("q", kept), "state") == "completed"


async def test_job_reserved_again_while_its_lost_run_still_runs(omniq, raw):
    """The lease of a running thread handler is reaped and the job re-reserved by the same
    worker (attempt 2) while the first thread still runs. The end of the first run must not
    drop the second one: its lease keeps being heartbeated and only it is acked."""
    loop = asyncio.get_running_loop()
    started = {1: asyncio.Event(), 2: asyncio.Event()}
    release = {1: threading.Event(), 2: threading.Event()}
    tokens: dict[int, str] = {}
    lost_seen: dict[int, bool] = {}

    def handler(ctx: JobContext) -> str:
        tokens[ctx.attempt] = ctx.lease_token
        loop.call_soon_threadsafe(started[ctx.attempt].set)
        release[ctx.attempt].wait(20)
        lost_seen[ctx.attempt] = ctx.lease_lost
        return f"attempt {ctx.attempt}"

    hb = Spy(omniq, "heartbeat_many")
    acks = AckLog(omniq)
    jid = await omniq.publish("q", {}, timeout_ms=300, backoff_ms=0, max_attempts=3)
    worker = Worker(omniq, "q", handler, concurrency=2, maintenance_interval_s=0.05)
    await worker.start()
    try:
        await within(started[1].wait(), 5, "attempt 1 to start")
        far = now_ms() + FAR_FUTURE
        assert await omniq.reap_expired("q", now_ms=far) == 1
        assert await omniq.promote_delayed("q", now_ms=far) == 1
        await within(started[2].wait(), 5, "attempt 2 to start")
        release[1].set()  # the lost first run ends while the second one runs

        def beats(since: int) -> int:
            return sum(
                1 for _t, args, _kw, res in hb.calls[since:]
                for lease, r in zip(args[0], res, strict=True)
                if lease.lease_token == tokens[2] and isinstance(r, int)
            )

        n = len(hb.calls)
        await hb.until(lambda: beats(n) >= 4, 5, "attempt 2's lease to keep being heartbeated")
        release[2].set()
        await within(worker.stop(grace_period_s=5), 10, "the worker to stop")
    finally:
        release[1].set()
        release[2].set()
        await worker.stop(grace_period_s=2)
    assert lost_seen == {1: True, 2: False}
    assert [(s[1], s[2]) for s in acks.sent()] == [(jid, tokens[2])]
    h = raw.hgetall(jk("q", jid))
    assert (h["state"], h["attempt"]) == ("completed", "2")
    assert await omniq.result("q", jid) == "attempt 2"
    assert worker.stats.lost == 1
    assert worker.stats.completed == 1


async def test_maintenance_runs_while_every_slot_is_busy(omniq, raw):
    """D2: promote and reap happen although the only slot is busy with a long job."""
    busy = asyncio.Event()
    release = asyncio.Event()
    handled: dict[str, asyncio.Event] = {}

    async def handler(ctx: JobContext) -> None:
        if ctx.payload.get("long"):
            busy.set()
            await release.wait()
        handled.setdefault(ctx.job_id, asyncio.Event()).set()

    # a lease of a "dead worker": reserved by hand, never heartbeated, short timeout
    dead = await omniq.publish("q", {"dead": True}, timeout_ms=200, backoff_ms=60_000)
    assert (await omniq.reserve("q")).job_id == dead
    await omniq.publish("q", {"long": True})

    promoted = Spy(omniq, "promote_delayed")
    reaped = Spy(omniq, "reap_expired")
    worker = Worker(omniq, "q", handler, concurrency=1, maintenance_interval_s=0.05)
    await worker.start()
    try:
        await within(busy.wait(), 5, "the long job to start")
        delayed = await omniq.publish("q", {"delayed": True}, delay_ms=100)
        assert raw.hget(jk("q", delayed), "state") == "delayed"
        await promoted.until(lambda: any(c[3] > 0 for c in promoted.calls), 5,
                             "the worker to promote the delayed job")
        await reaped.until(lambda: any(c[3] > 0 for c in reaped.calls), 5,
                           "the worker to reap the dead lease")
        # ... while the slot is still busy
        assert worker.in_flight == 1
        assert not release.is_set()
        assert raw.hget(jk("q", delayed), "state") == "wait"
        h = raw.hgetall(jk("q", dead))
        assert h["state"] == "delayed"
        assert "LeaseExpired" in h["last_error"]
        release.set()
        handled.setdefault(delayed, asyncio.Event())
        await within(handled[delayed].wait(), 5, "the promoted job to run")
    finally:
        release.set()
        await worker.stop(grace_period_s=2)
    assert raw.hget(jk("q", delayed), "state") == "completed"
