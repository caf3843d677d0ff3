"""Memory and growth: no key grows without bound in steady state.

The soak publishes 100,000 jobs over 1,000 groups and drains them with a Worker; what is
left is the retained history (``keep_completed``, ``keep_failed``) and a handful of
fixed-size queue keys. The smaller tests pin down each retention and clean-up rule.
``OMNIQ_SOAK_ROUNDS=N`` runs N soak rounds on one queue and checks nothing accumulates
from round to round (the long soak; not part of the default run).
"""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
from growth_util import FAIL_EVERY, key_patterns, load_scripts, soak, used_memory

from omniq import AsyncOmniq, JobSpec
from omniq._limits import DEFAULT_EVENTS_MAXLEN
from omniq.aio.client import DEFAULT_CHILD_TTL_MS
from omniq.types import Ack

T0 = 1_000_000
WEEK_MS = 7 * 86_400_000

# what a drained queue keeps: the history and seven fixed-size keys (the event stream is
# capped at about events_maxlen entries)
RETAINED = {
    "{q}:completed": 1,
    "{q}:idx:completed": 1,
    "{q}:failed": 1,
    "{q}:idx:failed": 1,
    "{q}:stats": 1,
    "{q}:lane:rr": 1,
    "{q}:lease:seq": 1,
    "{q}:has_groups": 1,
    "{q}:events": 1,
}


def events_bound(raw, maxlen: int) -> tuple[int, int]:
    """The lengths a stream trimmed with ``MAXLEN ~ maxlen`` can have: at least maxlen
    (when more were written), at most maxlen plus one node of stream-node-max-entries
    (``~`` trims whole nodes only)."""
    node = int(raw.config_get("stream-node-max-entries")["stream-node-max-entries"])
    return maxlen, maxlen + node


def report(**figures: object) -> None:
    """Print measured figures (visible with -s; quoted in docs/reliability.md)."""
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


async def test_soak_100k_jobs_1000_groups_leaves_a_bounded_keyspace(omniq_redis_url, raw):
    load_scripts(raw)
    raw.slowlog_reset()
    baseline = used_memory(raw)
    async with AsyncOmniq(url=omniq_redis_url, keep_failed=50) as client:
        t_pub, t_drain, worker = await soak(client, "soak", 100_000, 1_000)
        stats = await client.stats("soak")
    failed_for_good = len(range(0, 100_000, FAIL_EVERY))
    assert worker.stats.completed == 100_000 - failed_for_good
    assert worker.stats.failed == failed_for_good
    assert worker.stats.lost == 0

    # exactly the retained history and the fixed-size keys; nothing per group or per lease
    assert key_patterns(raw, "soak") == Counter({**RETAINED, "{q}:job:*": 100 + 50})
    assert raw.dbsize() == len(RETAINED) + 150
    assert (stats.waiting_total, stats.active, stats.delayed, stats.groups_ready) == (0, 0, 0, 0)
    assert (stats.completed_kept, stats.failed) == (100, 50)
    assert raw.zcard("{soak}:idx:completed") == 100
    assert raw.zcard("{soak}:idx:failed") == 50
    kept = {k.split(":job:")[1] for k in raw.scan_iter(match="{soak}:job:*")}
    assert kept == set(raw.lrange("{soak}:completed", 0, -1)) | set(
        raw.lrange("{soak}:failed", 0, -1))
    # the event stream got ~330,000 entries and keeps about events_maxlen of them
    low, high = events_bound(raw, DEFAULT_EVENTS_MAXLEN)
    assert low <= raw.xlen("{soak}:events") <= high
    stream_bytes = int(raw.memory_usage("{soak}:events", samples=0))

    # failed attempts store their traceback in last_error (at most 4096 bytes each)
    errors = sum(len((raw.hget(f"{{soak}}:job:{jid}", "last_error") or "").encode())
                 for jid in kept)
    raw.slowlog_reset()  # the slow log holds copies of big publish calls; not ours
    drained = used_memory(raw)
    raw.flushdb()
    flushed = used_memory(raw)
    report(publish_s=round(t_pub, 1), drain_s=round(t_drain, 1), baseline=baseline,
           drained=drained, flushed=flushed, held_by_keys=drained - flushed,
           error_bytes=errors, stream_bytes=stream_bytes)
    # the 159 remaining keys hold ~100 KB besides their stored errors and the capped event
    # stream; the server itself keeps a few hundred KB of internal allocations after a
    # burst (also after plain SETs and a FLUSHDB)
    assert drained - flushed < 300_000 + 2 * errors + stream_bytes
    assert drained - baseline < 2_000_000 + stream_bytes


