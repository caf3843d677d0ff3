"""Heartbeats, token gating, lease expiry and reaping."""

from __future__ import annotations

import pytest
from core_util import T0, gk, jk, leased, qk

from omniq import Lease, LeaseLost
from omniq._limits import FALLBACK_LEASE_MS


async def test_heartbeat_extends_to_now_plus_timeout(omniq, raw):
    job = await leased(omniq, timeout_ms=1000)
    assert job.lock_until_ms == T0 + 1010
    lock = await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 500)
    assert lock == T0 + 1500
    h = raw.hgetall(jk("q", job.job_id))
    assert h["lock_until_ms"] == str(T0 + 1500)
    assert h["updated_ms"] == str(T0 + 500)
    assert raw.zscore(qk("q", "active"), job.job_id) == T0 + 1500


async def test_heartbeat_of_a_job_without_a_timeout_uses_the_v1_fallback(omniq, raw):
    # jobs written by other clients may store timeout_ms <= 0: the lease is then 60 s
    job = await leased(omniq, timeout_ms=1000)
    raw.hset(jk("q", job.job_id), "timeout_ms", "0")
    lock = await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 500)
    assert lock == T0 + 500 + FALLBACK_LEASE_MS


async def test_heartbeat_token_required(omniq):
    job = await leased(omniq)
    with pytest.raises(LeaseLost) as ei:
        await omniq.heartbeat("q", job.job_id, "", now_ms=T0 + 20)
    assert ei.value.code == "TOKEN_REQUIRED"


async def test_heartbeat_token_mismatch(omniq, raw):
    job = await leased(omniq)
    with pytest.raises(LeaseLost) as ei:
        await omniq.heartbeat("q", job.job_id, "f" * 40, now_ms=T0 + 20)
    assert ei.value.code == "TOKEN_MISMATCH"
    assert ei.value.job_id == job.job_id
    assert raw.zscore(qk("q", "active"), job.job_id) == job.lock_until_ms  # unchanged


async def test_heartbeat_unknown_job(omniq):
    with pytest.raises(LeaseLost) as ei:
        await omniq.heartbeat("q", "nope", "a" * 40, now_ms=T0)
    assert ei.value.code == "TOKEN_MISMATCH"


async def test_heartbeat_not_active(omniq, raw):
    job = await leased(omniq)
    raw.zrem(qk("q", "active"), job.job_id)  # token still matches, but not in active
    with pytest.raises(LeaseLost) as ei:
        await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 20)
    assert ei.value.code == "NOT_ACTIVE"


async def test_heartbeat_after_ack_is_lost(omniq):
    job = await leased(omniq)
    await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 20)
    with pytest.raises(LeaseLost):
        await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 30)


async def test_heartbeat_many_two_queues(omniq, raw):
    a = await leased(omniq, "qa", timeout_ms=100)
    b = await leased(omniq, "qb", timeout_ms=200)
    a2 = await leased(omniq, "qa", timeout_ms=300)
    lost = await leased(omniq, "qb", timeout_ms=400)
    await omniq.ack_success("qb", lost.job_id, lost.lease_token, now_ms=T0 + 20)
    res = await omniq.heartbeat_many(
        [
            Lease("qa", a.job_id, a.lease_token),
            ("qb", b.job_id, b.lease_token),
            Lease("qb", lost.job_id, lost.lease_token),
            Lease("qa", a2.job_id, a2.lease_token),
        ],
        now_ms=T0 + 50,
    )
    assert res[0] == T0 + 150
    assert res[1] == T0 + 250
    assert isinstance(res[2], LeaseLost)
    assert res[2].code == "TOKEN_MISMATCH"
    assert res[2].job_id == lost.job_id
    assert res[3] == T0 + 350
    assert raw.zscore(qk("qb", "active"), b.job_id) == T0 + 250


async def test_heartbeat_many_empty(omniq):
    assert await omniq.heartbeat_many([]) == []


async def test_reap_expired_retries(omniq, raw):
    job = await leased(omniq, timeout_ms=1000, backoff_ms=300, max_attempts=2)
    assert await omniq.reap_expired("q", now_ms=T0 + 1009) == 0  # not yet expired
    assert await omniq.reap_expired("q", now_ms=T0 + 1010) == 1  # expiry is inclusive
    h = raw.hgetall(jk("q", job.job_id))
    assert h["state"] == "delayed"
    assert h["due_ms"] == str(T0 + 1310)
    assert h["lease_token"] == ""
    assert h["lock_until_ms"] == ""
    assert h["last_error"].startswith("LeaseExpired")
    assert h["last_error_ms"] == str(T0 + 1010)
    assert raw.zscore(qk("q", "delayed"), job.job_id) == T0 + 1310
    assert raw.zcard(qk("q", "active")) == 0
    assert raw.zcard(qk("q", "idx:active")) == 0
    assert raw.zscore(qk("q", "idx:delayed"), job.job_id) == T0 + 1010
    # the old holder lost its lease
    with pytest.raises(LeaseLost):
        await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 1011)


async def test_reap_expired_fails_on_last_attempt(omniq, raw):
    job = await leased(omniq, timeout_ms=1000, max_attempts=1)
    assert await omniq.reap_expired("q", now_ms=T0 + 5000) == 1
    h = raw.hgetall(jk("q", job.job_id))
    assert h["state"] == "failed"
    assert h["failed_ms"] == str(T0 + 5000)
    assert "LeaseExpired" in h["last_error"]
    assert raw.lrange(qk("q", "failed"), 0, -1) == [job.job_id]
    assert raw.zscore(qk("q", "idx:failed"), job.job_id) == T0 + 5000


async def test_reap_releases_group_slot(omniq, raw):
    await omniq.publish_many("q", [{"n": 1}, {"n": 2}], gid="g", timeout_ms=1000, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 10)
    assert await omniq.reserve("q", now_ms=T0 + 20) is None
    assert await omniq.reap_expired("q", now_ms=T0 + 2000) == 1
    assert raw.exists(gk("q", "g", "inflight")) == 0
    assert raw.zscore(qk("q", "groups:ready"), "g") == T0 + 2000
    nxt = await omniq.reserve("q", now_ms=T0 + 2001)
    assert nxt is not None
    assert nxt.payload == {"n": 2}
    assert job.job_id != nxt.job_id


async def test_reap_max_reap(omniq, raw):
    await omniq.publish_many("q", [{}] * 5, timeout_ms=10, now_ms=T0)
    await omniq.reserve_many("q", 5, now_ms=T0)
    assert await omniq.reap_expired("q", max_reap=2, now_ms=T0 + 100) == 2
    assert raw.zcard(qk("q", "active")) == 3
    assert await omniq.reap_expired("q", now_ms=T0 + 100) == 3


async def test_late_heartbeat_before_reap_revives(omniq):
    job = await leased(omniq, timeout_ms=100)
    lock = await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 500)
    assert lock == T0 + 600
    assert await omniq.reap_expired("q", now_ms=T0 + 599) == 0


async def test_token_changes_each_reservation(omniq):
    job = await leased(omniq, timeout_ms=100, backoff_ms=0, max_attempts=3)
    await omniq.reap_expired("q", now_ms=T0 + 200)
    await omniq.promote_delayed("q", now_ms=T0 + 200)
    again = await omniq.reserve("q", now_ms=T0 + 201)
    assert again is not None
    assert again.job_id == job.job_id
    assert again.attempt == 2
    assert again.lease_token != job.lease_token
    with pytest.raises(LeaseLost):
        await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 202)
    await omniq.heartbeat("q", job.job_id, again.lease_token, now_ms=T0 + 202)
