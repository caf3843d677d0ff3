"""Admin operations: retry_failed(_batch), remove_job(s), inspection."""

from __future__ import annotations

import pytest
from core_util import T0, gk, jk, qk

from omniq import (
    AsyncOmniq,
    BatchResult,
    InvalidArgument,
    JobNotFound,
    LaneMismatch,
)


async def _failed(omniq, queue="q", job_id=None, **opts):
    jid = await omniq.publish(queue, {}, job_id=job_id, max_attempts=1, now_ms=T0, **opts)
    job = await omniq.reserve(queue, now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == jid
    assert (await omniq.ack_fail(queue, jid, job.lease_token, "e", now_ms=T0 + 2)).status == (
        "FAILED"
    )
    return jid


async def _completed(omniq, queue="q", **opts):
    jid = await omniq.publish(queue, {}, now_ms=T0, **opts)
    job = await omniq.reserve(queue, now_ms=T0 + 1)
    await omniq.ack_success(queue, jid, job.lease_token, now_ms=T0 + 2)
    return jid


class _NoCalls:
    """Stands in for the script runner: any script call fails the test."""

    async def call(self, *args, **kwargs):
        raise AssertionError("no script call expected")

    call_many = call


def _no_calls(omniq, monkeypatch):
    monkeypatch.setattr(omniq, "_runner", _NoCalls())


# -- retry_failed --------------------------------------------------------------------------


async def test_retry_failed(omniq, raw):
    jid = await _failed(omniq)
    await omniq.retry_failed("q", jid, now_ms=T0 + 10)
    h = raw.hgetall(jk("q", jid))
    assert h["state"] == "wait"
    assert h["attempt"] == "0"
    assert h["failed_ms"] == ""
    assert h["due_ms"] == ""
    assert h["lease_token"] == ""
    assert h["last_error"] == "e"  # kept, like v4
    assert raw.lrange(qk("q", "wait"), 0, -1) == [jid]
    assert raw.exists(qk("q", "failed")) == 0
    assert raw.zcard(qk("q", "idx:failed")) == 0
    assert raw.zscore(qk("q", "idx:wait"), jid) == T0 + 10
    job = await omniq.reserve("q", now_ms=T0 + 11)
    assert job.job_id == jid
    assert job.attempt == 1


async def test_retry_failed_grouped(omniq, raw):
    jid = await _failed(omniq, gid="g")
    await omniq.retry_failed("q", jid, now_ms=T0 + 10)
    assert raw.lrange(gk("q", "g", "wait"), 0, -1) == [jid]
    assert raw.zscore(qk("q", "groups:ready"), "g") == T0 + 10


async def test_retry_failed_errors(omniq, raw):
    with pytest.raises(JobNotFound) as ei:
        await omniq.retry_failed("q", "missing", now_ms=T0)
    assert ei.value.code == "NO_JOB"
    jid = await omniq.publish("q", {}, now_ms=T0)
    with pytest.raises(LaneMismatch) as ei:
        await omniq.retry_failed("q", jid, now_ms=T0)
    assert ei.value.code == "NOT_FAILED"


async def test_retry_failed_batch(omniq, raw):
    a = await _failed(omniq)
    b = await _failed(omniq)
    w = await omniq.publish("q", {}, now_ms=T0)
    res = await omniq.retry_failed_batch("q", [a, "missing", w, b], now_ms=T0 + 10)
    assert res == [
        BatchResult(a, "OK", None),
        BatchResult("missing", "ERR", "NO_JOB"),
        BatchResult(w, "ERR", "NOT_FAILED"),
        BatchResult(b, "OK", None),
    ]
    assert raw.lrange(qk("q", "wait"), 0, -1) == [w, a, b]
    assert raw.exists(qk("q", "failed")) == 0


async def test_retry_failed_batch_sizes(omniq, raw, monkeypatch):
    assert await omniq.retry_failed_batch("q", []) == []
    ids = [f"j{i}" for i in range(101)]
    res = await omniq.retry_failed_batch("q", ids[:100], now_ms=T0)
    assert len(res) == 100
    assert {r.reason for r in res} == {"NO_JOB"}
    _no_calls(omniq, monkeypatch)
    with pytest.raises(InvalidArgument):
        await omniq.retry_failed_batch("q", ids, now_ms=T0)
    with pytest.raises(InvalidArgument):
        await omniq.retry_failed_batch("q", "abc")  # a bare string is not a batch
    with pytest.raises(InvalidArgument):
        await omniq.retry_failed_batch("q", ["ok", ""])


# -- remove_job ----------------------------------------------------------------------------


async def test_remove_from_each_lane(omniq, raw, dump):
    w = await omniq.publish("q", {}, now_ms=T0)
    g = await omniq.publish("q", {}, gid="g", now_ms=T0)
    d = await omniq.publish("q", {}, delay_ms=100, now_ms=T0)
    await omniq.remove_job("q", w, "wait", now_ms=T0 + 5)
    await omniq.remove_job("q", g, "gwait", now_ms=T0 + 5)
    await omniq.remove_job("q", d, "delayed", now_ms=T0 + 5)
    f = await _failed(omniq)
    c = await _completed(omniq)
    await omniq.remove_job("q", f, "failed", now_ms=T0 + 5)
    await omniq.remove_job("q", c, "completed", now_ms=T0 + 5)
    for jid in (w, g, d, f, c):
        assert raw.exists(jk("q", jid)) == 0
    snap = dump()
    # nothing of those jobs is left anywhere: only bookkeeping keys remain
    for key, (kind, value, _) in snap.items():
        if kind in ("list", "set"):
            assert not set(value) & {w, g, d, f, c}, key
        if kind == "zset":
            assert not {m for m, _ in value} & {w, g, d, f, c}, key
    assert raw.exists(gk("q", "g", "wait")) == 0
    assert raw.zcard(qk("q", "groups:ready")) == 0
    stats = raw.hgetall(qk("q", "stats"))
    assert stats["waiting_total"] == stats["failed"] == stats["completed_kept"] == "0"
    assert stats["last_activity_ms"] == str(T0 + 5)


async def test_remove_refusals_write_nothing(omniq, raw, dump):
    active = await omniq.publish("q", {}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job.job_id == active
    waiting = await omniq.publish("q", {}, now_ms=T0 + 2)
    grouped = await omniq.publish("q", {}, gid="g", now_ms=T0 + 3)
    other_g = await omniq.publish("q", {}, gid="h", now_ms=T0 + 4)
    before = dump()
    cases = [
        ("missing", "wait", JobNotFound, "NO_JOB"),
        (active, "wait", LaneMismatch, "ACTIVE"),
        (waiting, "failed", LaneMismatch, "LANE_MISMATCH"),
        (waiting, "gwait", LaneMismatch, "LANE_MISMATCH"),  # gwait for an ungrouped job
        (grouped, "delayed", LaneMismatch, "LANE_MISMATCH"),
        (grouped, "wait", LaneMismatch, "NOT_IN_LANE"),  # grouped job needs gwait
    ]
    for jid, lane, exc, code in cases:
        with pytest.raises(exc) as ei:
            await omniq.remove_job("q", jid, lane, now_ms=T0 + 100)
        assert ei.value.code == code, (jid, lane)
        assert dump() == before, (jid, lane)
    # state says wait but the id is not in its list: NOT_IN_LANE, nothing written
    raw.lrem(gk("q", "h", "wait"), 1, other_g)
    before = dump()
    with pytest.raises(LaneMismatch) as ei:
        await omniq.remove_job("q", other_g, "gwait", now_ms=T0 + 100)
    assert ei.value.code == "NOT_IN_LANE"
    assert dump() == before


async def test_remove_job_bad_lane_is_client_side(omniq, raw, monkeypatch):
    _no_calls(omniq, monkeypatch)
    with pytest.raises(InvalidArgument):
        await omniq.remove_job("q", "x", "active")


async def test_remove_jobs_batch(omniq, raw):
    a = await omniq.publish("q", {}, now_ms=T0)
    b = await omniq.publish("q", {}, now_ms=T0)
    g = await omniq.publish("q", {}, gid="g", now_ms=T0)
    res = await omniq.remove_jobs_batch("q", "wait", [a, "missing", g, b], now_ms=T0 + 1)
    assert res == [
        BatchResult(a, "OK", None),
        BatchResult("missing", "ERR", "NO_JOB"),
        BatchResult(g, "ERR", "NOT_IN_LANE"),
        BatchResult(b, "OK", None),
    ]
    assert raw.exists(jk("q", a), jk("q", b)) == 0
    assert raw.exists(jk("q", g)) == 1
    assert raw.hget(qk("q", "stats"), "last_activity_ms") == str(T0 + 1)


async def test_remove_jobs_batch_validation(omniq, raw, monkeypatch):
    assert await omniq.remove_jobs_batch("q", "wait", []) == []
    _no_calls(omniq, monkeypatch)
    with pytest.raises(InvalidArgument):
        await omniq.remove_jobs_batch("q", "bogus", ["a"])
    with pytest.raises(InvalidArgument):
        await omniq.remove_jobs_batch("q", "wait", [f"j{i}" for i in range(101)])


# -- inspection ----------------------------------------------------------------------------


async def test_get_job(omniq):
    assert await omniq.get_job("q", "missing") is None
    jid = await omniq.publish("q", {"p": 1}, gid="g", max_attempts=4, timeout_ms=99,
                              backoff_ms=7, now_ms=T0)
    info = await omniq.get_job("q", jid)
    assert info is not None
    assert (info.job_id, info.state, info.gid, info.payload) == (jid, "wait", "g", {"p": 1})
    assert (info.max_attempts, info.timeout_ms, info.backoff_ms) == (4, 99, 7)
    assert info.created_ms == T0
    assert info.first_started_ms is None
    assert info.lease_token is None
    assert info.last_error is None
    assert info.fields["queued_ms"] == str(T0)
    ungrouped = await omniq.get_job("q", await omniq.publish("q", {}, now_ms=T0))
    assert ungrouped is not None
    assert ungrouped.gid is None


async def test_stats(omniq):
    await _failed(omniq)
    await _completed(omniq)
    await omniq.publish_many("q", [{}] * 3, now_ms=T0)
    await omniq.publish_many("q", [{}] * 2, gid="g", now_ms=T0)
    await omniq.publish_many("q", [{}] * 2, gid="h", now_ms=T0)
    await omniq.publish("q", {}, delay_ms=10, now_ms=T0)
    await omniq.reserve_many("q", 2, now_ms=T0 + 3)  # one of g, one ungrouped
    await omniq.pause("q")
    s = await omniq.stats("q")
    assert s.paused is True
    assert (s.active, s.delayed, s.failed, s.completed_kept) == (2, 1, 1, 1)
    assert (s.waiting, s.group_waiting, s.waiting_total) == (2, 3, 5)
    assert s.groups_ready == 1  # h; g is at its limit
    assert s.last_enqueue_ms == T0
    assert s.last_reserve_ms == T0 + 3
    assert s.last_finish_ms == T0 + 2


async def test_stats_empty_queue(omniq):
    s = await omniq.stats("nothing")
    assert (s.waiting_total, s.active, s.paused, s.last_activity_ms) == (0, 0, False, None)


async def test_queues(omniq, raw):
    assert await omniq.queues() == []
    await omniq.publish("alpha", {}, now_ms=T0)
    await omniq.publish("beta.2", {}, now_ms=T0)
    raw.hset("{bad name}:stats", "waiting", "0")  # fails name validation: dropped
    raw.set("{gamma}:stats", "x")  # not a hash: not a queue
    assert await omniq.queues() == ["alpha", "beta.2"]


async def test_shared_bytes_mode_redis_client(omniq_redis_url, raw):
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from omniq.aio._connect import is_cluster_url, plain_url

    if is_cluster_url(omniq_redis_url):
        shared = RedisCluster.from_url(plain_url(omniq_redis_url))  # decode_responses=False
    else:
        shared = Redis.from_url(omniq_redis_url)
    try:
        c = AsyncOmniq(shared)
        jid = await c.publish("q", {"é": 1}, gid="g", now_ms=T0)
        job = await c.reserve("q", now_ms=T0 + 1)
        assert (job.job_id, job.payload, job.gid) == (jid, {"é": 1}, "g")
        await c.ack_success("q", jid, job.lease_token, result=[1], now_ms=T0 + 2)
        info = await c.get_job("q", jid)
        assert (info.state, info.result, info.gid) == ("completed", [1], "g")
        assert (await c.stats("q")).completed_kept == 1
        assert await c.queues() == ["q"]
        await c.aclose()  # does not close a client it was given
        assert await shared.ping()
    finally:
        await shared.aclose()