@pytest.mark.skipif(not os.environ.get("OMNIQ_SOAK_ROUNDS"), reason="set OMNIQ_SOAK_ROUNDS")
async def test_long_soak_does_not_accumulate(omniq_redis_url, raw):
    rounds = int(os.environ["OMNIQ_SOAK_ROUNDS"])
    load_scripts(raw)
    sizes = []
    async with AsyncOmniq(url=omniq_redis_url, keep_failed=50) as client:
        for n in range(rounds):
            await soak(client, "soak", 100_000, 1_000, round_no=n)
            assert key_patterns(raw, "soak") == Counter({**RETAINED, "{q}:job:*": 150})
            raw.slowlog_reset()
            sizes.append(used_memory(raw))
            report(round=n, used_memory=sizes[-1])
    # after the first round nothing grows: later rounds stay within 64 KB of the second
    assert max(sizes[1:], default=0) - min(sizes[1:], default=0) < 64_000


# -- failed retention ----------------------------------------------------------------------


async def _fail(client: AsyncOmniq, queue: str, n: int, now: int, how: str = "ack") -> list[str]:
    """Publish n jobs (one attempt) and fail each: by ack_fail, by ack_reserve or by reap."""
    ids = await client.publish_many(queue, [JobSpec(payload={"i": i}, job_id=f"{how}-{now}-{i}")
                                            for i in range(n)],
                                    max_attempts=1, timeout_ms=100, now_ms=now)
    res = await client.reserve_many(queue, n, now_ms=now)
    assert [j.job_id for j in res.jobs] == ids
    if how == "ack":
        for j in res.jobs:
            await client.ack_fail(queue, j.job_id, j.lease_token, "x", now_ms=now + 1)
    elif how == "fused":
        outcomes, _ = await client.ack_reserve(
            queue, [Ack(j.job_id, j.lease_token, False, "x") for j in res.jobs], 0, now_ms=now + 1)
        assert {o.status for o in outcomes} == {"FAILED"}
    else:
        assert await client.reap_expired(queue, now_ms=now + 100) == n
    return ids


@pytest.mark.parametrize("how", ["ack", "fused", "reap"])
async def test_keep_failed_keeps_the_newest(omniq_redis_url, raw, how):
    async with AsyncOmniq(url=omniq_redis_url, keep_failed=2) as client:
        ids = await _fail(client, "q", 5, T0, how)
    newest = ids[::-1][:2]
    assert raw.lrange("{q}:failed", 0, -1) == newest
    assert raw.zrange("{q}:idx:failed", 0, -1) == sorted(newest)
    assert sorted(k.split(":job:")[1] for k in raw.scan_iter(match="{q}:job:*")) == sorted(newest)
    assert raw.hget("{q}:stats", "failed") == "2"


async def test_keep_failed_zero_keeps_none(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_failed=0) as client:
        await _fail(client, "q", 3, T0)
    assert sorted(raw.keys("{q}:*")) == [
        "{q}:events", "{q}:lane:rr", "{q}:lease:seq", "{q}:stats"]
    # the trim by keep_failed writes no event: each job's life ends with its "failed"
    types = [f["type"] for _, f in raw.xrange("{q}:events")]
    assert types == ["enqueued"] * 3 + ["reserved"] * 3 + ["failed"] * 3


