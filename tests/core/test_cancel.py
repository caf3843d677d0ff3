"""cancel(): waiting, delayed and group-waiting jobs end failed ('cancelled') at once; an
active job is flagged (heartbeat CANCEL, wake message, final fail/reap); typed results for
finished and unknown jobs; the races with reserve, acks and retries."""

from __future__ import annotations

import asyncio

import pytest
import redis
from core_util import T0, gk, jk, leased, qk, real_stats, stored_stats
from shared_util import within

from omniq import CancelRequested, InvalidArgument, OmniqClient


def _events(raw: redis.Redis, queue: str, job_id: str) -> list[dict[str, str]]:
    return [f for _, f in raw.xrange(qk(queue, "events")) if f["id"] == job_id]


def _assert_cancelled(raw: redis.Redis, queue: str, jid: str, was: str) -> None:
    h = raw.hgetall(jk(queue, jid))
    assert h["state"] == "failed"
    assert h["last_error"] == "cancelled"
    assert raw.lrange(qk(queue, "failed"), 0, -1).count(jid) == 1
    assert raw.zscore(qk(queue, "idx:failed"), jid) is not None
    for idx in ("idx:wait", "idx:delayed", "idx:active"):
        assert raw.zscore(qk(queue, idx), jid) is None
    assert jid not in raw.lrange(qk(queue, "wait"), 0, -1)
    assert raw.zscore(qk(queue, "delayed"), jid) is None
    ev = _events(raw, queue, jid)
    assert [e["type"] for e in ev[-2:]] == ["failed", "cancelled"]
    assert ev[-2]["error"] == "cancelled"
    assert ev[-1]["state"] == was
    assert stored_stats(raw, queue) == real_stats(raw, queue)


# -- jobs that are not running -------------------------------------------------------------


async def test_cancel_waiting_job(omniq, raw):
    jid = await omniq.publish("q", {}, now_ms=T0)
    other = await omniq.publish("q", {}, now_ms=T0)
    assert await omniq.cancel("q", jid, now_ms=T0 + 1) == "cancelled"
    _assert_cancelled(raw, "q", jid, "wait")
    job = await omniq.reserve("q", now_ms=T0 + 2)
    assert job is not None
    assert job.job_id == other
    assert await omniq.reserve("q", now_ms=T0 + 3) is None
    assert await omniq.cancel("q", jid, now_ms=T0 + 4) == "finished"  # a second cancel


async def test_cancel_delayed_job(omniq, raw):
    jid = await omniq.publish("q", {}, delay_ms=100, now_ms=T0)
    assert await omniq.cancel("q", jid, now_ms=T0 + 1) == "cancelled"
    _assert_cancelled(raw, "q", jid, "delayed")
    assert await omniq.promote_delayed("q", now_ms=T0 + 1000) == 0
    assert await omniq.reserve("q", now_ms=T0 + 1000) is None


async def test_cancel_keeps_failed_retention(omniq_redis_url, raw):
    from omniq import AsyncOmniq

    async with AsyncOmniq(url=omniq_redis_url, keep_failed=1, keep_failed_ms=500) as c:
        a = await c.publish("q", {}, now_ms=T0)
        b = await c.publish("q", {}, now_ms=T0)
        assert await c.cancel("q", a, now_ms=T0 + 1) == "cancelled"
        assert raw.hget(jk("q", a), "expire_ms") == str(T0 + 501)
        assert await c.cancel("q", b, now_ms=T0 + 2) == "cancelled"
    assert raw.lrange(qk("q", "failed"), 0, -1) == [b]  # keep_failed=1 trimmed a
    assert not raw.exists(jk("q", a))


async def test_cancel_group_head_lets_next_run(omniq, raw):
    a = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    b = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    assert await omniq.cancel("q", a, now_ms=T0 + 1) == "cancelled"
    _assert_cancelled(raw, "q", a, "wait")
    job = await omniq.reserve("q", now_ms=T0 + 2)
    assert job is not None
    assert job.job_id == b


