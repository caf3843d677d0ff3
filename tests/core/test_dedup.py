"""Deduplication (publish(dedup_key=...), docs/control.md): while a job holding the key is
waiting, delayed or active (and dedup_ttl_ms after it finished), publishing again returns
that job's id and writes nothing; dedup="replace" updates a job that is still waiting."""

from __future__ import annotations

import asyncio

import pytest
import redis
from core_util import T0, dump_db, jk, qk, real_stats, stored_stats
from shared_util import within

from omniq import AsyncOmniq, DuplicateJobError, InvalidArgument, JobSpec, OmniqClient


def dk(queue: str, key: str) -> str:
    return qk(queue, "dedup:" + key)


async def _finish(omniq, queue: str, job_id: str, t: int, ok: bool = True) -> None:
    job = await omniq.reserve(queue, now_ms=t)
    assert job is not None
    assert job.job_id == job_id
    if ok:
        await omniq.ack_success(queue, job_id, job.lease_token, now_ms=t + 1)
    else:
        out = await omniq.ack_fail(queue, job_id, job.lease_token, "boom", final=True,
                                   now_ms=t + 1)
        assert out.status == "FAILED"


async def test_publish_again_while_waiting_returns_the_holder(omniq, raw):
    a = await omniq.publish("q", {"v": 1}, dedup_key="k", now_ms=T0)
    assert raw.hgetall(dk("q", "k")) == {"id": a}
    before = dump_db(raw)
    b = await omniq.publish("q", {"v": 2}, dedup_key="k", now_ms=T0 + 5)
    assert b == a
    assert dump_db(raw) == before  # nothing written: no job, no stats, no event
    assert raw.llen(qk("q", "wait")) == 1


@pytest.mark.parametrize("state", ["delayed", "active"])
async def test_delayed_and_active_holders_count(omniq, raw, state):
    a = await omniq.publish("q", {}, dedup_key="k", delay_ms=100 if state == "delayed" else 0,
                            now_ms=T0)
    if state == "active":
        assert (await omniq.reserve("q", now_ms=T0 + 1)) is not None
    assert raw.hget(jk("q", a), "state") == state
    assert await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 2) == a
    assert raw.zcard(qk("q", "idx:wait")) + raw.zcard(qk("q", "idx:delayed")) + raw.zcard(
        qk("q", "idx:active")) == 1


async def test_finished_job_frees_the_key(omniq, raw):
    a = await omniq.publish("q", {}, dedup_key="k", now_ms=T0)
    await _finish(omniq, "q", a, T0 + 10)
    assert not raw.exists(dk("q", "k"))
    b = await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 20)
    assert b != a
    assert raw.hgetall(dk("q", "k")) == {"id": b}


@pytest.mark.parametrize("ok", [True, False], ids=["completed", "failed"])
async def test_ttl_keeps_the_key_after_the_finish(omniq, raw, ok):
    a = await omniq.publish("q", {}, dedup_key="k", dedup_ttl_ms=60_000, max_attempts=1,
                            now_ms=T0)
    await _finish(omniq, "q", a, T0 + 10, ok=ok)
    assert raw.hgetall(dk("q", "k")) == {"id": a, "until": str(T0 + 11 + 60_000)}
    assert 0 < raw.pttl(dk("q", "k")) <= 60_000  # only collects it; 'until' decides
    assert await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 60_010) == a
    b = await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 60_011)  # the TTL is over
    assert b != a
    assert raw.hgetall(dk("q", "k")) == {"id": b}
    assert raw.pttl(dk("q", "k")) == -1


async def test_retry_before_the_last_attempt_keeps_the_key(omniq, raw):
    a = await omniq.publish("q", {}, dedup_key="k", max_attempts=2, backoff_ms=100, now_ms=T0)
    job = await omniq.reserve("q", now_ms=T0 + 1)
    assert job is not None
    out = await omniq.ack_fail("q", a, job.lease_token, "e", now_ms=T0 + 2)
    assert out.status == "RETRY"
    assert await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 3) == a


async def test_cancel_remove_and_reap_free_the_key(omniq, raw):
    a = await omniq.publish("q", {}, dedup_key="c", now_ms=T0)
    assert await omniq.cancel("q", a, now_ms=T0 + 1) == "cancelled"
    assert not raw.exists(dk("q", "c"))
    b = await omniq.publish("q", {}, dedup_key="r", now_ms=T0)
    await omniq.remove_job("q", b, "wait", now_ms=T0 + 1)
    assert not raw.exists(dk("q", "r"))
    c = await omniq.publish("q", {}, dedup_key="x", max_attempts=1, timeout_ms=50, now_ms=T0)
    assert (await omniq.reserve("q", now_ms=T0 + 1)) is not None
    assert await omniq.reap_expired("q", now_ms=T0 + 100) == 1
    assert raw.hget(jk("q", c), "state") == "failed"
    assert not raw.exists(dk("q", "x"))
    assert stored_stats(raw, "q") == real_stats(raw, "q")


