"""One regression test per OmniQ v1 defect (PROTOCOL.md §7) that our scripts fix,
plus tests pinning the v1 behaviour we deliberately keep. See docs/protocol.md."""

from __future__ import annotations

import pytest
from core_util import T0, gk, jk, leased, qk, raw_field, real_stats, run_script, stored_stats

from omniq import (
    AsyncOmniq,
    BatchResult,
    DuplicateJobError,
    InvalidArgument,
    JobSpec,
    LaneMismatch,
    LeaseLost,
)


def _enqueue_args(job_id="j", max_attempts="3", timeout_ms="1000", backoff_ms="0"):
    # ARGV of our enqueue.lua: now, count, then ENQUEUE_FIELDS (12) fields per job
    return [str(T0), "1", job_id, "{}", max_attempts, timeout_ms, backoff_ms, "0", "0", "", "0",
            "0", "0", ""]


# -- fixed ---------------------------------------------------------------------------------


async def test_d1_heartbeat_not_cumulative(omniq, raw):
    job = await leased(omniq, timeout_ms=30_000)
    assert job.lock_until_ms == T0 + 10 + 30_000
    t = T0 + 10
    for _ in range(6):
        t += 10_000
        lock = await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=t)
        assert lock == t + 30_000  # v1 would give max(old lock, now) + T: +30 s per beat
    assert raw.zscore(qk("q", "active"), job.job_id) == t + 30_000
    # an immediate heartbeat right after reserve does not double the lease either
    assert await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=t) == t + 30_000