async def test_cancel_group_waiting_behind_active_job(omniq, raw):
    a = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    b = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    c = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == a
    assert await omniq.cancel("q", b, now_ms=T0 + 2) == "cancelled"
    _assert_cancelled(raw, "q", b, "wait")
    assert await omniq.reserve("q", now_ms=T0 + 3) is None  # a still holds the slot
    await omniq.ack_success("q", a, job.lease_token, now_ms=T0 + 4)
    nxt = await omniq.reserve("q", now_ms=T0 + 5)
    assert nxt is not None
    assert nxt.job_id == c


async def test_cancel_active_group_job_frees_slot_after_ack(omniq, raw):
    a = await omniq.publish("q", {}, gid="g", group_limit=1, max_attempts=3, now_ms=T0)
    b = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == a
    assert await omniq.cancel("q", a, now_ms=T0 + 2) == "cancelling"
    out = await omniq.ack_fail("q", a, job.lease_token, "cancelled", final=True, now_ms=T0 + 3)
    assert out.status == "FAILED"
    nxt = await omniq.reserve("q", now_ms=T0 + 4)
    assert nxt is not None
    assert nxt.job_id == b
    assert stored_stats(raw, "q") == real_stats(raw, "q")


async def test_cancel_only_job_of_group_forgets_group(omniq, raw):
    a = await omniq.publish("q", {}, gid="g", group_limit=2, now_ms=T0)
    assert await omniq.cancel("q", a, now_ms=T0 + 1) == "cancelled"
    assert not raw.exists(gk("q", "g", "wait"))
    assert not raw.exists(gk("q", "g", "limit"))
    assert raw.zscore(qk("q", "groups:ready"), "g") is None
    assert await omniq.reserve("q", now_ms=T0 + 2) is None


# -- results for finished and unknown jobs --------------------------------------------------


async def test_cancel_finished_and_unknown(omniq, raw):
    job = await leased(omniq)
    await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 20)
    before = raw.hgetall(jk("q", job.job_id))
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 30) == "finished"
    assert raw.hgetall(jk("q", job.job_id)) == before
    assert await omniq.cancel("q", "nope", now_ms=T0 + 30) == "not_found"
    failed = await leased(omniq, max_attempts=1)
    await omniq.ack_fail("q", failed.job_id, failed.lease_token, "boom", now_ms=T0 + 20)
    assert await omniq.cancel("q", failed.job_id, now_ms=T0 + 30) == "finished"
    assert raw.hget(jk("q", failed.job_id), "last_error") == "boom"


async def test_cancel_bad_input_is_typed(omniq, raw):
    with pytest.raises(InvalidArgument):
        await omniq.cancel("q", "")
    with pytest.raises(InvalidArgument):
        await omniq.cancel("bad{name", "a")
    with pytest.raises(InvalidArgument):
        await omniq.cancel("q", "a", now_ms=-1)
    assert raw.dbsize() == 0


# -- active jobs -----------------------------------------------------------------------------


async def test_cancel_active_flags_and_heartbeat_says_cancel(omniq, raw):
    job = await leased(omniq, max_attempts=3)
    assert isinstance(await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 15),
                      int)
    assert not isinstance(
        await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 15), CancelRequested)
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 20) == "cancelling"
    assert raw.hget(jk("q", job.job_id), "cancel_requested_ms") == str(T0 + 20)
    assert raw.hget(jk("q", job.job_id), "state") == "active"
    lock = await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 30)
    assert isinstance(lock, CancelRequested)
    assert lock == T0 + 30 + job.timeout_ms  # the lease is still extended
    many = await omniq.heartbeat_many([("q", job.job_id, job.lease_token)], now_ms=T0 + 31)
    assert isinstance(many[0], CancelRequested)
    # a second cancel changes nothing and says the same
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 40) == "cancelling"
    assert raw.hget(jk("q", job.job_id), "cancel_requested_ms") == str(T0 + 20)
    assert [e["state"] for e in _events(raw, "q", job.job_id) if e["type"] == "cancelled"] == [
        "active"]
    # a retryable failure is final once cancel was requested, with error 'cancelled'
    out = await omniq.ack_fail("q", job.job_id, job.lease_token, "ValueError: x",
                               now_ms=T0 + 50)
    assert out.status == "FAILED"
    h = raw.hgetall(jk("q", job.job_id))
    assert h["state"] == "failed"
    assert h["last_error"] == "cancelled"
    assert _events(raw, "q", job.job_id)[-1]["error"] == "cancelled"
    assert stored_stats(raw, "q") == real_stats(raw, "q")