async def test_admin_retry_holds_the_key_again(omniq, raw):
    a = await omniq.publish("q", {}, dedup_key="k", max_attempts=1, now_ms=T0)
    await _finish(omniq, "q", a, T0 + 10, ok=False)
    assert not raw.exists(dk("q", "k"))
    await omniq.retry_failed("q", a, now_ms=T0 + 20)
    assert raw.hgetall(dk("q", "k")) == {"id": a}
    assert await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 30) == a


async def test_admin_retry_leaves_a_key_another_job_holds(omniq, raw):
    a = await omniq.publish("q", {}, dedup_key="k", max_attempts=1, now_ms=T0)
    await _finish(omniq, "q", a, T0 + 10, ok=False)
    b = await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 20)
    await omniq.retry_failed("q", a, now_ms=T0 + 30)  # runs again, but b holds the key
    assert raw.hgetall(dk("q", "k")) == {"id": b}
    assert raw.hget(jk("q", a), "state") == "wait"


async def test_a_stale_key_is_taken_over(omniq, raw):
    """An official worker acks our job without releasing the key: the next publish sees
    that its holder finished and takes the key."""
    a = await omniq.publish("q", {}, dedup_key="k", now_ms=T0)
    raw.hset(jk("q", a), "state", "completed")
    b = await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 1)
    assert b != a
    assert raw.hgetall(dk("q", "k")) == {"id": b}
    raw.delete(jk("q", b))  # a vanished holder is stale too
    c = await omniq.publish("q", {}, dedup_key="k", now_ms=T0 + 2)
    assert c not in (a, b)


async def test_the_holder_keeps_its_own_id_on_republish(omniq, raw):
    a = await omniq.publish("q", {}, job_id="fixed", dedup_key="k", now_ms=T0)
    assert await omniq.publish("q", {}, job_id="fixed", dedup_key="k", now_ms=T0 + 1) == a
    with pytest.raises(DuplicateJobError):  # the id exists and holds no key
        await omniq.publish("q", {}, job_id="fixed", dedup_key="other", now_ms=T0 + 2)
    assert not raw.exists(dk("q", "other"))


async def test_replace_updates_a_waiting_job(omniq, raw):
    a = await omniq.publish("q", {"v": 1}, dedup_key="k", dedup="replace", now_ms=T0)
    assert await omniq.publish("q", {"v": 2}, dedup_key="k", dedup="replace",
                               now_ms=T0 + 5) == a
    assert raw.hget(jk("q", a), "payload") == '{"v":2}'
    assert raw.hget(jk("q", a), "updated_ms") == str(T0 + 5)
    assert raw.llen(qk("q", "wait")) == 1
    job = await omniq.reserve("q", now_ms=T0 + 6)
    assert job is not None
    assert job.payload == {"v": 2}
    # a running job is not changed
    assert await omniq.publish("q", {"v": 3}, dedup_key="k", dedup="replace",
                               now_ms=T0 + 7) == a
    assert raw.hget(jk("q", a), "payload") == '{"v":2}'


async def test_replace_pushes_a_delayed_job_back(omniq, raw):
    a = await omniq.publish("q", {"v": 1}, dedup_key="k", dedup="replace", delay_ms=100,
                            now_ms=T0)
    await omniq.publish("q", {"v": 2}, dedup_key="k", dedup="replace", delay_ms=100,
                        now_ms=T0 + 50)
    assert raw.zscore(qk("q", "delayed"), a) == T0 + 150
    assert raw.hget(jk("q", a), "due_ms") == str(T0 + 150)
    # an earlier due time does not pull it forward
    await omniq.publish("q", {"v": 3}, dedup_key="k", dedup="replace", now_ms=T0 + 60)
    assert raw.zscore(qk("q", "delayed"), a) == T0 + 150
    assert raw.hget(jk("q", a), "payload") == '{"v":3}'
    assert await omniq.promote_delayed("q", now_ms=T0 + 149) == 0
    assert await omniq.promote_delayed("q", now_ms=T0 + 150) == 1


async def test_keep_mode_changes_nothing_of_the_holder(omniq, raw):
    a = await omniq.publish("q", {"v": 1}, dedup_key="k", delay_ms=100, now_ms=T0)
    await omniq.publish("q", {"v": 2}, dedup_key="k", delay_ms=500, now_ms=T0 + 1)
    assert raw.hget(jk("q", a), "payload") == '{"v":1}'
    assert raw.zscore(qk("q", "delayed"), a) == T0 + 100