async def test_d4_reap_releases_group_of_vanished_hash(omniq, raw):
    await omniq.publish_many("q", [{"n": 1}, {"n": 2}], gid="g", timeout_ms=100, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert raw.get(gk("q", "g", "inflight")) == "1"
    assert raw.hget(qk("q", "leases"), job.job_id) == "g"  # our extension records the gid
    raw.delete(jk("q", job.job_id))  # eviction, TTL or a manual DEL
    assert await omniq.reap_expired("q", now_ms=T0 + 1000) == 1
    assert raw.exists(gk("q", "g", "inflight")) == 0
    assert raw.hexists(qk("q", "leases"), job.job_id) == 0
    assert raw.zcard(qk("q", "idx:active")) == 0
    assert raw.exists(jk("q", job.job_id)) == 0  # no partial hash resurrected
    nxt = await omniq.reserve("q", now_ms=T0 + 1001)
    assert nxt is not None
    assert nxt.payload == {"n": 2}


async def test_d4_ack_after_hash_loss_then_reap(omniq, raw):
    # the worker's ack fails (hash gone) but the slot still comes back through reap
    await omniq.publish_many("q", [{"n": 1}, {"n": 2}], gid="g", timeout_ms=100, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    raw.delete(jk("q", job.job_id))
    with pytest.raises(LeaseLost):
        await omniq.ack_success("q", job.job_id, job.lease_token, now_ms=T0 + 2)
    assert await omniq.reserve("q", now_ms=T0 + 3) is None
    await omniq.reap_expired("q", now_ms=T0 + 500)
    assert (await omniq.reserve("q", now_ms=T0 + 501)).payload == {"n": 2}


async def test_d7_stats_equal_real_containers(omniq, raw):
    t = T0
    ids = await omniq.publish_many("q", [{"i": i} for i in range(6)], max_attempts=2,
                                   backoff_ms=10, timeout_ms=50, now_ms=t)
    gids = await omniq.publish_many("q", [{}] * 4, gid="g", group_limit=2, now_ms=t)
    await omniq.publish_many("q", [{}] * 2, gid="h", now_ms=t)
    await omniq.publish("q", {}, delay_ms=5, now_ms=t)
    raw.delete(jk("q", ids[1]))  # D11 orphan: a waiting job whose hash vanished
    with pytest.raises(DuplicateJobError):  # duplicate id: refused, nothing counted
        await omniq.publish("q", {}, job_id=ids[0], now_ms=t)
    jobs = (await omniq.reserve_many("q", 6, now_ms=t + 1)).jobs
    await omniq.ack_success("q", jobs[0].job_id, jobs[0].lease_token, now_ms=t + 2)
    await omniq.ack_fail("q", jobs[1].job_id, jobs[1].lease_token, "x", now_ms=t + 3)
    await omniq.ack_fail("q", jobs[2].job_id, jobs[2].lease_token, "x", final=True,
                         now_ms=t + 3)
    with pytest.raises(LaneMismatch):  # gwait removal that ends NOT_IN_LANE
        await omniq.remove_job("q", gids[3], "wait", now_ms=t + 4)
    await omniq.remove_job("q", gids[3], "gwait", now_ms=t + 4)
    await omniq.promote_delayed("q", now_ms=t + 100)
    await omniq.reap_expired("q", now_ms=t + 100)
    failed = raw.lrange(qk("q", "failed"), 0, -1)
    await omniq.retry_failed_batch("q", failed, now_ms=t + 101)
    await omniq.reserve_many("q", 3, now_ms=t + 102)
    await omniq.remove_jobs_batch("q", "completed", [jobs[0].job_id], now_ms=t + 103)
    real = real_stats(raw, "q")
    assert stored_stats(raw, "q") == real
    assert raw.hget(qk("q", "stats"), "last_activity_ms") == str(t + 103)
    s = await omniq.stats("q")
    assert (s.waiting, s.group_waiting, s.active, s.failed) == (
        real["waiting"], real["group_waiting"], real["active"], real["failed"]
    )


async def test_d8_error_cut_on_character_boundary(omniq, raw):
    job = await leased(omniq, max_attempts=3)
    await omniq.ack_fail("q", job.job_id, job.lease_token, "é" * 3000, now_ms=T0 + 20)
    stored = raw_field(raw, jk("q", job.job_id), "last_error")
    assert stored is not None
    assert len(stored) <= 4096
    assert stored.decode("utf-8") == "é" * 2048
    assert (await omniq.get_job("q", job.job_id)).last_error == "é" * 2048
    # the script cuts on a boundary as well when called with an uncut text
    job2 = await leased(omniq, max_attempts=3)
    run_script(raw, "ack_fail", qk("q", "meta"), job2.job_id, T0 + 20, job2.lease_token,
               "x" + "€" * 2000)  # 1 + 6000 bytes; 4096 falls inside a 3-byte character
    stored = raw_field(raw, jk("q", job2.job_id), "last_error")
    assert stored == ("x" + "€" * 1365).encode()  # 4096 bytes exactly
    assert len(stored) == 4096


async def test_d9_publish_never_merges_into_existing_job(omniq, raw, dump):
    job = await leased(omniq, job_id="same")
    await omniq.ack_fail("q", "same", job.lease_token, "err", now_ms=T0 + 11)
    before = dump()
    with pytest.raises(DuplicateJobError):
        await omniq.publish("q", {"new": 1}, job_id="same", now_ms=T0 + 12)
    with pytest.raises(DuplicateJobError):
        await omniq.publish("q", {}, job_id="same", gid="g", delay_ms=5, now_ms=T0 + 12)
    with pytest.raises(DuplicateJobError):
        await omniq.publish_many("q", [{"a": 1}, JobSpec(payload={}, job_id="same")],
                                 now_ms=T0 + 12)
    assert dump() == before  # hash, lists, indexes and stats unchanged
    # script level: the same id twice in one enqueue call is refused too
    reply = run_script(raw, "enqueue", qk("q", "meta"), str(T0), "2",
                       *_enqueue_args("x")[2:], *_enqueue_args("x")[2:])
    assert reply == ["ERR", "DUPLICATE", "x"]
    assert dump() == before


async def test_d9_trim_never_deletes_a_live_reuse(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_completed=1) as c:
        await c.publish("q", {}, job_id="x", now_ms=T0)
        job = await c.reserve("q", now_ms=T0 + 1)
        await c.ack_success("q", "x", job.lease_token, now_ms=T0 + 2)
        raw.delete(jk("q", "x"))  # the hash vanished, the id stays in the completed list
        await c.publish("q", {"again": 1}, job_id="x", now_ms=T0 + 3)  # allowed: no hash
        await c.publish("q", {}, job_id="y", now_ms=T0 + 4)
        jobs = (await c.reserve_many("q", 2, now_ms=T0 + 5)).jobs
        y = next(j for j in jobs if j.job_id == "y")
        await c.ack_success("q", "y", y.lease_token, now_ms=T0 + 6)  # trims the old "x"
        assert raw.hget(jk("q", "x"), "state") == "active"  # the live reuse survived


async def test_d11_orphan_in_wait_is_skipped(omniq, raw):
    raw.rpush(qk("q", "wait"), "ghost")
    real = await omniq.publish("q", {"real": 1}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == real
    assert raw.exists(jk("q", "ghost")) == 0  # no partial hash
    assert raw.zscore(qk("q", "active"), "ghost") is None
    assert raw.exists(qk("q", "wait")) == 0  # the orphan was dropped
    raw.rpush(qk("q", "wait"), "ghost2")
    assert await omniq.reserve("q", now_ms=T0 + 2) is None
    assert raw.exists(jk("q", "ghost2")) == 0


async def test_d11_orphan_in_group_is_skipped(omniq, raw):
    await omniq.publish("q", {"n": 1}, gid="g", job_id="a", now_ms=T0)
    await omniq.publish("q", {"n": 2}, gid="g", job_id="b", now_ms=T0)
    raw.delete(jk("q", "a"))
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == "b"
    assert raw.exists(jk("q", "a")) == 0
    assert raw.get(gk("q", "g", "inflight")) == "1"


async def test_d11_promote_does_not_resurrect_hash(omniq, raw):
    jid = await omniq.publish("q", {}, delay_ms=10, now_ms=T0)
    raw.delete(jk("q", jid))
    assert await omniq.promote_delayed("q", now_ms=T0 + 100) == 0
    assert raw.exists(jk("q", jid)) == 0
    assert raw.exists(qk("q", "wait")) == 0
    assert raw.zcard(qk("q", "delayed")) == 0
    assert raw.zcard(qk("q", "idx:delayed")) == 0


async def test_d12_late_child_ack_returns_zero(omniq, raw):
    await omniq.childs_init("p", 2)
    assert await omniq.child_ack("p", "a") == 1
    assert await omniq.child_ack("p", "b") == 0
    assert await omniq.child_ack("p", "b") == 0  # v1: NO_COUNTER -> -1
    assert await omniq.child_ack("p", "a") == 0


async def test_d12_ttl_on_counter(omniq, raw):
    await omniq.childs_init("p", 2, ttl_ms=5_000)
    assert 0 < raw.pttl("{cc:p}:count") <= 5_000


async def test_d13_delay_is_relative_and_clock_is_the_servers(omniq, raw):
    jid = await omniq.publish("q", {}, delay_ms=5_000, now_ms=T0)
    assert raw.hget(jk("q", jid), "due_ms") == str(T0 + 5_000)
    with pytest.raises(InvalidArgument):
        await omniq.publish("q", {}, delay_ms=1, due_ms=T0 + 1, now_ms=T0)
    # without now_ms every script takes the server's clock, not the client's
    jid = await omniq.publish("q", {}, delay_ms=60_000)
    sec, usec = raw.time()
    server_now = sec * 1000 + usec // 1000
    due = int(raw.hget(jk("q", jid), "due_ms"))
    created = int(raw.hget(jk("q", jid), "created_ms"))
    assert due == created + 60_000
    assert server_now - 5_000 <= created <= server_now


async def test_d14_zero_attempts_or_timeout_refused(omniq, raw):
    for opts in ({"max_attempts": 0}, {"timeout_ms": 0}):
        with pytest.raises(InvalidArgument):
            await omniq.publish("q", {}, **opts)
        with pytest.raises(InvalidArgument):
            await omniq.publish_many("q", [{}], **opts)
    for field, kw in (("max_attempts", {"max_attempts": "0"}), ("timeout_ms",
                                                                 {"timeout_ms": "0"})):
        reply = run_script(raw, "enqueue", qk("q", "meta"), *_enqueue_args(**kw))
        assert reply == ["ERR", "BAD_ARGS", field]
    assert raw.dbsize() == 0
    assert run_script(raw, "enqueue", qk("q", "meta"), *_enqueue_args())[0] == "OK"


async def test_d17_failed_remove_writes_nothing(omniq, raw, dump):
    await omniq.publish("q", {}, gid="g", job_id="a", now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    await omniq.publish("q", {}, gid="g", job_id="b", now_ms=T0 + 2)
    raw.lrem(gk("q", "g", "wait"), 1, "b")  # state wait, but not in the list
    before = dump()
    for jid, lane in (("b", "gwait"), ("a", "gwait"), ("b", "wait"), ("b", "failed")):
        with pytest.raises(LaneMismatch):
            await omniq.remove_job("q", jid, lane, now_ms=T0 + 3)
        assert dump() == before, (jid, lane)
    assert raw.get(gk("q", "g", "inflight")) == "1"  # v1 could DECR it here
    await omniq.ack_success("q", "a", job.lease_token, now_ms=T0 + 4)


async def test_d17_gwait_removal_keeps_group_score(omniq, raw):
    await omniq.publish("q", {}, gid="A", now_ms=T0)
    await omniq.publish("q", {}, gid="B", now_ms=T0 + 1)
    await omniq.publish("q", {}, gid="B", job_id="b2", now_ms=T0 + 2)
    await omniq.remove_job("q", "b2", "gwait", now_ms=T0 + 3)
    # v1 re-added B with score 0, jumping ahead of A
    assert raw.zrange(qk("q", "groups:ready"), 0, -1, withscores=True) == [
        ("A", float(T0)),
        ("B", float(T0 + 1)),
    ]
    job = await omniq.reserve("q", now_ms=T0 + 4)
    assert job.gid == "A"


async def test_d17_gwait_removal_of_last_job_unreadies_group(omniq, raw):
    await omniq.publish("q", {}, gid="g", job_id="only", now_ms=T0)
    await omniq.remove_job("q", "only", "gwait", now_ms=T0 + 1)
    assert raw.zcard(qk("q", "groups:ready")) == 0
    assert raw.hget(qk("q", "stats"), "groups_ready") == "0"


async def test_d18_job_named_err_in_batches(omniq, raw):
    await omniq.publish("q", {}, job_id="ERR", max_attempts=1, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    await omniq.ack_fail("q", "ERR", job.lease_token, "x", now_ms=T0 + 2)
    res = await omniq.retry_failed_batch("q", ["ERR", "OK"], now_ms=T0 + 3)
    assert res == [BatchResult("ERR", "OK", None), BatchResult("OK", "ERR", "NO_JOB")]
    res = await omniq.remove_jobs_batch("q", "wait", ["ERR"], now_ms=T0 + 4)
    assert res == [BatchResult("ERR", "OK", None)]
    res = await omniq.remove_jobs_batch("q", "wait", ["ERR"], now_ms=T0 + 5)
    assert res == [BatchResult("ERR", "ERR", "NO_JOB")]
    # a non-numeric count is a typed refusal, not a Lua runtime error
    assert run_script(raw, "remove_jobs_batch", qk("q", "meta"), "wait", "x", "a")[:2] == [
        "ERR", "BAD_ARGS"
    ]


async def test_d19_many_full_groups_do_not_hide_a_free_one(omniq, raw):
    for i in range(12):
        await omniq.publish("q", {}, gid=f"busy{i:02d}", now_ms=T0 + i)
    await omniq.publish("q", {"free": 1}, gid="zfree", now_ms=T0 + 50)
    for i in range(12):  # capacity used elsewhere (e.g. a limit lowered by hand)
        raw.set(gk("q", f"busy{i:02d}", "inflight"), "1")
    job = await omniq.reserve("q", now_ms=T0 + 60)
    assert job is not None
    assert job.payload == {"free": 1}


async def test_d22_reap_records_reason(omniq, raw):
    job = await leased(omniq, timeout_ms=100, max_attempts=2)
    await omniq.reap_expired("q", now_ms=T0 + 500)
    h = raw.hgetall(jk("q", job.job_id))
    assert h["last_error"] == f"LeaseExpired: lease expired at {T0 + 110}"
    assert h["last_error_ms"] == str(T0 + 500)


# -- kept v1 behaviour ---------------------------------------------------------------------


async def test_d10_retry_goes_to_group_tail(omniq):
    # kept: a retried job waits out its backoff while the next job of its group runs
    await omniq.publish("q", {"n": "A"}, gid="g", max_attempts=2, backoff_ms=0, now_ms=T0)
    await omniq.publish("q", {"n": "B"}, gid="g", now_ms=T0)
    a = await omniq.reserve("q", now_ms=T0 + 1)
    await omniq.ack_fail("q", a.job_id, a.lease_token, "x", now_ms=T0 + 2)
    await omniq.promote_delayed("q", now_ms=T0 + 2)
    b = await omniq.reserve("q", now_ms=T0 + 3)
    assert b.payload == {"n": "B"}


async def test_d16_token_checked_before_active(omniq):
    job = await leased(omniq, timeout_ms=100)
    await omniq.reap_expired("q", now_ms=T0 + 1000)
    with pytest.raises(LeaseLost) as ei:
        await omniq.heartbeat("q", job.job_id, job.lease_token, now_ms=T0 + 1001)
    assert ei.value.code == "TOKEN_MISMATCH"


async def test_d20_group_limit_first_writer_wins(omniq, raw):
    await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    await omniq.publish("q", {}, gid="g", group_limit=4, now_ms=T0)
    assert raw.get(gk("q", "g", "limit")) == "1"


async def test_d13_expiry_is_inclusive(omniq):
    job = await leased(omniq, timeout_ms=100)
    assert await omniq.reap_expired("q", now_ms=job.lock_until_ms - 1) == 0
    assert await omniq.reap_expired("q", now_ms=job.lock_until_ms) == 1


def test_enqueue_stores_integer_options_in_canonical_form(raw):
    """Whatever decimal spelling a caller sends, the job hash holds the canonical integer
    (the form the official clients write and parse)."""
    args = _enqueue_args(job_id="c1", max_attempts="007", timeout_ms="01000", backoff_ms="-0")
    assert run_script(raw, "enqueue", qk("q", "meta"), *args) == ["OK", "1"]
    assert raw.hmget(jk("q", "c1"), "max_attempts", "timeout_ms", "backoff_ms") == [
        "7", "1000", "0"]
    args = _enqueue_args(job_id="c2", max_attempts="12", timeout_ms="0", backoff_ms="5")
    assert run_script(raw, "enqueue", qk("q", "meta"), *args) == [
        "ERR", "BAD_ARGS", "timeout_ms"]


async def test_enqueue_of_grouped_and_delayed_jobs_writes_every_field(omniq, raw):
    await omniq.publish("q", {}, job_id="g1", gid="g", group_limit=2, delay_ms=5_000,
                        now_ms=T0)
    await omniq.publish("q", {}, job_id="g2", gid="g", now_ms=T0)
    h1, h2 = raw.hgetall(jk("q", "g1")), raw.hgetall(jk("q", "g2"))
    assert (h1["state"], h1["gid"], h1["group_limit"], h1["due_ms"]) == (
        "delayed", "g", "2", str(T0 + 5_000))
    assert (h2["state"], h2["gid"]) == ("wait", "g")
    assert "group_limit" not in h2
    assert "due_ms" not in h2
    assert raw.get(qk("q", "has_groups")) == "1"
