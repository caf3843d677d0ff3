"""Worker-side job control: run timeouts, process handlers that die, drain with retries."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

from proc_handlers import crash_or_work, hang_unless_retried, report_pid_then_hang
from worker_util import within

from omniq import JobCancelled
from omniq.aio.worker import Worker


async def _errors(omniq, queue, job_id):
    """The error of each failed attempt of a job, from its events, up to its end."""
    out = []
    async for event in omniq.events(queue, since="0"):
        if event.job_id != job_id:
            continue
        if event.type in ("retry_scheduled", "failed"):
            out.append(event.error)
        if event.type in ("completed", "failed"):
            return out
    return out


# -- run timeouts -----------------------------------------------------------------------


async def test_async_handler_past_its_run_timeout_is_cancelled_and_retried(omniq):
    started = []
    cancelled = asyncio.Event()

    async def handler(ctx):
        started.append(ctx.attempt)
        if ctx.attempt == 1:
            try:
                await asyncio.Event().wait()  # hangs forever
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return {"attempt": ctx.attempt}

    job_id = await omniq.publish("rt", {}, run_timeout_ms=200, max_attempts=2, backoff_ms=0)
    # the job's own limit wins over the worker's default
    worker = Worker(omniq, "rt", handler, drain=True, run_timeout_ms=60_000)
    await within(worker.run(), 20, "the drain")
    assert cancelled.is_set()
    assert started == [1, 2]
    assert await omniq.result("rt", job_id) == {"attempt": 2}
    errors = await _errors(omniq, "rt", job_id)
    assert errors == ["timed out: ran longer than 200 ms"]
    assert worker.stats.retried == 1
    assert worker.stats.completed == 1


async def test_thread_handler_past_its_run_timeout_is_abandoned_and_sees_cancelled(omniq):
    saw = threading.Event()
    exec_error = []
    release = threading.Event()

    def handler(ctx):
        if ctx.payload.get("hang") and ctx.attempt == 1:
            deadline = time.monotonic() + 30
            while not ctx.cancelled and time.monotonic() < deadline:
                time.sleep(0.01)
            try:
                ctx.exec.get_job(ctx.queue, ctx.job_id)
            except JobCancelled as exc:
                exec_error.append(exc)
            saw.set()
            release.wait(30)
            return {"late": True}  # ignored: the attempt is over
        return {"attempt": ctx.attempt}

    job_id = await omniq.publish("rt", {"hang": True}, max_attempts=2, backoff_ms=0)
    later = await omniq.publish("rt", {})
    # one thread slot: the retry and the later job can only run if the slot was freed
    worker = Worker(omniq, "rt", handler, drain=True, threads=1, run_timeout_ms=300)
    try:
        await within(worker.run(), 20, "the drain")
        # the abandoned thread goes on by itself: the drain may end before it gets here
        assert await asyncio.to_thread(saw.wait, 10)
    finally:
        release.set()
    assert len(exec_error) == 1
    assert await omniq.result("rt", job_id) == {"attempt": 2}
    assert await omniq.result("rt", later) == {"attempt": 1}
    assert (await _errors(omniq, "rt", job_id))[0].startswith("timed out")


async def test_process_handler_past_its_run_timeout_is_killed_and_replaced(omniq):
    job_id = await omniq.publish("rt", {}, max_attempts=2, backoff_ms=0)
    # a fresh process imports the handler's module within its run time: leave room for it
    worker = Worker(omniq, "rt", hang_unless_retried, drain=True, processes=1,
                    run_timeout_ms=2000)
    await within(worker.run(), 30, "the drain")
    result = await omniq.result("rt", job_id)
    assert result["attempt"] == 2
    assert result["pid"] != os.getpid()
    assert await _errors(omniq, "rt", job_id) == ["timed out: ran longer than 2000 ms"]


async def test_no_run_timeout_by_default(omniq):
    async def handler(ctx):
        await asyncio.sleep(0.3)
        return "done"

    job_id = await omniq.publish("rt", {})
    worker = Worker(omniq, "rt", handler, drain=True)
    await within(worker.run(), 20, "the drain")
    assert await omniq.result("rt", job_id) == "done"


# -- process handlers that die ----------------------------------------------------------


async def test_process_that_exits_fails_only_its_job_and_the_pool_goes_on(omniq):
    crash = await omniq.publish("cpu", {"crash": True}, max_attempts=2, backoff_ms=0)
    healthy = await omniq.publish_many("cpu", [{"n": i} for i in range(6)])
    worker = Worker(omniq, "cpu", crash_or_work, concurrency=2, processes=2, drain=True)
    await within(worker.run(), 60, "the drain")
    for i, job_id in enumerate(healthy):
        assert (await omniq.result("cpu", job_id))["n"] == i
    info = await omniq.get_job("cpu", crash)
    assert info.state == "failed"
    assert info.attempt == 2
    assert info.last_error == "worker process died: exit code 1"
    assert worker.stats.completed == 6
    assert worker.stats.failed == 1


async def test_process_killed_from_outside_fails_its_attempt(omniq, omniq_redis_url):
    ledger = "test:pids"
    hung = await omniq.publish("cpu", {"url": omniq_redis_url, "ledger": ledger},
                               max_attempts=1)
    after = await omniq.publish("cpu", {"n": 1})
    worker = Worker(omniq, "cpu", crash_or_work_or_hang, processes=1, drain=True)
    run = asyncio.create_task(worker.run())
    _, pid = await within(omniq.redis.blpop([ledger], timeout=30), 35, "the handler's pid")
    os.kill(int(pid), signal.SIGKILL)
    await within(run, 30, "the drain")
    info = await omniq.get_job("cpu", hung)
    assert info.state == "failed"
    assert info.last_error == "worker process died: signal SIGKILL"
    assert (await omniq.result("cpu", after))["n"] == 1


def crash_or_work_or_hang(ctx):
    # module level so the spawned process can import it by name (tests/worker is on its path)
    if "ledger" in ctx.payload:
        return report_pid_then_hang(ctx)
    return crash_or_work(ctx)


# -- drain ------------------------------------------------------------------------------


async def test_drain_runs_the_retries_it_scheduled(omniq):
    attempts = []

    async def handler(ctx):
        attempts.append(ctx.attempt)
        raise ValueError(f"attempt {ctx.attempt}")

    job_id = await omniq.publish("dr", {}, max_attempts=3, backoff_ms=100)
    worker = Worker(omniq, "dr", handler, drain=True)
    await within(worker.run(), 20, "the drain")
    assert attempts == [1, 2, 3]
    info = await omniq.get_job("dr", job_id)
    assert info.state == "failed"
    assert info.attempt == 3
    assert worker.stats.retried == 2
    assert worker.stats.failed == 1


async def test_drain_does_not_wait_for_jobs_it_never_touched(omniq):
    async def handler(ctx):
        return None

    future = await omniq.publish("dr", {}, delay_ms=600_000)
    now = await omniq.publish("dr", {})
    worker = Worker(omniq, "dr", handler, drain=True)
    await within(worker.run(), 10, "the drain")
    assert (await omniq.get_job("dr", now)).state == "completed"
    assert (await omniq.get_job("dr", future)).state == "delayed"
