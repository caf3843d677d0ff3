"""Leases that end on the other client: one side leases, its lease expires, the other side
reaps it and runs the job; a consumer process killed mid-job is recovered by the other
client's consumer; long multibyte error texts stay readable for both."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import interop_util as interop
import pytest
import redis

from omniq import AsyncOmniq, LeaseLost

pytestmark = pytest.mark.interop


def lease_mix(tag: str) -> list[dict[str, Any]]:
    def job(name: str, n: int, **kw: Any) -> dict[str, Any]:
        return {"job_id": f"{tag}-{name}", "payload": {"n": n}, "backoff_ms": 0,
                "max_attempts": 3, "timeout_ms": 200, "expect": "completed", "runs": 1, **kw}

    return [job("u", 0), job("g1", 1, gid="gl", group_limit=1),
            job("g2", 2, gid="gl", group_limit=1)]


def expired(raw: redis.Redis, queue: str) -> bool:
    """Every lease of the queue has expired on the server clock."""
    last = raw.zrevrange(interop.qk(queue, "active"), 0, 0, withscores=True)
    return bool(last) and last[0][1] <= interop.server_ms(raw)


async def test_official_reaps_omniq_leases(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    queue = "reap-o"
    jobs = lease_mix(queue)
    u, g1, g2 = (j["job_id"] for j in jobs)
    await omniq.publish_many(queue, interop.job_specs(jobs))
    got = await omniq.reserve_many(queue, 3)
    assert sorted(j.job_id for j in got.jobs) == sorted([u, g1])  # g2 waits: limit 1
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["group_status"] == [
        {"gid": "gl", "inflight": 1, "limit": 1, "ready": False, "waiting_count": 1}]

    await interop.poll_until(lambda: expired(raw, queue), 5, "our leases to expire")
    res = await official.arun({"op": "reap", "queue": queue})
    assert res == {"reaped": 2}
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert (mon["stats"]["active"], mon["stats"]["delayed"]) == (0, 2)
    assert mon["group_status"][0]["inflight"] == 0
    assert mon["group_status"][0]["ready"]
    for job in got.jobs:  # our late acks are refused: the lease is lost
        with pytest.raises(LeaseLost):
            await omniq.ack_success(queue, job.job_id, job.lease_token)

    res = await official.arun({"op": "consume", "queue": queue, "ledger": queue})
    assert res["reason"] == "drained"
    assert res["handled"] == 3
    expected = [{**j, "admin_retried": True} if j["job_id"] != g2 else j for j in jobs]
    interop.Ledger(raw, queue).check_jobs(expected, side="official")
    await interop.check_monitors(official, omniq, raw, queue)
    # the official reap could not clear our lease map (id -> gid of our grouped leases);
    # our next maintenance tick sweeps the stale entry
    assert raw.hgetall(interop.qk(queue, "leases")) == {g1: "gl"}
    assert await omniq.reap_expired(queue) == 0
    assert not raw.exists(interop.qk(queue, "leases"))


async def test_omniq_reaps_official_leases(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str
) -> None:
    queue = "reap-a"
    jobs = lease_mix(queue)
    u, g1, g2 = (j["job_id"] for j in jobs)
    await official.arun({"op": "publish", "queue": queue, "jobs": interop.driver_jobs(jobs)})
    leased = await official.arun({"commands": [{"op": "reserve", "queue": queue}] * 3})
    assert [r.get("job_id") for r in leased] == [g1, u, None]  # grouped lane first; g2 waits
    for r in leased[:2]:  # one official heartbeat each (cumulative, D1)
        hb = await official.arun({"op": "heartbeat", "queue": queue, "job_id": r["job_id"],
                                  "lease_token": r["lease_token"]})
        assert hb["lock_until_ms"] >= r["lock_until_ms"]
    await interop.check_monitors(official, omniq, raw, queue)

    await interop.poll_until(lambda: expired(raw, queue), 5, "the official leases to expire")
    assert await omniq.reap_expired(queue) == 2
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert (mon["stats"]["active"], mon["stats"]["delayed"]) == (0, 2)
    assert mon["group_status"][0]["inflight"] == 0
    assert mon["group_status"][0]["ready"]
    assert mon["jobs"][g1]["last_error"].startswith("LeaseExpired: lease expired at ")
    res = await official.arun({"commands": [
        {"op": "ack", "queue": queue, "job_id": r["job_id"], "lease_token": r["lease_token"]}
        for r in leased[:2]
    ] + [{"op": "heartbeat", "queue": queue, "job_id": g1,
          "lease_token": leased[0]["lease_token"]}]})
    assert res == [{"status": "ERR", "error": "ACK_SUCCESS failed: TOKEN_MISMATCH"}] * 2 + \
        [{"status": "ERR", "error": "HEARTBEAT failed: TOKEN_MISMATCH"}]

    handler = interop.LedgerHandler(omniq_redis_url, queue)
    try:
        await interop.consume_until_settled(omniq, queue, handler, raw, [u, g1, g2])
    finally:
        await handler.aclose()
    expected = [{**j, "admin_retried": True} if j["job_id"] != g2 else j for j in jobs]
    interop.Ledger(raw, queue).check_jobs(expected, side="omniq")
    await interop.check_monitors(official, omniq, raw, queue)


@pytest.mark.parametrize("crashed", ["official", "omniq"])
async def test_consumer_killed_mid_job_is_recovered_by_the_other(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str,
    crashed: str,
) -> None:
    """A consumer process is SIGKILLed while its handler runs a grouped job; after the lease
    expires, the other client's consumer reaps it, frees the group slot and runs the job
    and the rest of its group."""
    queue = f"crash-{crashed}"
    jobs = [
        {"job_id": f"{queue}-stuck", "payload": {"n": 0, "hang_ms": 60_000},
         "gid": "gc", "group_limit": 1, "timeout_ms": 600, "backoff_ms": 0, "max_attempts": 3,
         "expect": "completed", "runs": 2, "admin_retried": True},
        {"job_id": f"{queue}-next", "payload": {"n": 1}, "gid": "gc", "group_limit": 1,
         "timeout_ms": 600, "backoff_ms": 0, "max_attempts": 3, "expect": "completed",
         "runs": 1},
    ]
    stuck = jobs[0]["job_id"]
    await omniq.publish_many(queue, interop.job_specs(jobs))
    ledger = interop.Ledger(raw, queue)
    if crashed == "official":
        proc = await official.spawn({"op": "consume", "queue": queue, "ledger": queue,
                                     "max_seconds": 60})
    else:
        proc = await interop.spawn_fleet_worker(omniq_redis_url, queue, queue, total=2,
                                                concurrency=4, max_seconds=60)
    try:
        # the handler's last start write is the group order entry: once it is there, its
        # run, log and inflight writes are too (killing it earlier would leave half of them)
        await interop.poll_until(
            lambda: ledger.runs().get(stuck) == 1
            and raw.lrange(ledger.p + ":order:gc", 0, -1) == ["0"], 10,
            "the stuck job to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.communicate(), 10)
    # the killed handler never ran its `finally`: release its ledger group slot for it
    raw.decr(ledger.p + ":inflight:gc")
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["group_status"][0]["inflight"] == 1
    assert mon["stats"]["group_waiting"] == 1

    await interop.poll_until(lambda: expired(raw, queue), 10, "the dead consumer's lease to expire")
    if crashed == "official":
        handler = interop.LedgerHandler(omniq_redis_url, queue)
        try:
            await interop.consume_until_settled(omniq, queue, handler, raw,
                                                [j["job_id"] for j in jobs])
        finally:
            await handler.aclose()
        side = "omniq"
    else:
        res = await official.arun({"op": "consume", "queue": queue, "ledger": queue})
        assert res["reason"] == "drained"
        assert res["handled"] == 2
        side = "official"
    ledger.check_jobs(jobs, side=None)
    assert ledger.by() == {j["job_id"]: side for j in jobs}
    assert [e["side"] for e in ledger.log()] == [crashed, side, side]
    await interop.check_monitors(official, omniq, raw, queue)
    await omniq.reap_expired(queue)  # sweeps our stale lease entry if an official reap left one
    assert not raw.exists(interop.qk(queue, "leases"))


@pytest.mark.parametrize("consumer", ["official", "omniq"])
async def test_long_multibyte_errors_stay_readable(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str,
    consumer: str,
) -> None:
    """An error text of 6,000 two-byte characters. Our worker cuts it on a character
    boundary (≤ 4096 bytes), so both monitors read it. The official consumer sends it
    whole and its script cuts at byte 4096, inside a character (D8): our get_job still
    decodes it (with a replacement character); the official get_job returns None."""
    queue = f"err-{consumer}"
    text = "x" + "é" * 6000  # "RuntimeError: x" is 15 bytes: byte 4096 is mid-character
    jobs = [{"job_id": f"{queue}-x", "payload": {"n": 0, "fail": 1, "error_text": text},
             "max_attempts": 1, "backoff_ms": 0, "expect": "failed", "runs": 1}]
    jid = jobs[0]["job_id"]
    if consumer == "omniq":
        await official.arun({"op": "publish", "queue": queue, "jobs": interop.driver_jobs(jobs)})
        handler = interop.LedgerHandler(omniq_redis_url, queue)
        try:
            await interop.consume_until_settled(omniq, queue, handler, raw, [jid])
        finally:
            await handler.aclose()
        mon = await interop.check_monitors(official, omniq, raw, queue)
        stored = mon["jobs"][jid]["last_error"]
        assert stored == "RuntimeError: x" + "é" * 2040  # 4095 bytes
        assert len(stored.encode()) <= 4096
    else:
        await omniq.publish_many(queue, interop.job_specs(jobs))
        res = await official.arun({"op": "consume", "queue": queue, "ledger": queue})
        assert res["handled"] == 1
        raw_bytes = raw.execute_command("HGET", interop.qk(queue, "job:" + jid), "last_error",
                                        NEVER_DECODE=True)
        assert len(raw_bytes) == 4096
        info = await omniq.get_job(queue, jid)
        assert info is not None
        assert info.state == "failed"
        assert info.last_error is not None
        assert info.last_error.endswith("\ufffd")
        mon = await official.arun({"op": "monitor", "queue": queue, "job_ids": [jid]})
        assert mon["jobs"][jid] is None  # the official monitor cannot decode it (D8)
        assert mon["stats"]["failed"] == 1
    interop.Ledger(raw, queue).check_jobs(jobs, side=consumer)


async def test_stale_lease_entry_never_moves_a_group_slot(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    """Our lease map (``B:leases``, id -> gid) outlives a lease that an official consumer
    reaped. Regression: that stale entry must not release a group slot when the id is later
    reused by an ungrouped job, and our next reap sweeps it away."""
    queue = "stale"
    await omniq.publish(queue, {"n": 0}, job_id="x", gid="g", group_limit=1, timeout_ms=200)
    await omniq.publish(queue, {"n": 1}, job_id="y", gid="g", group_limit=1)
    first = await omniq.reserve(queue)
    assert first is not None
    assert first.job_id == "x"
    await interop.poll_until(lambda: expired(raw, queue), 5, "our lease to expire")
    assert await official.arun({"op": "reap", "queue": queue}) == {"reaped": 1}
    assert raw.hget(interop.qk(queue, "leases"), "x") == "g"  # the official reap cannot clear it
    res = await official.arun({"op": "remove", "queue": queue, "lane": "delayed",
                               "job_ids": ["x"]})
    assert res["items"][0]["status"] == "OK"

    # the id comes back as an ungrouped job; group g runs y
    await omniq.publish(queue, {"n": 2}, job_id="x")
    got = await omniq.reserve_many(queue, 5)
    assert sorted(j.job_id for j in got.jobs) == ["x", "y"]
    by_id = {j.job_id: j for j in got.jobs}
    await omniq.ack_success(queue, "x", by_id["x"].lease_token)
    # y still holds the only slot of group g
    assert raw.get(interop.qk(queue, "g:g:inflight")) == "1"
    await omniq.publish(queue, {"n": 3}, job_id="z", gid="g")
    assert await omniq.reserve(queue) is None
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["group_status"] == [
        {"gid": "g", "inflight": 1, "limit": 1, "ready": False, "waiting_count": 1}]
    await omniq.ack_success(queue, "y", by_id["y"].lease_token)
    await omniq.reap_expired(queue)  # our maintenance tick sweeps stale entries
    assert not raw.exists(interop.qk(queue, "leases"))