async def test_cancel_publishes_wake_message(omniq, raw):
    job = await leased(omniq)
    sub = raw.pubsub()
    sub.subscribe(qk("q", "wake"))
    assert sub.get_message(timeout=2)["type"] == "subscribe"
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 20) == "cancelling"
    msg = sub.get_message(timeout=2)
    assert msg is not None
    assert msg["data"] == f"cancel:{job.job_id}"
    sub.close()


async def test_reap_of_cancelled_job_is_final(omniq, raw):
    job = await leased(omniq, max_attempts=5, timeout_ms=100)
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 20) == "cancelling"
    assert await omniq.reap_expired("q", now_ms=T0 + 1000) == 1
    h = raw.hgetall(jk("q", job.job_id))
    assert h["state"] == "failed"
    assert h["last_error"] == "cancelled"
    assert raw.zscore(qk("q", "delayed"), job.job_id) is None


async def test_ack_reserve_fail_of_cancelled_job_is_final(omniq, raw):
    from omniq import Ack

    job = await leased(omniq, max_attempts=5)
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 20) == "cancelling"
    outcomes, _ = await omniq.ack_reserve(
        "q", [Ack(job.job_id, job.lease_token, False, "TypeError: y")], 0, now_ms=T0 + 30)
    assert outcomes[0].status == "FAILED"
    assert raw.hget(jk("q", job.job_id), "last_error") == "cancelled"


async def test_success_ack_after_cancel_completes(omniq, raw):
    """The work was done: a success ack that still arrives (an official worker, or one
    that finished first) completes the job."""
    job = await leased(omniq)
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 20) == "cancelling"
    await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 30)
    assert raw.hget(jk("q", job.job_id), "state") == "completed"
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 40) == "finished"


async def test_retry_of_cancelled_job_runs_without_flag(omniq, raw):
    job = await leased(omniq, max_attempts=2)
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 20) == "cancelling"
    await omniq.ack_fail("q", job.job_id, job.lease_token, "cancelled", final=True,
                         now_ms=T0 + 30)
    await omniq.retry_failed("q", job.job_id, now_ms=T0 + 40)
    assert raw.hget(jk("q", job.job_id), "cancel_requested_ms") is None
    again = await omniq.reserve("q", now_ms=T0 + 50)
    assert again is not None
    assert again.job_id == job.job_id
    lock = await omniq.heartbeat("q", again.job_id, again.lease_token, now_ms=T0 + 60)
    assert not isinstance(lock, CancelRequested)


# -- races ----------------------------------------------------------------------------------


async def test_cancel_before_reserve_wins(omniq, raw):
    """Scripts are atomic: whichever runs first decides (the concurrent mix is below)."""
    jid = await omniq.publish("q", {}, now_ms=T0)
    assert await omniq.cancel("q", jid, now_ms=T0 + 1) == "cancelled"
    assert await omniq.reserve("q", now_ms=T0 + 1) is None
    _assert_cancelled(raw, "q", jid, "wait")


