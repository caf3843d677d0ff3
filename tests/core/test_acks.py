"""ack_success, ack_fail and the fused ack_reserve."""

from __future__ import annotations

import json

import pytest
from core_util import T0, gk, jk, leased, qk, raw_field, run_script

from omniq import Ack, AsyncOmniq, FailOutcome, LeaseLost


async def test_ack_success_stores_state_and_result(omniq, raw):
    job = await leased(omniq)
    await omniq.ack_success("q", job.job_id, job.lease_token, result={"sum": 3}, now_ms=T0 + 20)
    h = raw.hgetall(jk("q", job.job_id))
    assert h["state"] == "completed"
    assert h["completed_ms"] == h["updated_ms"] == str(T0 + 20)
    assert h["lease_token"] == ""
    assert h["lock_until_ms"] == ""
    assert json.loads(h["result"]) == {"sum": 3}
    assert raw.lrange(qk("q", "completed"), 0, -1) == [job.job_id]
    assert raw.zscore(qk("q", "idx:completed"), job.job_id) == T0 + 20
    assert raw.zcard(qk("q", "active")) == 0
    assert raw.zcard(qk("q", "idx:active")) == 0
    assert await omniq.result("q", job.job_id) == {"sum": 3}
    info = await omniq.get_job("q", job.job_id)
    assert info is not None
    assert info.state == "completed"
    assert info.result == {"sum": 3}


async def test_ack_success_without_result_has_no_field(omniq, raw):
    job = await leased(omniq)
    await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 20)
    assert "result" not in raw.hgetall(jk("q", job.job_id))
    assert await omniq.result("q", job.job_id) is None


async def test_ack_success_scalar_result(omniq):
    job = await leased(omniq)
    await omniq.ack_success("q", job.job_id, job.lease_token, result="done", now_ms=T0 + 20)
    assert await omniq.result("q", job.job_id) == "done"


async def test_ack_success_twice_is_lease_lost(omniq):
    job = await leased(omniq)
    await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 20)
    with pytest.raises(LeaseLost) as ei:
        await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 21)
    assert ei.value.code == "TOKEN_MISMATCH"


async def test_ack_success_token_required_and_not_active(omniq, raw):
    job = await leased(omniq)
    with pytest.raises(LeaseLost) as ei:
        await omniq.ack_success("q", job.job_id, "", now_ms=T0 + 20)
    assert ei.value.code == "TOKEN_REQUIRED"
    raw.zrem(qk("q", "active"), job.job_id)
    with pytest.raises(LeaseLost) as ei:
        await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 20)
    assert ei.value.code == "NOT_ACTIVE"
    assert raw.hget(jk("q", job.job_id), "state") == "active"  # refused: untouched


async def test_completed_trimmed_to_keep_completed(omniq, raw):
    ids = await omniq.publish_many("q", [{"i": i} for i in range(105)], now_ms=T0)
    res = await omniq.reserve_many("q", 105, now_ms=T0 + 1)
    for k, job in enumerate(res.jobs):
        await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 10 + k)
    completed = raw.lrange(qk("q", "completed"), 0, -1)
    assert len(completed) == 100
    assert completed == list(reversed(ids[5:]))  # newest first
    assert set(raw.zrange(qk("q", "idx:completed"), 0, -1)) == set(ids[5:])
    for old in ids[:5]:
        assert raw.exists(jk("q", old)) == 0
    assert raw.exists(jk("q", ids[5])) == 1
    assert raw.hget(qk("q", "stats"), "completed_kept") == "100"


async def test_keep_completed_option(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_completed=2) as c:
        ids = await c.publish_many("q", [{}] * 4, now_ms=T0)
        for job in (await c.reserve_many("q", 4, now_ms=T0)).jobs:
            await c.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 1)
    assert raw.lrange(qk("q", "completed"), 0, -1) == [ids[3], ids[2]]
    assert raw.exists(jk("q", ids[0]), jk("q", ids[1])) == 0


async def test_ack_fail_retry(omniq, raw):
    job = await leased(omniq, max_attempts=2, backoff_ms=700)
    out = await omniq.ack_fail("q", job.job_id, job.lease_token, "boom", now_ms=T0 + 20)
    assert out == FailOutcome("RETRY", T0 + 720)
    h = raw.hgetall(jk("q", job.job_id))
    assert h["state"] == "delayed"
    assert h["due_ms"] == str(T0 + 720)
    assert h["last_error"] == "boom"
    assert h["last_error_ms"] == str(T0 + 20)
    assert h["lease_token"] == ""
    assert h["lock_until_ms"] == ""
    assert raw.zscore(qk("q", "delayed"), job.job_id) == T0 + 720
    assert raw.zscore(qk("q", "idx:delayed"), job.job_id) == T0 + 20
    assert raw.zcard(qk("q", "active")) == 0