async def test_keep_failed_default_keeps_every_failed_job(omniq, raw):
    assert omniq.keep_failed is None
    await _fail(omniq, "q", 5, T0, "reap")
    assert raw.llen("{q}:failed") == 5
    assert len(raw.keys("{q}:job:*")) == 5


async def test_keep_failed_shrinks_a_backlog_gradually(omniq, omniq_redis_url, raw):
    # 2,500 failed jobs kept by a client without retention; a client with keep_failed=10
    # trims at most 1,000 per call, so a backlog never blocks the server in one script
    for k in range(3):
        await _fail(omniq, "q", 1000 if k < 2 else 500, T0 + 10 * k, "fused")
    assert raw.llen("{q}:failed") == 2500
    async with AsyncOmniq(url=omniq_redis_url, keep_failed=10) as trimmer:
        sizes = []
        for k in range(3):
            await _fail(trimmer, "q", 1, T0 + 100 + 10 * k)
            sizes.append(raw.llen("{q}:failed"))
    assert sizes == [1501, 502, 10]
    assert raw.zcard("{q}:idx:failed") == 10
    assert len(raw.keys("{q}:job:*")) == 10


async def test_trim_spares_a_reused_id_that_is_alive_again(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_failed=1) as client:
        [old] = await _fail(client, "q", 1, T0)
        await client.remove_job("q", old, "failed", now_ms=T0 + 2)
        await client.publish("q", {}, job_id=old, delay_ms=1000, now_ms=T0 + 3)  # alive again
        raw.lpush("{q}:failed", old)  # a stale list entry (as an official client could leave)
        await _fail(client, "q", 1, T0 + 10)
    assert raw.hget("{q}:job:" + old, "state") == "delayed"
    assert raw.llen("{q}:failed") == 1


# -- per-group keys ------------------------------------------------------------------------


async def test_group_keys_live_only_while_the_group_has_work(omniq, raw):
    await omniq.publish_many("q", [JobSpec(payload={}, job_id=f"j{i}") for i in range(3)],
                             gid="g", group_limit=2, backoff_ms=0, max_attempts=2, now_ms=T0)
    assert raw.get("{q}:g:g:limit") == "2"
    a, b = (await omniq.reserve_many("q", 3, now_ms=T0)).jobs
    assert raw.get("{q}:g:g:inflight") == "2"
    await omniq.ack_success("q", a.job_id, a.lease_token, now_ms=T0 + 1)
    c = await omniq.reserve("q", now_ms=T0 + 2)
    assert c is not None
    await omniq.ack_success("q", c.job_id, c.lease_token, now_ms=T0 + 3)
    assert raw.get("{q}:g:g:limit") == "2"  # b still holds a slot
    assert (await omniq.ack_fail("q", b.job_id, b.lease_token, now_ms=T0 + 4)).status == "RETRY"
    # idle: no waiting job, nothing in flight -> no key of the group is left ...
    assert raw.keys("{q}:g:*") == []
    assert raw.zscore("{q}:groups:ready", "g") is None
    # ... and the retried job brings its group_limit back when it is promoted
    assert raw.hget("{q}:job:" + b.job_id, "group_limit") == "2"
    assert await omniq.promote_delayed("q", now_ms=T0 + 5) == 1
    assert raw.get("{q}:g:g:limit") == "2"
    b2 = await omniq.reserve("q", now_ms=T0 + 6)
    assert b2 is not None
    await omniq.ack_success("q", b2.job_id, b2.lease_token, now_ms=T0 + 7)
    assert raw.keys("{q}:g:*") == []
    assert raw.exists("{q}:leases") == 0


async def test_removing_the_last_waiting_job_drops_the_group_limit(omniq, raw):
    await omniq.publish("q", {}, job_id="only", gid="g", group_limit=3, now_ms=T0)
    await omniq.remove_job("q", "only", "gwait", now_ms=T0 + 1)
    assert sorted(raw.keys("{q}:*")) == ["{q}:events", "{q}:has_groups", "{q}:stats"]


