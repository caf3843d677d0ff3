"""``wait()``: the result of a job, woken by its event, in every outcome and race."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from core_util import leased
from shared_util import within

from omniq import AsyncOmniq, InvalidArgument, JobFailed, JobNotFound, OmniqClient
from omniq.aio import _events


@pytest.fixture
def no_backstop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits are woken only by events (the slow backstop poll is pushed out of reach), so a
    test that returns in time proves the event woke it."""
    monkeypatch.setattr(_events, "_BACKSTOP_S", 120.0)


class Observed(_events.Waiters):
    """The client's waiters, telling the test how many job reads they made (a wait reads
    its job once before it blocks: after ``reads_at_least(n)`` n waits are blocked)."""

    def __init__(self, client: AsyncOmniq) -> None:
        super().__init__(client)
        self.reads = 0
        self._changed = asyncio.Event()

    async def _check(self, part: str, job_id: str) -> tuple[bool, Any]:
        try:
            return await super()._check(part, job_id)
        finally:
            self.reads += 1
            self._changed.set()

    async def reads_at_least(self, n: int) -> None:
        async def wait() -> None:
            while self.reads < n:
                self._changed.clear()
                await self._changed.wait()

        await within(wait(), 10, f"{n} job reads")


@pytest.fixture
def observed(omniq: AsyncOmniq) -> Observed:
    omniq._waiters = Observed(omniq)
    return omniq._waiters


async def _complete(omniq: AsyncOmniq, queue: str, result: Any = None) -> str:
    job = await omniq.reserve(queue)
    assert job is not None
    await omniq.ack_success(queue, job.job_id, job.lease_token, result=result)
    return job.job_id


async def test_wait_returns_a_result_that_arrives_later(omniq, no_backstop, observed):
    jid = await omniq.publish("q", {"n": 2})
    waiter = asyncio.ensure_future(omniq.wait("q", jid))
    await observed.reads_at_least(1)  # it read the job (still waiting) and blocks
    assert not waiter.done()
    await _complete(omniq, "q", {"double": 4})
    assert await within(waiter, 10, "the wait") == {"double": 4}
    assert observed.reads == 2  # woken once, by the completion


async def test_wait_on_a_job_already_finished(omniq, no_backstop):
    jid = await omniq.publish("q", {})
    await _complete(omniq, "q", [1, 2])
    assert await within(omniq.wait("q", jid), 5, "the wait") == [1, 2]
    jid2 = await omniq.publish("q", {})
    await _complete(omniq, "q")
    assert await omniq.wait("q", jid2) is None  # no result stored


async def test_wait_raises_job_failed_with_the_error_and_attempts(omniq, no_backstop):
    jid = await omniq.publish("q", {}, max_attempts=2, backoff_ms=0)
    waiter = asyncio.ensure_future(omniq.wait("q", jid))
    for n in (1, 2):
        job = await omniq.reserve("q")
        if job is None:  # the retry is due at once but still needs a promote
            await omniq.promote_delayed("q")
            job = await omniq.reserve("q")
        assert job is not None
        await omniq.ack_fail("q", jid, job.lease_token, f"ValueError: bad {n}\nTraceback...")
    with pytest.raises(JobFailed) as info:
        await within(waiter, 10, "the wait")
    assert info.value.attempts == 2
    assert info.value.job_id == jid
    assert info.value.error is not None
    assert info.value.error.startswith("ValueError: bad 2")
    assert "failed after 2 attempts: ValueError: bad 2" in str(info.value)


async def test_wait_times_out_and_leaves_the_job_alone(omniq):
    jid = await omniq.publish("q", {})
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        await omniq.wait("q", jid, timeout=0.2)
    assert time.monotonic() - start < 5
    assert (await omniq.get_job("q", jid)).state == "wait"
    with pytest.raises(InvalidArgument):
        await omniq.wait("q", jid, timeout=-1)


async def test_wait_on_a_missing_or_removed_job(omniq, no_backstop, observed):
    with pytest.raises(JobNotFound, match="never existed"):
        await omniq.wait("q", "nope", timeout=5)
    jid = await omniq.publish("q", {})
    waiter = asyncio.ensure_future(omniq.wait("q", jid))
    await observed.reads_at_least(2)
    await omniq.remove_job("q", jid, "wait")
    with pytest.raises(JobNotFound):
        await within(waiter, 10, "the wait")


async def test_wait_on_a_job_already_deleted_by_age(omniq):
    jid = await omniq.publish("q", {}, keep_completed_ms=1, now_ms=1_000)
    job = await omniq.reserve("q", now_ms=1_010)
    assert job is not None
    await omniq.ack_success("q", jid, job.lease_token, now_ms=1_020)
    assert await omniq.promote_delayed("q", now_ms=1_030) == 0  # and deletes the expired job
    with pytest.raises(JobNotFound, match="keep_completed"):
        await omniq.wait("q", jid, timeout=5)


