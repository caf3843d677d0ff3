"""Expiry (publish(expires_ms=... | expire_in_ms=...), docs/control.md): a job not started
by then never runs; reserve (or promote_delayed) meeting it fails it with error 'expired'
and emits 'failed' and 'expired'."""

from __future__ import annotations

import pytest
from core_util import T0, gk, jk, qk, real_stats, stored_stats
from shared_util import within

from omniq import InvalidArgument, JobSpec, OmniqClient
from omniq.types import Ack


def _assert_expired(raw, queue: str, jid: str, was: str) -> None:
    h = raw.hgetall(jk(queue, jid))
    assert h["state"] == "failed"
    assert h["last_error"] == "expired"
    assert raw.lrange(qk(queue, "failed"), 0, -1).count(jid) == 1
    for idx in ("idx:wait", "idx:delayed", "idx:active"):
        assert raw.zscore(qk(queue, idx), jid) is None
    assert raw.zscore(qk(queue, "idx:failed"), jid) is not None
    ev = [f for _, f in raw.xrange(qk(queue, "events")) if f["id"] == jid]
    assert [e["type"] for e in ev[-2:]] == ["failed", "expired"]
    assert ev[-2]["error"] == "expired"
    assert ev[-1]["state"] == was
    assert stored_stats(raw, queue) == real_stats(raw, queue)


async def test_expire_in_ms_at_the_reserve_boundary(omniq, raw):
    a = await omniq.publish("q", {}, expire_in_ms=100, now_ms=T0)
    b = await omniq.publish("q", {}, expire_in_ms=100, now_ms=T0)
    assert raw.hget(jk("q", a), "expires_ms") == str(T0 + 100)
    job = await omniq.reserve("q", now_ms=T0 + 99)  # one ms before: it runs
    assert job is not None
    assert job.job_id == a
    assert await omniq.reserve("q", now_ms=T0 + 100) is None  # at expires_ms: too late
    _assert_expired(raw, "q", b, "wait")
    # the running one is not touched by its expiry
    await omniq.ack_success("q", a, job.lease_token, now_ms=T0 + 200)
    assert raw.hget(jk("q", a), "state") == "completed"


async def test_expires_ms_is_absolute_and_the_next_job_runs(omniq, raw):
    old = await omniq.publish("q", {}, expires_ms=T0 + 5, now_ms=T0)
    fresh = await omniq.publish("q", {}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 10)
    assert job is not None
    assert job.job_id == fresh  # the same call skips the expired one
    _assert_expired(raw, "q", old, "wait")


async def test_expired_group_job_keeps_the_group_correct(omniq, raw):
    a = await omniq.publish("q", {}, gid="g", group_limit=1, expire_in_ms=5, now_ms=T0)
    b = await omniq.publish("q", {}, gid="g", group_limit=1, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 10)
    assert job is not None
    assert job.job_id == b
    _assert_expired(raw, "q", a, "wait")
    assert raw.get(gk("q", "g", "inflight")) == "1"
    await omniq.ack_success("q", b, job.lease_token, now_ms=T0 + 11)
    assert await omniq.reserve("q", now_ms=T0 + 12) is None
    assert not raw.exists(gk("q", "g", "wait"))


async def test_delayed_job_expiring_before_its_due_time(omniq, raw):
    a = await omniq.publish("q", {}, delay_ms=100, expire_in_ms=50, now_ms=T0)
    assert await omniq.promote_delayed("q", now_ms=T0 + 100) == 0
    _assert_expired(raw, "q", a, "delayed")
    assert await omniq.reserve("q", now_ms=T0 + 101) is None