async def test_delayed_grouped_job_sets_the_limit_when_it_becomes_ready(omniq, raw):
    await omniq.publish("q", {}, job_id="later", gid="g", group_limit=4, delay_ms=50, now_ms=T0)
    assert raw.exists("{q}:g:g:limit") == 0  # no work yet: no group keys
    await omniq.publish("q", {}, job_id="now", gid="g", now_ms=T0)  # no limit of its own
    assert raw.exists("{q}:g:g:limit") == 0  # default 1
    await omniq.promote_delayed("q", now_ms=T0 + 50)
    assert raw.get("{q}:g:g:limit") == "4"  # first writer of this burst


# -- lease map -----------------------------------------------------------------------------


async def test_lease_map_entries_end_with_every_lease(omniq, raw):
    await omniq.publish_many("q", [JobSpec(payload={}, job_id=f"j{i}", gid=f"g{i}")
                                   for i in range(5)], max_attempts=1, timeout_ms=100, now_ms=T0)
    jobs = (await omniq.reserve_many("q", 5, now_ms=T0)).jobs
    assert raw.hlen("{q}:leases") == 5
    j0, j1, j2, j3, j4 = jobs
    await omniq.ack_success("q", j0.job_id, j0.lease_token, now_ms=T0 + 1)
    await omniq.ack_fail("q", j1.job_id, j1.lease_token, "x", now_ms=T0 + 1)
    await omniq.ack_reserve("q", [Ack(j2.job_id, j2.lease_token, True),
                                  Ack(j3.job_id, j3.lease_token, False, "x")], 0, now_ms=T0 + 1)
    assert raw.hkeys("{q}:leases") == [j4.job_id]
    raw.delete("{q}:job:" + j4.job_id)  # even a lease whose hash vanished (D4)
    assert await omniq.reap_expired("q", now_ms=T0 + 100) == 1
    assert raw.exists("{q}:leases") == 0
    assert raw.keys("{q}:g:*") == []


# -- parent / child counters ---------------------------------------------------------------


async def test_child_counters_expire_after_child_ttl_by_default(omniq, raw):
    assert omniq.child_ttl_ms == DEFAULT_CHILD_TTL_MS == WEEK_MS
    await omniq.childs_init("p", 3)
    assert WEEK_MS - 60_000 < raw.pttl("{cc:p}:count") <= WEEK_MS
    await omniq.child_ack("p", "c1")
    assert WEEK_MS - 60_000 < raw.pttl("{cc:p}:done") <= WEEK_MS  # the same expiry
    # Absolute expiry times: two PTTL reads a millisecond apart would race.
    done_at = raw.execute_command("PEXPIRETIME", "{cc:p}:done")
    count_at = raw.execute_command("PEXPIRETIME", "{cc:p}:count")
    assert 0 < done_at <= count_at


async def test_explicit_ttl_overrides_the_default(omniq, raw):
    await omniq.childs_init("p", 2, ttl_ms=5_000)
    await omniq.child_ack("p", "c1")
    assert 0 < raw.pttl("{cc:p}:count") <= 5_000
    assert 0 < raw.pttl("{cc:p}:done") <= 5_000


async def test_child_ttl_zero_means_counters_never_expire(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, child_ttl_ms=0) as client:
        await client.childs_init("p", 2)
        await client.child_ack("p", "c1")
    assert raw.pttl("{cc:p}:count") == -1
    assert raw.pttl("{cc:p}:done") == -1


async def test_finished_counter_leaves_only_an_expiring_marker(omniq, raw):
    await omniq.childs_init("p", 2)
    await omniq.child_ack("p", "c1")
    assert await omniq.child_ack("p", "c2") == 0
    assert raw.keys("{cc:p}:*") == ["{cc:p}:finished"]
    assert 0 < raw.pttl("{cc:p}:finished") <= 86_400_000