async def test_publish_many_deduplicates_per_job(omniq, raw):
    old = await omniq.publish("q", {"n": 0}, dedup_key="a", now_ms=T0)
    ids = await omniq.publish_many("q", [
        JobSpec(payload={"n": 1}, dedup_key="a"),   # held by old
        JobSpec(payload={"n": 2}, dedup_key="b"),   # new
        {"n": 3},                                   # no key
        JobSpec(payload={"n": 4}, dedup_key="b"),   # held by the second job of the batch
    ], now_ms=T0 + 1)
    assert ids[0] == old
    assert ids[3] == ids[1]
    assert len({ids[0], ids[1], ids[2]}) == 3
    assert raw.lrange(qk("q", "wait"), 0, -1) == [old, ids[1], ids[2]]
    assert raw.hgetall(dk("q", "b")) == {"id": ids[1]}
    assert stored_stats(raw, "q") == real_stats(raw, "q")


async def test_publish_many_replace_within_one_batch(omniq, raw):
    ids = await omniq.publish_many("q", [
        JobSpec(payload={"n": 1}, dedup_key="k"),
        JobSpec(payload={"n": 2}, dedup_key="k"),
    ], dedup="replace", now_ms=T0)
    assert ids[0] == ids[1]
    assert raw.hget(jk("q", ids[0]), "payload") == '{"n":2}'


async def test_publish_many_without_keys_keeps_the_plain_reply(omniq, raw):
    ids = await omniq.publish_many("q", [{"n": i} for i in range(3)], now_ms=T0)
    assert raw.lrange(qk("q", "wait"), 0, -1) == ids


async def test_concurrent_publishers_make_exactly_one_job(omniq_redis_url, raw):
    clients = [AsyncOmniq(url=omniq_redis_url) for _ in range(8)]
    go = asyncio.Event()

    async def publisher(c: AsyncOmniq) -> list[str]:
        await go.wait()
        return [await c.publish("q", {"i": i}, dedup_key="once") for i in range(5)]

    try:
        for c in clients:  # connect one by one: the race is between the publishes
            assert await c.get_job("q", "warm-up") is None
        tasks = [asyncio.create_task(publisher(c)) for c in clients]
        go.set()
        got = [jid for ids in await within(asyncio.gather(*tasks), 20, "the publishers")
               for jid in ids]
    finally:
        for c in clients:
            await c.aclose()
    assert len(got) == 40
    assert len(set(got)) == 1
    assert raw.llen(qk("q", "wait")) == 1
    assert raw.lrange(qk("q", "wait"), 0, -1) == [got[0]]
    assert len([k for k in raw.scan_iter(match="{q}:job:*")]) == 1


async def test_partitioned_queue_routes_by_dedup_key(omniq, raw):
    assert await omniq.partition_queue("p", 4) is True
    ids = [await omniq.publish("p", {"i": i}, dedup_key="k") for i in range(6)]
    assert len(set(ids)) == 1
    waiting = sum(raw.llen(qk(f"p.p{i}", "wait")) for i in range(4))
    assert waiting == 1
    many = await omniq.publish_many("p", [JobSpec(payload={}, dedup_key="k"),
                                          JobSpec(payload={}, dedup_key="z")])
    assert many[0] == ids[0]
    assert many[1] != ids[0]


async def test_bad_dedup_options_are_typed(omniq, raw):
    for opts in ({"dedup_key": ""}, {"dedup_key": "a\nb"}, {"dedup_key": "x" * 300},
                 {"dedup_ttl_ms": 10}, {"dedup": "replace"},
                 {"dedup_key": "k", "dedup": "merge"},
                 {"dedup_key": "k", "dedup_ttl_ms": -1}):
        with pytest.raises(InvalidArgument):
            await omniq.publish("q", {}, **opts)
    assert dump_db(raw) == {}


def test_sync_dedup(omniq_sync: OmniqClient, raw: redis.Redis):
    a = omniq_sync.publish("q", {}, dedup_key="k", now_ms=T0)
    assert omniq_sync.publish("q", {}, dedup_key="k", now_ms=T0 + 1) == a
    ids = omniq_sync.publish_many("q", [JobSpec(payload={}, dedup_key="k")], now_ms=T0 + 2)
    assert ids == [a]


async def test_publish_many_batch_dedup_options_apply_to_keyed_jobs(omniq, raw):
    ids = await omniq.publish_many("q", [{"n": 0}, JobSpec(payload={"n": 1}, dedup_key="k")],
                                   dedup_ttl_ms=60_000, now_ms=T0)
    assert "dedup_ttl_ms" not in raw.hgetall(jk("q", ids[0]))
    assert raw.hget(jk("q", ids[1]), "dedup_ttl_ms") == "60000"
