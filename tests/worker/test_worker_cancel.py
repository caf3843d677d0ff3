"""Cancelling running jobs: the worker learns it from the wake channel or a heartbeat,
cancels an async handler, flags a thread handler (ctx.cancelled, ctx.exec raising
JobCancelled), and the job ends failed with error 'cancelled', never retried."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis
from worker_util import jk, within

from omniq import JobCancelled, JobFailed
from omniq.aio.context import JobContext
from omniq.aio.worker import Worker


async def _failed_cancelled(omniq, queue: str, jid: str, seconds: float) -> None:
    with pytest.raises(JobFailed) as err:
        await within(omniq.wait(queue, jid), seconds, "the cancelled job to fail")
    assert err.value.error == "cancelled"
    assert err.value.attempts == 1


async def test_cancel_stops_async_handler_through_wake_channel(omniq, raw):
    started = asyncio.Event()
    stopped = asyncio.Event()
    seen: list[bool] = []

    async def handler(ctx: JobContext) -> str:
        if ctx.payload.get("forever"):
            started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                seen.append(ctx.cancelled)
                stopped.set()
                raise
        return "ok"

    jid = await omniq.publish("q", {"forever": True}, max_attempts=3, timeout_ms=60_000)
    async with Worker(omniq, "q", handler, concurrency=2):
        await within(started.wait(), 10, "the handler to start")
        t = time.monotonic()
        assert await omniq.cancel("q", jid) == "cancelling"
        # the heartbeat interval is 20 s: only the wake message can be this fast
        await _failed_cancelled(omniq, "q", jid, 5)
        assert time.monotonic() - t < 5
        await within(stopped.wait(), 5, "the handler task to be cancelled")
        assert seen == [True]
        # the worker goes on
        other = await omniq.publish("q", {})
        assert await within(omniq.wait("q", other), 10, "the next job") == "ok"
    h = raw.hgetall(jk("q", jid))
    assert h["state"] == "failed"
    assert h["attempt"] == "1"


async def test_cancel_seen_through_heartbeat(omniq, raw):
    """No wake message (the flag set as an official client's cancel could): the next
    heartbeat reply (CANCEL) stops the handler."""
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    jid = await omniq.publish("q", {}, max_attempts=3, timeout_ms=300)
    async with Worker(omniq, "q", handler):
        await within(started.wait(), 10, "the handler to start")
        raw.hset(jk("q", jid), "cancel_requested_ms", "1")
        await _failed_cancelled(omniq, "q", jid, 5)


async def test_thread_handler_sees_cancelled_and_exec_raises(omniq, raw):
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    done = asyncio.Event()
    outcome: dict[str, object] = {}
    stop = threading.Event()

    def handler(ctx: JobContext) -> str:
        loop.call_soon_threadsafe(started.set)
        while not ctx.cancelled and not stop.is_set():
            time.sleep(0.01)
        outcome["cancelled"] = ctx.cancelled
        for name, call in (("exec", lambda: ctx.exec.get_job("q", ctx.job_id)),
                           ("progress", lambda: ctx.progress(50))):
            try:
                call()
                outcome[name] = "no error"
            except JobCancelled:
                outcome[name] = "JobCancelled"
        loop.call_soon_threadsafe(done.set)
        return "late result"  # ignored: the job is already failed

    jid = await omniq.publish("q", {}, max_attempts=3, timeout_ms=60_000)
    try:
        async with Worker(omniq, "q", handler, grace_period_s=5):
            await within(started.wait(), 10, "the handler to start")
            assert await omniq.cancel("q", jid) == "cancelling"
            await _failed_cancelled(omniq, "q", jid, 5)
            await within(done.wait(), 5, "the thread to see the cancel")
    finally:
        stop.set()
    assert outcome == {"cancelled": True, "exec": "JobCancelled", "progress": "JobCancelled"}
    assert raw.hget(jk("q", jid), "state") == "failed"
    assert raw.hget(jk("q", jid), "result") is None


async def test_cancel_active_group_head_lets_next_job_run(omniq, raw):
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> str:
        if ctx.payload["n"] == 0:
            started.set()
            await asyncio.Event().wait()
        return f"done {ctx.payload['n']}"

    a = await omniq.publish("q", {"n": 0}, gid="g", group_limit=1, max_attempts=3)
    b = await omniq.publish("q", {"n": 1}, gid="g", group_limit=1)
    async with Worker(omniq, "q", handler, concurrency=4):
        await within(started.wait(), 10, "the group head to start")
        assert raw.hget(jk("q", b), "state") == "wait"  # group_limit=1 holds it back
        assert await omniq.cancel("q", a) == "cancelling"
        assert await within(omniq.wait("q", b), 10, "the next job of the group") == "done 1"
    with pytest.raises(JobFailed):
        await omniq.wait("q", a, timeout=1)


async def test_cancel_waiting_job_never_reaches_worker(omniq, raw):
    ran: list[str] = []

    async def handler(ctx: JobContext) -> None:
        ran.append(ctx.job_id)

    keep = await omniq.publish("q", {})
    drop = await omniq.publish("q", {})
    assert await omniq.cancel("q", drop) == "cancelled"
    await Worker(omniq, "q", handler, drain=True).run()
    assert ran == [keep]
    with pytest.raises(JobFailed):
        await omniq.wait("q", drop, timeout=1)


async def test_thread_handler_that_ignores_cancel_frees_its_slot(omniq, raw):
    """The cancelled thread is abandoned: with concurrency=1 the next job runs meanwhile."""
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    release = threading.Event()

    def handler(ctx: JobContext) -> str:
        if ctx.payload["n"] == 0:
            loop.call_soon_threadsafe(started.set)
            release.wait(30)  # never looks at ctx.cancelled
        return f"done {ctx.payload['n']}"

    stuck = await omniq.publish("q", {"n": 0}, max_attempts=3)
    try:
        async with Worker(omniq, "q", handler, concurrency=1, grace_period_s=1):
            await within(started.wait(), 10, "the handler to start")
            assert await omniq.cancel("q", stuck) == "cancelling"
            await _failed_cancelled(omniq, "q", stuck, 5)
            nxt = await omniq.publish("q", {"n": 1})
            assert await within(omniq.wait("q", nxt), 10, "the next job") == "done 1"
    finally:
        release.set()
    assert raw.hget(jk("q", stuck), "state") == "failed"


async def test_cancel_sent_while_the_wake_subscription_is_down_is_caught_up(omniq, raw):
    """The worker's pub/sub connection is killed, then the job is cancelled: the message
    reaches no one. Subscribed again, the worker heartbeats its running jobs at once and
    learns the cancel then, long before the next heartbeat (every 20 s here)."""
    started = asyncio.Event()

    async def handler(ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    jid = await omniq.publish("q", {}, max_attempts=3, timeout_ms=60_000)
    nodes = {"target_nodes": raw.ALL_NODES} if isinstance(raw, redis.RedisCluster) else {}
    async with Worker(omniq, "q", handler):
        await within(started.wait(), 10, "the handler to start")
        assert raw.client_kill_filter(_type="pubsub", **nodes)
        assert await omniq.cancel("q", jid) == "cancelling"
        await _failed_cancelled(omniq, "q", jid, 5)
    assert raw.hget(jk("q", jid), "last_error") == "cancelled"
