"""Delayed jobs and promote_delayed."""

from __future__ import annotations

import pytest
from core_util import T0, gk, jk, qk

from omniq import InvalidArgument


async def test_delayed_not_reserved_until_promoted(omniq, raw):
    jid = await omniq.publish("q", {}, due_ms=T0 + 1000, now_ms=T0)
    assert raw.hget(jk("q", jid), "state") == "delayed"
    assert raw.zscore(qk("q", "idx:delayed"), jid) == T0  # when it became delayed
    assert await omniq.reserve("q", now_ms=T0 + 2000) is None  # reserve never promotes
    assert await omniq.promote_delayed("q", now_ms=T0 + 999) == 0
    assert await omniq.promote_delayed("q", now_ms=T0 + 1000) == 1  # due is inclusive
    h = raw.hgetall(jk("q", jid))
    assert h["state"] == "wait"
    assert h["updated_ms"] == str(T0 + 1000)
    assert raw.zcard(qk("q", "delayed")) == 0
    assert raw.zcard(qk("q", "idx:delayed")) == 0
    assert raw.zscore(qk("q", "idx:wait"), jid) == T0 + 1000
    job = await omniq.reserve("q", now_ms=T0 + 1001)
    assert job is not None
    assert job.job_id == jid


async def test_promote_goes_to_lane_tail(omniq, raw):
    d = await omniq.publish("q", {"n": "delayed"}, delay_ms=10, now_ms=T0)
    w1 = await omniq.publish("q", {"n": "w1"}, now_ms=T0 + 1)
    w2 = await omniq.publish("q", {"n": "w2"}, now_ms=T0 + 2)
    assert await omniq.promote_delayed("q", now_ms=T0 + 50) == 1
    assert raw.lrange(qk("q", "wait"), 0, -1) == [w1, w2, d]


async def test_promote_grouped_to_group_tail(omniq, raw):
    d = await omniq.publish("q", {}, gid="g", delay_ms=10, now_ms=T0)
    w = await omniq.publish("q", {}, gid="g", now_ms=T0 + 1)
    job = await omniq.reserve("q", now_ms=T0 + 2)
    assert job.job_id == w
    assert await omniq.promote_delayed("q", now_ms=T0 + 20) == 1
    assert raw.lrange(gk("q", "g", "wait"), 0, -1) == [d]
    assert raw.zcard(qk("q", "groups:ready")) == 0  # group at capacity: not ready yet
    await omniq.ack_success("q", w, job.lease_token, now_ms=T0 + 30)
    assert raw.zscore(qk("q", "groups:ready"), "g") == T0 + 30
    nxt = await omniq.reserve("q", now_ms=T0 + 31)
    assert nxt is not None
    assert nxt.job_id == d


async def test_promote_grouped_readies_free_group(omniq, raw):
    d = await omniq.publish("q", {}, gid="g", delay_ms=10, now_ms=T0)
    assert raw.zcard(qk("q", "groups:ready")) == 0
    await omniq.promote_delayed("q", now_ms=T0 + 10)
    assert raw.zscore(qk("q", "groups:ready"), "g") == T0 + 10
    assert (await omniq.reserve("q", now_ms=T0 + 11)).job_id == d


async def test_promote_max_and_order(omniq, raw):
    ids = [await omniq.publish("q", {}, due_ms=T0 + 10 * (5 - i), now_ms=T0) for i in range(5)]
    assert await omniq.promote_delayed("q", max_promote=2, now_ms=T0 + 100) == 2
    assert raw.lrange(qk("q", "wait"), 0, -1) == [ids[4], ids[3]]  # earliest due first
    assert await omniq.promote_delayed("q", now_ms=T0 + 100) == 3
    with pytest.raises(InvalidArgument):
        await omniq.promote_delayed("q", max_promote=0)


async def test_delay_ms_is_relative(omniq, raw):
    jid = await omniq.publish("q", {}, delay_ms=5000, now_ms=T0)
    assert raw.hget(jk("q", jid), "due_ms") == str(T0 + 5000)
    assert raw.zscore(qk("q", "delayed"), jid) == T0 + 5000


async def test_due_and_delay_together_refused(omniq, raw):
    with pytest.raises(InvalidArgument):
        await omniq.publish("q", {}, due_ms=T0 + 10, delay_ms=10, now_ms=T0)
    assert raw.dbsize() == 0


async def test_retry_backoff_then_promote(omniq, raw):
    jid = await omniq.publish("q", {}, max_attempts=3, backoff_ms=250, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    await omniq.ack_fail("q", jid, job.lease_token, "e", now_ms=T0 + 2)
    assert await omniq.promote_delayed("q", now_ms=T0 + 251) == 0
    assert await omniq.promote_delayed("q", now_ms=T0 + 252) == 1
    again = await omniq.reserve("q", now_ms=T0 + 253)
    assert again.attempt == 2
    assert raw.hget(jk("q", jid), "first_started_ms") == str(T0 + 1)
    assert raw.hget(jk("q", jid), "last_started_ms") == str(T0 + 253)
