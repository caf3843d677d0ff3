"""Retention by age: ``keep_completed_ms`` / ``keep_failed_ms`` (per client and per publish),
applied by the scripts themselves, next to the count limits."""

from __future__ import annotations

import pytest
from core_util import T0
from shared_util import jk, qk

from omniq import AsyncOmniq, InvalidArgument


async def _run(omniq: AsyncOmniq, now: int, *, fail: bool = False, queue: str = "q") -> str:
    job = await omniq.reserve(queue, now_ms=now)
    assert job is not None
    if fail:
        await omniq.ack_fail(queue, job.job_id, job.lease_token, "E: x", final=True, now_ms=now)
    else:
        await omniq.ack_success(queue, job.job_id, job.lease_token, result=1, now_ms=now)
    return job.job_id


def _gone(raw, queue: str, job_id: str, lane: str) -> bool:
    return (raw.exists(jk(queue, job_id)) == 0
            and job_id not in raw.lrange(qk(queue, lane), 0, -1)
            and raw.zscore(qk(queue, f"idx:{lane}"), job_id) is None
            and raw.zscore(qk(queue, "expire"), job_id) is None)


async def test_a_completed_job_is_deleted_once_its_time_is_over(omniq, raw):
    old = await omniq.publish("q", {}, keep_completed_ms=1_000, now_ms=T0)
    await _run(omniq, T0 + 10)  # completed at T0+10: may go at T0+1010
    assert raw.hget(jk("q", old), "expire_ms") == str(T0 + 1_010)
    await omniq.publish("q", {}, now_ms=T0 + 20)  # no age limit
    await _run(omniq, T0 + 1_009)
    assert raw.exists(jk("q", old)) == 1  # not yet
    await omniq.publish("q", {}, now_ms=T0 + 1_010)
    await _run(omniq, T0 + 1_010)  # the next ack at or after its time deletes it
    assert _gone(raw, "q", old, "completed")
    assert (await omniq.stats("q")).completed_kept == 2


async def test_a_failed_job_is_deleted_once_its_time_is_over(omniq, raw):
    jid = await omniq.publish("q", {}, keep_failed_ms=500, now_ms=T0)
    await _run(omniq, T0 + 10, fail=True)
    assert (await omniq.get_job("q", jid)).expire_ms == T0 + 510
    assert await omniq.promote_delayed("q", now_ms=T0 + 509) == 0
    assert raw.exists(jk("q", jid)) == 1
    # an idle queue is cleaned by the worker's maintenance call (promote_delayed)
    assert await omniq.promote_delayed("q", now_ms=T0 + 510) == 0
    assert _gone(raw, "q", jid, "failed")
    assert (await omniq.stats("q")).failed == 0


async def test_the_client_setting_is_the_default_and_a_publish_overrides_it(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_completed_ms=100) as c:
        a = await c.publish("q", {}, now_ms=T0)
        b = await c.publish("q", {}, keep_completed_ms=0, now_ms=T0)  # only the count limit
        c_ = await c.publish("q", {}, keep_completed_ms=10_000, now_ms=T0)
        ids = await c.publish_many("q", [{}], now_ms=T0)
        for _ in range(4):
            await _run(c, T0 + 1)
        await c.promote_delayed("q", now_ms=T0 + 101)
        assert raw.exists(jk("q", a)) == 0
        assert raw.exists(jk("q", ids[0])) == 0
        assert raw.exists(jk("q", b)) == 1
        assert raw.exists(jk("q", c_)) == 1
        with pytest.raises(InvalidArgument):
            await c.publish("q", {}, keep_failed_ms=-1)
        with pytest.raises(InvalidArgument):
            await c.publish_many("q", [{}], keep_completed_ms=1.5)


async def test_the_count_limit_still_applies(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_completed=1) as c:
        first = await c.publish("q", {}, keep_completed_ms=60_000, now_ms=T0)
        await _run(c, T0 + 1)
        await c.publish("q", {}, now_ms=T0 + 2)
        await _run(c, T0 + 3)
        assert _gone(raw, "q", first, "completed")  # trimmed by count, its entry too


async def test_a_retried_job_loses_its_expiry(omniq, raw):
    jid = await omniq.publish("q", {}, keep_failed_ms=100, now_ms=T0)
    await _run(omniq, T0 + 1, fail=True)
    await omniq.retry_failed("q", jid, now_ms=T0 + 2)
    assert raw.zscore(qk("q", "expire"), jid) is None
    await omniq.promote_delayed("q", now_ms=T0 + 1_000)
    info = await omniq.get_job("q", jid)
    assert info is not None
    assert info.state == "wait"


async def test_a_stale_entry_never_deletes_a_job_that_reused_the_id(omniq, raw):
    jid = await omniq.publish("q", {}, job_id="same", keep_completed_ms=100, now_ms=T0)
    await _run(omniq, T0 + 1)  # may go at T0+101
    await omniq.remove_job("q", jid, "completed", now_ms=T0 + 2)
    assert raw.zscore(qk("q", "expire"), jid) is None  # removal takes its entry along
    # an entry left behind (by an official client's trim, say) does not match the new job
    raw.zadd(qk("q", "expire"), {"same": T0 + 101})
    await omniq.publish("q", {}, job_id="same", now_ms=T0 + 3)
    await _run(omniq, T0 + 4)
    await omniq.promote_delayed("q", now_ms=T0 + 200)
    info = await omniq.get_job("q", "same")
    assert info is not None
    assert info.state == "completed"
    assert raw.zscore(qk("q", "expire"), "same") is None


async def test_age_limits_on_a_partitioned_queue(omniq, raw):
    await omniq.partition_queue("pq", 2)
    ids = await omniq.publish_many("pq", [{}, {}, {}, {}], keep_completed_ms=50, now_ms=T0)
    for _ in ids:
        res = await omniq.reserve_many("pq", 1, now_ms=T0 + 1)
        (job,) = res.jobs
        await omniq.ack_success(job.queue, job.job_id, job.lease_token, now_ms=T0 + 1)
    await omniq.promote_delayed("pq", now_ms=T0 + 51)
    for jid in ids:
        assert await omniq.get_job("pq", jid) is None