async def test_ack_fail_failed_when_out_of_attempts(omniq, raw):
    jid = await omniq.publish("q", {}, max_attempts=2, backoff_ms=0, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert (await omniq.ack_fail("q", jid, job.lease_token, now_ms=T0 + 2)).status == "RETRY"
    assert await omniq.promote_delayed("q", now_ms=T0 + 2) == 1
    job = await omniq.reserve("q", now_ms=T0 + 3)
    assert job.attempt == 2
    out = await omniq.ack_fail("q", jid, job.lease_token, "last", now_ms=T0 + 4)
    assert out == FailOutcome("FAILED", None)
    h = raw.hgetall(jk("q", jid))
    assert h["state"] == "failed"
    assert h["failed_ms"] == str(T0 + 4)
    assert h["last_error"] == "last"
    assert raw.lrange(qk("q", "failed"), 0, -1) == [jid]
    assert raw.zscore(qk("q", "idx:failed"), jid) == T0 + 4


async def test_ack_fail_final(omniq, raw):
    job = await leased(omniq, max_attempts=5)
    out = await omniq.ack_fail("q", job.job_id, job.lease_token, "fatal", final=True,
                               now_ms=T0 + 20)
    assert out.status == "FAILED"
    assert raw.hget(jk("q", job.job_id), "state") == "failed"


async def test_ack_fail_without_error_keeps_no_last_error(omniq, raw):
    job = await leased(omniq, max_attempts=3)
    await omniq.ack_fail("q", job.job_id, job.lease_token, now_ms=T0 + 20)
    assert "last_error" not in raw.hgetall(jk("q", job.job_id))


async def test_ack_fail_lease_lost(omniq):
    job = await leased(omniq)
    with pytest.raises(LeaseLost) as ei:
        await omniq.ack_fail("q", job.job_id, "0" * 40, "x", now_ms=T0 + 20)
    assert ei.value.code == "TOKEN_MISMATCH"


async def test_ack_fail_error_cut_on_utf8_boundary(omniq, raw):
    job = await leased(omniq, max_attempts=3)
    await omniq.ack_fail("q", job.job_id, job.lease_token, "é" * 3000, now_ms=T0 + 20)
    stored = raw_field(raw, jk("q", job.job_id), "last_error")
    assert len(stored) <= 4096
    assert stored.decode("utf-8") == "é" * 2048


async def test_ack_fail_error_cut_in_script(omniq, raw):
    # the script cuts too (D8), for callers that do not cut: 4095 ASCII bytes + "é"
    job = await leased(omniq, max_attempts=3)
    text = "a" * 4095 + "é" + "b" * 10
    reply = run_script(raw, "ack_fail", qk("q", "meta"), job.job_id, T0 + 20, job.lease_token,
                       text)
    assert reply == ["RETRY", str(T0 + 20 + 5000)]
    stored = raw_field(raw, jk("q", job.job_id), "last_error")
    assert stored == b"a" * 4095


async def test_grouped_ack_releases_slot(omniq, raw):
    await omniq.publish_many("q", [{"n": 1}, {"n": 2}], gid="g", now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert raw.zcard(qk("q", "groups:ready")) == 0
    await omniq.ack_fail("q", job.job_id, job.lease_token, "x", now_ms=T0 + 2)
    assert raw.exists(gk("q", "g", "inflight")) == 0
    assert raw.zscore(qk("q", "groups:ready"), "g") == T0 + 2


async def test_ack_reserve_fused(omniq, raw):
    ids = await omniq.publish_many("q", [{"i": i} for i in range(5)], max_attempts=3,
                                   backoff_ms=100, now_ms=T0)
    res = await omniq.reserve_many("q", 3, now_ms=T0 + 1)
    a, b, c = res.jobs
    await omniq.heartbeat("q", c.job_id, c.lease_token, now_ms=T0 + 2)
    outcomes, nxt = await omniq.ack_reserve(
        "q",
        [
            Ack(a.job_id, a.lease_token, True, '{"r":1}'),
            Ack(b.job_id, "f" * 40, True),  # stale token
            Ack(c.job_id, c.lease_token, False, "bad"),
        ],
        2,
        now_ms=T0 + 5,
    )
    assert outcomes[0] is None
    assert isinstance(outcomes[1], LeaseLost)
    assert outcomes[1].job_id == b.job_id
    assert outcomes[2] == FailOutcome("RETRY", T0 + 105)
    assert nxt is not None
    assert nxt.status == "JOB"
    assert [j.job_id for j in nxt.jobs] == ids[3:5]
    assert raw.hget(jk("q", a.job_id), "state") == "completed"
    assert json.loads(raw.hget(jk("q", a.job_id), "result")) == {"r": 1}
    assert raw.hget(jk("q", b.job_id), "state") == "active"  # untouched by the stale ack
    assert raw.hget(jk("q", c.job_id), "last_error") == "bad"
    assert raw.zcard(qk("q", "active")) == 3  # b + the two new ones


async def test_ack_reserve_final_and_no_reserve(omniq, raw):
    job = await leased(omniq, max_attempts=9)
    outcomes, nxt = await omniq.ack_reserve(
        "q", [Ack(job.job_id, job.lease_token, False, "fatal", final=True)], 0, now_ms=T0 + 20
    )
    assert outcomes == [FailOutcome("FAILED", None)]
    assert nxt is None
    assert raw.hget(jk("q", job.job_id), "state") == "failed"


async def test_ack_reserve_only_reserves(omniq):
    await omniq.publish("q", {}, now_ms=T0)
    outcomes, nxt = await omniq.ack_reserve("q", [], 5, now_ms=T0 + 1)
    assert outcomes == []
    assert nxt is not None
    assert len(nxt.jobs) == 1
    _, nxt = await omniq.ack_reserve("q", [], 5, now_ms=T0 + 1)
    assert nxt is not None
    assert nxt.status == "EMPTY"
    await omniq.pause("q")
    _, nxt = await omniq.ack_reserve("q", [], 5, now_ms=T0 + 1)
    assert nxt is not None
    assert nxt.status == "PAUSED"


async def test_ack_reserve_grouped_slot_goes_to_next(omniq):
    await omniq.publish_many("q", [{"n": 1}, {"n": 2}], gid="g", now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    _, nxt = await omniq.ack_reserve("q", [Ack(job.job_id, job.lease_token, True)], 1,
                                     now_ms=T0 + 2)
    assert nxt is not None
    assert [j.payload for j in nxt.jobs] == [{"n": 2}]