async def test_a_job_finishing_between_the_read_and_the_block_still_wakes_the_wait(
    omniq, no_backstop
):
    """The race: the job completes right after wait() read it as unfinished and before
    it blocks on the stream. The reader's start is fixed before the read, so the
    completion's event is after it and wakes the wait."""
    jid = await omniq.publish("q", {})
    reads = 0

    class Racing(_events.Waiters):
        async def _check(self, part: str, job_id: str) -> tuple[bool, Any]:
            nonlocal reads
            reads += 1
            done, value = await super()._check(part, job_id)
            if reads == 1:
                assert not done
                await _complete(omniq, "q", "raced")  # completes after the read
            return done, value

    omniq._waiters = Racing(omniq)
    assert await within(omniq.wait("q", jid), 10, "the wait") == "raced"
    assert reads == 2  # one read before, one after the event: no polling


async def test_many_waits_on_one_queue_share_one_reader(omniq, no_backstop, observed):
    ids = await omniq.publish_many("q", [{"i": i} for i in range(20)])
    waits = [asyncio.ensure_future(omniq.wait("q", jid)) for jid in ids]
    await observed.reads_at_least(20)
    assert len(omniq._waiters.hubs) == 1
    for _ in ids:
        job = await omniq.reserve("q")
        assert job is not None
        await omniq.ack_success("q", job.job_id, job.lease_token, result=job.payload["i"])
    assert await within(asyncio.gather(*waits), 10, "the waits") == list(range(20))


async def test_a_wait_on_a_queue_whose_acks_write_no_events_polls(omniq_redis_url, monkeypatch):
    monkeypatch.setattr(_events, "_BACKSTOP_S", 0.1)
    async with AsyncOmniq(url=omniq_redis_url) as waiting, \
            AsyncOmniq(url=omniq_redis_url, events_maxlen=0) as quiet:
        seen = waiting._waiters = Observed(waiting)
        jid = await waiting.publish("q", {})
        waiter = asyncio.ensure_future(waiting.wait("q", jid))
        await seen.reads_at_least(1)
        await _complete(quiet, "q", "polled")
        assert await within(waiter, 10, "the wait") == "polled"


async def test_wait_on_a_partitioned_queue(omniq, no_backstop, observed):
    await omniq.partition_queue("pq", 4)
    ids = await omniq.publish_many("pq", [{"i": i} for i in range(8)])
    waits = [asyncio.ensure_future(omniq.wait("pq", jid)) for jid in ids]
    await observed.reads_at_least(8)
    for _ in ids:
        res = await omniq.reserve_many("pq", 1)
        (job,) = res.jobs
        await omniq.ack_success(job.queue, job.job_id, job.lease_token, result=job.payload["i"])
    assert sorted(await within(asyncio.gather(*waits), 10, "the waits")) == list(range(8))
    with pytest.raises(JobNotFound):
        await omniq.wait("pq", "nope")


async def test_wait_with_a_worker(omniq, no_backstop):
    async def handler(ctx: Any) -> Any:
        await ctx.progress({"step": 1})
        if ctx.payload["n"] < 0:
            raise ValueError("negative")
        return ctx.payload["n"] * 2

    ok = await omniq.publish("q", {"n": 21})
    bad = await omniq.publish("q", {"n": -1}, max_attempts=1)
    waits = asyncio.gather(omniq.wait("q", ok), omniq.wait("q", bad), return_exceptions=True)
    await omniq.consume("q", handler, drain=True, handle_signals=False)
    good, failed = await within(waits, 10, "the waits")
    assert good == 42
    assert isinstance(failed, JobFailed)
    assert failed.error is not None
    assert failed.error.startswith("ValueError: negative")
    assert (await omniq.get_job("q", ok)).progress == {"step": 1}


def test_the_sync_facade_waits_too(omniq_redis_url, no_backstop):
    with OmniqClient(redis_url=omniq_redis_url) as client:
        jid = client.publish("q", {"n": 1})

        def handler(ctx: Any) -> Any:
            ctx.progress(50)  # blocking in a thread handler
            return {"n": ctx.payload["n"]}

        client.consume("q", handler, drain=True, handle_signals=False)
        assert client.wait("q", jid, timeout=10) == {"n": 1}
        assert client.get_job("q", jid).progress == 50
        failing = client.publish("q", {}, max_attempts=1)
        job = client.reserve("q")
        assert job is not None
        client.ack_fail("q", failing, job.lease_token, "Boom: no")
        with pytest.raises(JobFailed, match="Boom: no"):
            client.wait("q", failing, timeout=10)
        with pytest.raises(TimeoutError):
            client.wait("q", client.publish("q", {}), timeout=0.1)


def test_the_sync_facade_reads_events(omniq_redis_url):
    with OmniqClient(redis_url=omniq_redis_url) as client:
        ids = [client.publish("q", {}) for _ in range(3)]
        with client.events("q", since="0") as events:
            got = [next(events) for _ in range(3)]
            cursor = events.cursor
        assert [e.job_id for e in got] == ids
        assert cursor == {"q": got[-1].id}
        more = client.publish("q", {})
        with client.events("q", since=cursor) as events:
            assert next(events).job_id == more
        with pytest.raises(InvalidArgument):
            client.events("q", since="nope")


async def test_progress_from_a_lost_lease_is_refused(omniq):
    job = await leased(omniq, timeout_ms=100, max_attempts=2)
    assert await omniq.reap_expired("q", now_ms=10**7) == 1
    from omniq import LeaseLost

    with pytest.raises(LeaseLost):
        await omniq.progress("q", job.job_id, job.lease_token, 1)