async def test_a_retry_due_after_the_expiry_never_runs(omniq, raw):
    a = await omniq.publish("q", {}, max_attempts=3, backoff_ms=100, expire_in_ms=50,
                            now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert (await omniq.ack_fail("q", a, job.lease_token, "e", now_ms=T0 + 2)).status == "RETRY"
    assert await omniq.promote_delayed("q", now_ms=T0 + 102) == 0
    _assert_expired(raw, "q", a, "delayed")


async def test_expired_strict_retry_frees_its_group(omniq, raw):
    a = await omniq.publish("q", {}, job_id="A", gid="g", group_order="strict",
                            max_attempts=3, backoff_ms=100, expire_in_ms=50, now_ms=T0)
    await omniq.publish("q", {}, job_id="B", gid="g", now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    await omniq.ack_fail("q", a, job.lease_token, "e", now_ms=T0 + 2)
    assert raw.get(gk("q", "g", "held")) == "A"
    await omniq.promote_delayed("q", now_ms=T0 + 102)
    assert not raw.exists(gk("q", "g", "held"))
    nxt = await omniq.reserve("q", now_ms=T0 + 103)
    assert nxt is not None
    assert nxt.job_id == "B"


async def test_expiry_frees_a_dedup_key(omniq, raw):
    a = await omniq.publish("q", {}, dedup_key="k", expire_in_ms=5, now_ms=T0)
    assert await omniq.reserve("q", now_ms=T0 + 10) is None
    assert not raw.exists(qk("q", "dedup:k"))
    assert await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 11) != a


async def test_keep_failed_ms_applies_to_expired_jobs(omniq, raw):
    a = await omniq.publish("q", {}, expire_in_ms=5, keep_failed_ms=1000, now_ms=T0)
    assert await omniq.reserve("q", now_ms=T0 + 10) is None
    assert raw.hget(jk("q", a), "expire_ms") == str(T0 + 1010)


async def test_one_call_expires_at_most_its_budget_then_wakes(omniq, raw):
    """Past MAX_EXPIRED_PER_CALL expired jobs a reserve stops, says so (EMPTY, more) and
    publishes the wake-up signal, so workers look again at once; the next call finds the
    live job."""
    await omniq.publish_many("q", [{"i": i} for i in range(150)], expire_in_ms=5, now_ms=T0)
    live = await omniq.publish("q", {}, now_ms=T0)
    pubsub = omniq.redis.pubsub()
    await pubsub.subscribe(qk("q", "wake"))
    assert (await within(pubsub.get_message(timeout=5), 6, "subscribe"))["type"] == "subscribe"
    res = await omniq.reserve_many("q", 1, now_ms=T0 + 10)
    assert (res.status, res.more) == ("EMPTY", True)
    assert raw.llen(qk("q", "failed")) == 100
    msg = await within(pubsub.get_message(ignore_subscribe_messages=True, timeout=5), 6,
                       "the wake-up")
    assert msg is not None
    assert msg["data"] == "1"
    job = await omniq.reserve("q", now_ms=T0 + 11)
    assert job is not None
    assert job.job_id == live
    assert raw.llen(qk("q", "failed")) == 150
    await pubsub.aclose()
    assert stored_stats(raw, "q") == real_stats(raw, "q")


async def test_ack_reserve_expires_on_the_way(omniq, raw):
    a = await omniq.publish("q", {}, now_ms=T0)
    old = await omniq.publish("q", {}, expire_in_ms=5, now_ms=T0)
    fresh = await omniq.publish("q", {}, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    assert job.job_id == a
    outcomes, res = await omniq.ack_reserve("q", [Ack(a, job.lease_token, True)], 5,
                                            now_ms=T0 + 10)
    assert outcomes == [None]
    assert res is not None
    assert [j.job_id for j in res.jobs] == [fresh]
    _assert_expired(raw, "q", old, "wait")


async def test_publish_many_and_bad_expiry_options(omniq, raw):
    ids = await omniq.publish_many("q", [{}, JobSpec(payload={}, expires_ms=T0 + 1)],
                                   expire_in_ms=50, now_ms=T0)
    assert raw.hget(jk("q", ids[0]), "expires_ms") == str(T0 + 50)
    assert raw.hget(jk("q", ids[1]), "expires_ms") == str(T0 + 1)
    for opts in ({"expires_ms": -1}, {"expire_in_ms": 1.5},
                 {"expires_ms": T0, "expire_in_ms": 5}):
        with pytest.raises(InvalidArgument):
            await omniq.publish("q", {}, **opts)


async def test_expiry_on_a_partitioned_queue(omniq, raw):
    assert await omniq.partition_queue("p", 2) is True
    for i in range(4):
        await omniq.publish("p", {}, gid=f"g{i}", expire_in_ms=5, now_ms=T0)
    assert await omniq.reserve("p", now_ms=T0 + 10) is None
    assert sum(raw.llen(qk(f"p.p{i}", "failed")) for i in range(2)) == 4


def test_sync_expiry(omniq_sync: OmniqClient, raw):
    a = omniq_sync.publish("q", {}, expire_in_ms=5, now_ms=T0)
    assert omniq_sync.reserve("q", now_ms=T0 + 10) is None
    assert raw.hget(jk("q", a), "last_error") == "expired"


async def test_worker_skips_expired_jobs(omniq, raw):
    from omniq import Worker

    ran: list[str] = []

    async def handler(ctx):
        ran.append(ctx.job_id)

    old = await omniq.publish("q", {}, expires_ms=1)  # long past on the real clock
    fresh = await omniq.publish("q", {})
    worker = Worker(omniq, "q", handler, drain=True)
    await within(worker.run(), 20, "the drain")
    assert ran == [fresh]
    assert raw.hget(jk("q", old), "last_error") == "expired"


async def test_drain_gets_past_many_expired_jobs(omniq, raw):
    """A drain must not stop at an EMPTY that only means 'the expiry budget ran out'."""
    from omniq import Worker

    ran: list[str] = []

    async def handler(ctx):
        ran.append(ctx.job_id)

    await omniq.publish_many("q", [{"i": i} for i in range(350)], expires_ms=1)
    live = await omniq.publish("q", {})
    await within(Worker(omniq, "q", handler, drain=True).run(), 30, "the drain")
    assert ran == [live]
    assert raw.llen(qk("q", "failed")) == 350


async def test_partitioned_reserve_says_more(omniq, raw):
    assert await omniq.partition_queue("p", 2) is True
    await omniq.publish_many("p", [JobSpec(payload={}, gid="g") for _ in range(150)],
                             expire_in_ms=5, now_ms=T0)
    res = await omniq.reserve_many("p", 1, now_ms=T0 + 10)
    assert (res.status, res.more) == ("EMPTY", True)
    res = await omniq.reserve_many("p", 1, now_ms=T0 + 11)
    assert (res.status, res.more) == ("EMPTY", False)