def test_expired_counter_is_gone(raw, omniq_redis_url):
    from omniq.sync.client import OmniqClient

    with OmniqClient(redis_url=omniq_redis_url, child_ttl_ms=50) as client:
        client.childs_init("p", 2)
        client.child_ack("p", "c1")
        time.sleep(0.2)
        assert raw.keys("{cc:*") == []


# -- retention by age ----------------------------------------------------------------------


async def _finish_all(client: AsyncOmniq, queue: str, n: int, fail_every: int | None,
                      now: int) -> list[str]:
    """Publish n one-attempt jobs at ``now``; complete them at now + 1, failing every
    ``fail_every``-th for good (None: none; one ack_reserve per 1,000)."""
    ids = await client.publish_many(queue, [JobSpec(payload={"i": i}, job_id=f"age-{now}-{i}")
                                            for i in range(n)], max_attempts=1, now_ms=now)
    for start in range(0, n, 1000):
        jobs = (await client.reserve_many(queue, min(1000, n - start), now_ms=now)).jobs
        acks = [Ack(j.job_id, j.lease_token,
                    fail_every is None or int(j.job_id.rsplit("-", 1)[1]) % fail_every != 0,
                    "x") for j in jobs]
        outcomes, _ = await client.ack_reserve(queue, acks, 0, now_ms=now + 1)
        assert all(o is None or o.status == "FAILED" for o in outcomes)
    return ids


async def test_keep_ms_deletes_each_finished_job_once_its_time_is_over(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, keep_completed=100_000, keep_completed_ms=1000,
                          keep_failed_ms=2000) as client:
        await _finish_all(client, "q", 300, 3, T0)  # 200 completed, 100 failed at T0 + 1
        assert raw.zcard("{q}:expire") == 300
        assert await client.promote_delayed("q", now_ms=T0 + 1000) == 0
        assert raw.zcard("{q}:expire") == 300  # one ms early: nothing deleted
        await client.promote_delayed("q", now_ms=T0 + 1001)
        assert (raw.llen("{q}:completed"), raw.zcard("{q}:idx:completed")) == (0, 0)
        assert (raw.llen("{q}:failed"), raw.zcard("{q}:expire")) == (100, 100)
        assert len(raw.keys("{q}:job:*")) == 100
        await client.promote_delayed("q", now_ms=T0 + 2001)
    assert sorted(raw.keys("{q}:*")) == [
        "{q}:events", "{q}:lane:rr", "{q}:lease:seq", "{q}:stats"]
    assert raw.hget("{q}:stats", "failed") == "0"
    # deletions by age write no event
    types = {f["type"] for _, f in raw.xrange("{q}:events")}
    assert types == {"enqueued", "reserved", "completed", "failed"}


async def test_keep_ms_backlog_shrinks_gradually(omniq_redis_url, raw):
    # at most 1,000 expired jobs are deleted per call, so a backlog never blocks the server
    async with AsyncOmniq(url=omniq_redis_url, keep_completed=100_000, keep_completed_ms=10,
                          events_maxlen=0) as client:
        await _finish_all(client, "q", 2500, None, T0)
        sizes = []
        for k in range(3):
            await client.promote_delayed("q", now_ms=T0 + 100 + k)
            sizes.append(raw.zcard("{q}:expire"))
    assert sizes == [1500, 500, 0]
    assert raw.keys("{q}:job:*") == []
    assert raw.exists("{q}:events") == 0  # events_maxlen=0: no stream at all


# -- the event stream ----------------------------------------------------------------------


async def test_event_stream_is_capped_at_about_events_maxlen(omniq_redis_url, raw):
    async with AsyncOmniq(url=omniq_redis_url, events_maxlen=500) as client:
        await client.publish_many("q", [JobSpec(payload={}) for _ in range(3000)], now_ms=T0)
    low, high = events_bound(raw, 500)
    assert low <= raw.xlen("{q}:events") <= high
    # the newest entries are the ones kept
    (_, last), = raw.xrevrange("{q}:events", count=1)
    assert last["id"] == raw.lrange("{q}:wait", -1, -1)[0]
