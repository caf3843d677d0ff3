"""reserve / reserve_many, pause and lane scheduling of ungrouped jobs."""

from __future__ import annotations

import re

import pytest
from core_util import T0, jk, qk

from omniq import InvalidArgument

TOKEN_RE = re.compile(r"[0-9a-f]{40}")


async def test_reserve_empty(omniq, raw):
    assert await omniq.reserve("q", now_ms=T0) is None
    res = await omniq.reserve_many("q", 5, now_ms=T0)
    assert res.status == "EMPTY"
    assert res.jobs == []
    assert raw.dbsize() == 0  # an empty reserve writes nothing


async def test_reserve_fields(omniq, raw):
    jid = await omniq.publish(
        "q", {"k": [1, 2]}, max_attempts=4, timeout_ms=9000, now_ms=T0
    )
    job = await omniq.reserve("q", now_ms=T0 + 10)
    assert job is not None
    assert job.queue == "q"
    assert job.job_id == jid
    assert job.payload == {"k": [1, 2]}
    assert job.payload_raw == '{"k":[1,2]}'
    assert job.attempt == 1
    assert job.max_attempts == 4
    assert job.timeout_ms == 9000
    assert job.lock_until_ms == T0 + 10 + 9000
    assert job.gid == ""
    assert TOKEN_RE.fullmatch(job.lease_token)
    assert raw.hget(jk("q", jid), "lease_token") == job.lease_token
    assert raw.zscore(qk("q", "active"), jid) == T0 + 9010


async def test_reserve_fifo_ungrouped(omniq):
    ids = await omniq.publish_many("q", [[i] for i in range(5)], now_ms=T0)
    got = [(await omniq.reserve("q", now_ms=T0 + 1)).job_id for _ in range(5)]
    assert got == ids
    assert await omniq.reserve("q", now_ms=T0 + 1) is None


async def test_reserve_many_count(omniq, raw):
    ids = await omniq.publish_many("q", [[i] for i in range(7)], now_ms=T0)
    res = await omniq.reserve_many("q", 3, now_ms=T0 + 1)
    assert res.status == "JOB"
    assert [j.job_id for j in res.jobs] == ids[:3]
    assert len({j.lease_token for j in res.jobs}) == 3
    res = await omniq.reserve_many("q", 10, now_ms=T0 + 1)
    assert [j.job_id for j in res.jobs] == ids[3:]
    assert raw.zcard(qk("q", "active")) == 7
    assert (await omniq.reserve_many("q", 10, now_ms=T0 + 1)).status == "EMPTY"


async def test_reserve_many_bad_count(omniq):
    for bad in (0, -1, 1001):
        with pytest.raises(InvalidArgument):
            await omniq.reserve_many("q", bad)


async def test_pause_resume(omniq, raw):
    jid = await omniq.publish("q", {}, now_ms=T0)
    assert await omniq.is_paused("q") is False
    assert await omniq.resume("q") is False  # was not paused
    await omniq.pause("q")
    assert raw.get(qk("q", "paused")) == "1"
    assert await omniq.is_paused("q") is True
    assert await omniq.reserve("q", now_ms=T0 + 1) is None
    res = await omniq.reserve_many("q", 3, now_ms=T0 + 1)
    assert res.status == "PAUSED"
    assert raw.lrange(qk("q", "wait"), 0, -1) == [jid]  # nothing leased
    # publishing still works while paused
    await omniq.publish("q", {}, now_ms=T0 + 2)
    assert await omniq.resume("q") is True
    assert await omniq.is_paused("q") is False
    assert raw.exists(qk("q", "paused")) == 0
    job = await omniq.reserve("q", now_ms=T0 + 3)
    assert job is not None
    assert job.job_id == jid


async def test_pause_does_not_touch_active_jobs(omniq, raw):
    jid = await omniq.publish("q", {}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    await omniq.pause("q")
    await omniq.heartbeat("q", jid, job.lease_token, now_ms=T0 + 2)
    await omniq.ack_success("q", jid, job.lease_token, now_ms=T0 + 3)
    assert raw.hget(jk("q", jid), "state") == "completed"


async def test_lanes_alternate_grouped_and_ungrouped(omniq):
    await omniq.publish_many("q", [{"u": i} for i in range(3)], now_ms=T0)
    await omniq.publish_many(
        "q", [{"g": i} for i in range(3)], gid="g", group_limit=10, now_ms=T0
    )
    res = await omniq.reserve_many("q", 6, now_ms=T0 + 1)
    kinds = ["g" if j.gid else "u" for j in res.jobs]
    assert kinds == list("gugugu")  # no lane:rr yet: grouped lane first (v4 rule)


async def test_lane_alternation_survives_one_empty_lane(omniq):
    await omniq.publish_many("q", [{"u": i} for i in range(3)], now_ms=T0)
    res = await omniq.reserve_many("q", 3, now_ms=T0 + 1)
    assert len(res.jobs) == 3  # grouped lane empty: every call falls back to ungrouped

