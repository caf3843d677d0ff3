"""Pause set by one client is honoured by the other; parent/child counters initialised by
one client are acked by the other (directly and from job handlers)."""

from __future__ import annotations

import pytest
import redis
from interop_util import (
    Ledger,
    LedgerHandler,
    Official,
    check_monitors,
    consume_until_settled,
    driver_jobs,
    job_specs,
    qk,
)

from omniq import AsyncOmniq, CounterError

pytestmark = pytest.mark.interop


async def test_omniq_pause_is_honoured_by_official(
    official: Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    queue = "pause-a"
    await omniq.publish(queue, {"n": 1}, job_id="pa-1")
    await omniq.publish(queue, {"n": 2}, job_id="pa-2", gid="g", group_limit=1)
    await omniq.pause(queue)
    res = await official.arun({"commands": [
        {"op": "is_paused", "queue": queue},
        {"op": "reserve", "queue": queue},
        {"op": "reserve_ack", "queue": queue, "ledger": queue},
    ]})
    assert res[0] == {"paused": True}
    assert res[1] == {"status": "PAUSED"}
    assert res[2] == {"jobs": [], "status": "PAUSED"}
    mon = await check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["paused"] is True
    assert mon["stats"]["waiting_total"] == 2

    # the official resume lifts our pause (it replies 1: it was paused)
    res = await official.arun({"commands": [
        {"op": "resume", "queue": queue},
        {"op": "resume", "queue": queue},
        {"op": "reserve", "queue": queue},
    ]})
    assert res[0] == {"reply": 1}
    assert res[1] == {"reply": 0}
    assert res[2]["status"] == "JOB"
    assert res[2]["job_id"] == "pa-2"
    assert not await omniq.is_paused(queue)
    await check_monitors(official, omniq, raw, queue)


async def test_official_pause_is_honoured_by_omniq(
    official: Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str
) -> None:
    queue = "pause-o"
    await official.arun({"op": "publish", "queue": queue, "jobs": [
        {"job_id": "po-1", "payload": {"n": 1}},
        {"job_id": "po-2", "payload": {"n": 2}, "gid": "g", "group_limit": 1},
    ]})
    res = await official.arun({"op": "pause", "queue": queue})
    assert res == {"reply": "OK"}
    assert raw.get(qk(queue, "paused")) == "1"

    assert await omniq.is_paused(queue)
    got = await omniq.reserve_many(queue, 10)
    assert got.status == "PAUSED"
    assert got.jobs == []
    assert await omniq.reserve(queue) is None
    # a draining worker reserves nothing from a paused queue and returns
    handler = LedgerHandler(omniq_redis_url, queue)
    try:
        worker = await omniq.consume(queue, handler, drain=True, handle_signals=False)
        assert worker.stats.reserved == 0
        mon = await check_monitors(official, omniq, raw, queue)
        assert mon["stats"]["paused"] is True
        assert mon["stats"]["waiting_total"] == 2
        assert (await omniq.stats(queue)).paused

        assert await omniq.resume(queue) is True  # it was paused by the official client
        assert await omniq.resume(queue) is False
        res = await official.arun({"op": "is_paused", "queue": queue})
        assert res == {"paused": False}
        worker = await omniq.consume(queue, handler, drain=True, handle_signals=False)
        assert worker.stats.completed == 2
    finally:
        await handler.aclose()
    await check_monitors(official, omniq, raw, queue)


async def test_counters_initialised_by_omniq_acked_by_official(
    official: Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    await omniq.childs_init("parent-a", 3)
    res = await official.arun({"op": "child_ack", "key": "parent-a",
                               "child_ids": ["c1", "c2", "c2", "c3", "c4"]})
    # a repeated child counts once; after the last one the counter is gone, and the
    # official client reports a late ack as -1 (NO_COUNTER, D12)
    assert res["remaining"] == [2, 1, 1, 0, -1]
    assert not raw.exists("{cc:parent-a}:count")
    assert not raw.exists("{cc:parent-a}:done")
    # the official script finished the round, so our "finished" marker was not written:
    # our late ack gets NO_COUNTER as well, reported as -1 like the official client's
    # (child_ack's contract since the architecture review; docs/architecture.md)
    assert await omniq.child_ack("parent-a", "c5") == -1

    # a live counter of ours refuses an official init, and the reverse
    await omniq.childs_init("parent-b", 2)
    res = await official.arun({"op": "childs_init", "key": "parent-b", "expected": 5})
    assert res == {"status": "ERR", "error": "CHILDS_INIT failed: ALREADY_INIT"}
    assert raw.get("{cc:parent-b}:count") == "2"


async def test_counters_initialised_by_official_acked_by_omniq(
    official: Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    res = await official.arun({"op": "childs_init", "key": "parent-o", "expected": 3})
    assert res == {"status": "OK"}
    with pytest.raises(CounterError):
        await omniq.childs_init("parent-o", 3)  # ALREADY_INIT
    assert [await omniq.child_ack("parent-o", c) for c in ("c1", "c2", "c2", "c3")] == \
        [2, 1, 1, 0]
    assert not raw.exists("{cc:parent-o}:count")
    assert not raw.exists("{cc:parent-o}:done")
    # our last ack left the "finished" marker: our late ack answers 0, the official one -1
    assert await omniq.child_ack("parent-o", "c4") == 0
    res = await official.arun({"op": "child_ack", "key": "parent-o", "child_ids": ["c4"]})
    assert res["remaining"] == [-1]
    # a new round can start from either side once the counter is gone
    res = await official.arun({"op": "childs_init", "key": "parent-o", "expected": 1})
    assert res == {"status": "OK"}
    assert await omniq.child_ack("parent-o", "x") == 0


@pytest.mark.parametrize("initialiser", ["omniq", "official"])
async def test_child_jobs_ack_the_other_sides_counter(
    official: Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str,
    initialiser: str,
) -> None:
    """A parent counter set up (and its children published) by one client, the children
    run by the other, each handler acking through ``ctx.exec.child_ack`` (child id = its job
    id); one child fails once and is retried, and still counts once."""
    queue = key = f"kids-{initialiser}"
    jobs = [
        {"job_id": f"{key}-c{i}", "payload": {"n": i, "child_of": key, "fail": int(i == 1)},
         "max_attempts": 3, "backoff_ms": 0, "expect": "completed", "runs": 1 + int(i == 1)}
        for i in range(3)
    ]
    if initialiser == "omniq":
        await omniq.childs_init(key, 3)
        await omniq.publish_many(queue, job_specs(jobs))
        res = await official.arun({"op": "consume", "queue": queue, "ledger": queue})
        assert res["reason"] == "drained"
        side = "official"
    else:
        res = await official.arun({"op": "childs_init", "key": key, "expected": 3})
        assert res == {"status": "OK"}
        await official.arun({"op": "publish", "queue": queue, "jobs": driver_jobs(jobs)})
        handler = LedgerHandler(omniq_redis_url, queue)
        try:
            await consume_until_settled(omniq, queue, handler, raw,
                                        [j["job_id"] for j in jobs], concurrency=1)
        finally:
            await handler.aclose()
        side = "omniq"
    ledger = Ledger(raw, queue)
    ledger.check_jobs(jobs, side=side)
    assert ledger.child_replies(key) == [2, 1, 0]
    assert not raw.exists("{cc:" + key + "}:count")
    await check_monitors(official, omniq, raw, queue)