async def test_reserve_before_cancel_means_cancelling(omniq, raw):
    jid = await omniq.publish("q", {}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    result = await omniq.cancel("q", jid, now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == jid
    assert result == "cancelling"
    assert raw.hget(jk("q", jid), "state") == "active"


async def test_concurrent_cancel_and_reserve_agree(omniq_redis_url, raw):
    """Many jobs, cancels and reservations racing: every job is either cancelled (never
    leased) or leased and then flagged, never both and never lost."""
    from omniq import AsyncOmniq

    async with AsyncOmniq(url=omniq_redis_url) as a, AsyncOmniq(url=omniq_redis_url) as b:
        ids = [await a.publish("q", {}, job_id=f"j{i}") for i in range(40)]
        reserved: list[str] = []

        async def reserver() -> None:
            while True:
                job = await b.reserve("q")
                if job is None:
                    return
                reserved.append(job.job_id)

        results, _ = await within(asyncio.gather(
            asyncio.gather(*(a.cancel("q", i) for i in ids)), reserver()), 10, "the race")
    for jid, result in zip(ids, results, strict=True):
        state = raw.hget(jk("q", jid), "state")
        if result == "cancelled":
            assert jid not in reserved
            assert state == "failed"
        else:
            assert result == "cancelling"
            assert jid in reserved
            assert state == "active"
            assert raw.hget(jk("q", jid), "cancel_requested_ms") is not None
    assert stored_stats(raw, "q") == real_stats(raw, "q")


async def test_cancel_during_retry_backoff_never_runs_again(omniq, raw):
    job = await leased(omniq, max_attempts=3, backoff_ms=100)
    out = await omniq.ack_fail("q", job.job_id, job.lease_token, "e", now_ms=T0 + 20)
    assert out.status == "RETRY"
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 30) == "cancelled"
    _assert_cancelled(raw, "q", job.job_id, "delayed")
    assert await omniq.promote_delayed("q", now_ms=T0 + 10_000) == 0
    assert await omniq.reserve("q", now_ms=T0 + 10_000) is None


async def test_ack_after_cancel_of_waiting_job_is_refused(omniq, raw):
    """A stale lease (its job was reaped, retried and then cancelled while waiting) cannot
    revive the cancelled job."""
    job = await leased(omniq, max_attempts=3, timeout_ms=100)
    assert await omniq.reap_expired("q", now_ms=T0 + 1000) == 1
    await omniq.promote_delayed("q", now_ms=T0 + 10_000)
    assert await omniq.cancel("q", job.job_id, now_ms=T0 + 10_001) == "cancelled"
    from omniq import LeaseLost

    with pytest.raises(LeaseLost):
        await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 10_002)
    assert raw.hget(jk("q", job.job_id), "state") == "failed"


# -- partitioned queues and the sync facade --------------------------------------------------


async def test_cancel_on_partitioned_queue(omniq, raw):
    assert await omniq.partition_queue("p", 4) is True
    ids = [await omniq.publish("p", {}, gid=f"g{i}", now_ms=T0) for i in range(8)]
    for jid in ids:
        assert await omniq.cancel("p", jid, now_ms=T0 + 1) == "cancelled"
    assert await omniq.cancel("p", "missing", now_ms=T0 + 1) == "not_found"
    assert await omniq.reserve("p", now_ms=T0 + 2) is None
    failed = sum(raw.llen(qk(f"p.p{i}", "failed")) for i in range(4))
    assert failed == 8


def test_sync_cancel(omniq_sync: OmniqClient, raw):
    c = omniq_sync
    jid = c.publish("q", {}, now_ms=T0)
    assert c.cancel("q", jid, now_ms=T0 + 1) == "cancelled"
    assert c.cancel("q", jid, now_ms=T0 + 2) == "finished"
    assert c.cancel("q", "x", now_ms=T0 + 2) == "not_found"
    assert raw.hget(jk("q", jid), "last_error") == "cancelled"


async def test_cancelled_events_read_back_with_state(omniq):
    a = await omniq.publish("q", {}, job_id="a", now_ms=T0)
    await omniq.publish("q", {}, job_id="b", delay_ms=50, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == a
    assert await omniq.cancel("q", "b", now_ms=T0 + 2) == "cancelled"
    assert await omniq.cancel("q", "a", now_ms=T0 + 3) == "cancelling"
    events = await within(_read_all(omniq.events("q", since="0"), 6), 10, "the events")
    cancelled = [(e.job_id, e.state, e.ms) for e in events if e.type == "cancelled"]
    assert cancelled == [("b", "delayed", T0 + 2), ("a", "active", T0 + 3)]
    failed = [e for e in events if e.type == "failed"]
    assert [(e.job_id, e.error) for e in failed] == [("b", "cancelled")]


async def _read_all(stream, n):
    out = []
    async for event in stream:
        out.append(event)
        if len(out) == n:
            break
    return out
