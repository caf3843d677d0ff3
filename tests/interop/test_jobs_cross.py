"""Jobs cross between omniq and the official OmniQ client (PyPI omniq 4.0.0), both ways.

Each scenario publishes the same mix (``interop_util.job_mix``): ungrouped jobs, two groups
with group_limit 1, delayed jobs, jobs that fail once and succeed on retry, and jobs that end
failed. Handlers on both sides write the same external ledger, and after every scenario the
official monitor and our stats are compared with the real containers.
"""

from __future__ import annotations

import json
import time
from typing import Any

import interop_util as interop
import pytest
import redis

from omniq import AsyncOmniq

pytestmark = pytest.mark.interop


def test_driver_runs_the_official_package(official: interop.Official, official_python: Any) -> None:
    info = official.run({"op": "version"})
    assert info["version"] == interop.OFFICIAL_VERSION
    assert info["file"].startswith(info["prefix"] + "/")
    assert str(official_python.parent.parent.resolve()) == info["prefix"]
    # only the base interpreter and the official venv are on sys.path: not the driver's
    # directory, not the working directory, not this repository's checkout
    roots = (info["prefix"] + "/", info["base_prefix"] + "/")
    for p in info["sys_path"]:
        assert p.startswith(roots), (p, info)


def check_final_states(raw: redis.Redis, queue: str, jobs: list[dict[str, Any]],
                       mon: dict[str, Any]) -> None:
    """Completed / failed as planned, as stored and as the official monitor shows them."""
    for job in jobs:
        jid = job["job_id"]
        theirs = mon["jobs"][jid]
        assert theirs is not None, jid
        assert theirs["state"] == job["expect"], (jid, theirs)
        assert theirs["attempt"] == job["runs"], (jid, theirs)
        assert (theirs["lease_token"], theirs["lock_until_ms"]) == ("", 0), theirs
        if job["expect"] == "failed":
            assert theirs["last_error"].startswith("RuntimeError: planned failure"), theirs
            assert theirs["failed_ms"] > 0, theirs
            assert theirs["completed_ms"] == 0, theirs
        else:
            assert theirs["completed_ms"] > 0, theirs
            assert theirs["failed_ms"] == 0, theirs
        if job.get("runs", 1) > 1 and job["expect"] == "completed":
            assert theirs["last_error"].startswith("RuntimeError: planned failure"), theirs
    failed = {j["job_id"] for j in jobs if j["expect"] == "failed"}
    assert set(raw.lrange(interop.qk(queue, "failed"), 0, -1)) == failed
    done = {j["job_id"] for j in jobs if j["expect"] == "completed"}
    assert set(raw.lrange(interop.qk(queue, "completed"), 0, -1)) == done
    for key in ("wait", "delayed", "active", "groups:ready", "leases"):
        assert not raw.exists(interop.qk(queue, key)), key
    for gid in ("ga", "gb"):
        assert int(raw.get(interop.qk(queue, f"g:{gid}:inflight")) or 0) == 0
        assert not raw.exists(interop.qk(queue, f"g:{gid}:wait"))


async def test_official_publishes_omniq_consumes(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str
) -> None:
    queue, jobs = "o2a", interop.job_mix("o2a")
    res = await official.arun({"op": "publish", "queue": queue, "jobs": interop.driver_jobs(jobs)})
    assert res["ids"] == [j["job_id"] for j in jobs]
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["delayed"] == 2
    assert mon["stats"]["groups_ready"] == 2

    handler = interop.LedgerHandler(omniq_redis_url, queue)
    try:
        await interop.consume_until_settled(omniq, queue, handler, raw, [j["job_id"] for j in jobs])
    finally:
        await handler.aclose()

    interop.Ledger(raw, queue).check_jobs(jobs, side="omniq")
    mon = await interop.check_monitors(official, omniq, raw, queue)
    check_final_states(raw, queue, jobs, mon)
    # the official publisher's fields as our client reads them
    info = await omniq.get_job(queue, "o2a-u0")
    assert info is not None
    assert info.payload == jobs[0]["payload"]
    assert (info.max_attempts, info.timeout_ms, info.backoff_ms) == (3, 30_000, 0)


async def test_omniq_publishes_official_consume_loop(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    queue, jobs = "a2o", interop.job_mix("a2o")
    ids = await omniq.publish_many(queue, interop.job_specs(jobs))
    assert ids == [j["job_id"] for j in jobs]
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["waiting"] == 5
    assert mon["stats"]["group_waiting"] == 10

    # the official consume loop; its drain flag never ends the loop by itself, so the
    # driver's watcher stops it (SIGTERM, the official graceful stop) once the queue has
    # nothing waiting, delayed or active
    res = await official.arun({"op": "consume", "queue": queue, "ledger": queue, "drain": True,
                               "max_seconds": 30})
    assert res["reason"] == "drained", res
    assert res["handled"] == sum(j["runs"] for j in jobs)

    interop.Ledger(raw, queue).check_jobs(jobs, side="official")
    mon = await interop.check_monitors(official, omniq, raw, queue)
    check_final_states(raw, queue, jobs, mon)


async def test_omniq_publishes_official_reserve_and_ack(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    queue, jobs = "a2o-raw", interop.job_mix("a2o-raw", delay_ms=200)
    await omniq.publish_many(queue, interop.job_specs(jobs))

    # the official low-level calls: reserve, heartbeat, ack_success / ack_fail
    res = await official.arun({"op": "reserve_ack", "queue": queue, "ledger": queue,
                               "promote": True, "max_seconds": 20})
    assert res["status"] == "EMPTY"
    seen = res["jobs"]
    assert len(seen) == sum(j["runs"] for j in jobs)
    by_id = {j["job_id"]: j for j in jobs}
    for item in seen:
        job = by_id[item["job_id"]]
        assert item["max_attempts"] == job["max_attempts"]
        assert item["gid"] == job.get("gid", "")
        assert len(item["lease_token"]) == 40
        # the official heartbeat works on our lease: max(lock, now) + timeout (D1)
        assert item["heartbeat_lock_until_ms"] >= item["lock_until_ms"]
        if item["outcome"] == "RETRY":
            assert item["due_ms"] is not None
        expected = "FAILED" if (job["expect"] == "failed" and item["attempt"] == job["runs"]) \
            else ("RETRY" if item["attempt"] <= job["payload"]["fail"] else "OK")
        assert item["outcome"] == expected, item

    interop.Ledger(raw, queue).check_jobs(jobs, side="official")
    mon = await interop.check_monitors(official, omniq, raw, queue)
    check_final_states(raw, queue, jobs, mon)


async def test_jobs_in_flight_seen_alike_by_both_monitors(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    """Mid-flight states (leases held by each side, a delayed retry, a ready group at
    capacity) are reported identically by the official monitor and by us."""
    queue, jobs = "mid", interop.job_mix("mid", delay_ms=60_000)
    half = len(jobs) // 2
    await official.arun({"op": "publish", "queue": queue, "jobs": interop.driver_jobs(jobs[:half])})
    await omniq.publish_many(queue, interop.job_specs(jobs[half:]))
    await interop.check_monitors(official, omniq, raw, queue)

    ours = await omniq.reserve_many(queue, 3)
    assert ours.status == "JOB"
    assert len(ours.jobs) == 3
    theirs = await official.arun({"op": "reserve", "queue": queue})
    assert theirs["status"] == "JOB"
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["active"] == 4
    # fail one of ours with a retry: it becomes delayed (backoff 0 = due now)
    outcome = await omniq.ack_fail(queue, ours.jobs[0].job_id, ours.jobs[0].lease_token, "boom")
    assert outcome.status == "RETRY"
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["jobs"][ours.jobs[0].job_id]["last_error"] == "boom"
    assert mon["stats"]["delayed"] == 3


async def test_official_ids_outside_our_publish_rules(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str
) -> None:
    """The official clients accept any job id (ours must have 1-256 bytes, no control
    characters, no surrounding blanks) and any gid. Regression: our worker refused to
    heartbeat and ack such a lease (BAD_JOB_ID), which failed the whole fused ack call and
    stopped the worker; it now runs them like any other job."""
    queue = "odd-ids"
    jobs = [
        {"job_id": "x" * 300, "payload": {"n": 0}},
        {"job_id": "tab\there", "payload": {"n": 1}, "gid": "g\x01" + "y" * 300,
         "group_limit": 1},
        {"job_id": " spaced ", "payload": {"n": 2}, "gid": "g\x01" + "y" * 300},
        {"job_id": "new\nline", "payload": {"n": 3, "fail": 1}, "gid": " padded "},
    ]
    for j in jobs:
        j.update(max_attempts=3, backoff_ms=0, timeout_ms=30_000, expect="completed",
                 runs=1 + j["payload"].get("fail", 0))
    await official.arun({"op": "publish", "queue": queue, "jobs": interop.driver_jobs(jobs)})
    jobs[3]["gid"] = "padded"  # the official publish trims gids
    await interop.check_monitors(official, omniq, raw, queue)

    handler = interop.LedgerHandler(omniq_redis_url, queue)
    try:
        await interop.consume_until_settled(omniq, queue, handler, raw, [j["job_id"] for j in jobs])
    finally:
        await handler.aclose()
    interop.Ledger(raw, queue).check_jobs(jobs, side="omniq")
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["completed_kept"] == 4

    # a lease on such a job also works through the single-call client methods
    await official.arun({"op": "publish", "queue": queue,
                         "jobs": [{"job_id": " again ", "payload": {"n": 4}}]})
    job = await omniq.reserve(queue)
    assert job is not None
    assert job.job_id == " again "
    assert await omniq.heartbeat(queue, job.job_id, job.lease_token) > 0
    await omniq.ack_success(queue, job.job_id, job.lease_token)
    assert raw.hget(interop.qk(queue, "job: again "), "state") == "completed"


async def test_payload_shapes_roundtrip(official: interop.Official, omniq: AsyncOmniq) -> None:
    """Objects and arrays, non-ASCII text, big and negative numbers, floats, nesting and
    empty containers arrive unchanged in both directions."""
    payloads: list[Any] = [
        {"s": "héllo ✓ 日本 \U0001f600", "esc": "quote\" back\\ nl\n tab\t", "big": 2**53 + 1,
         "neg": -7, "f": 0.1, "e": 1e-7, "t": True, "n": None, "nest": {"a": [{"b": []}]},
         "empty": {}},
        [1, "two", [3.5, {"four": 4}], []],
        {},
        [],
    ]
    await official.arun({"op": "publish", "queue": "shapes",
                         "jobs": [{"job_id": f"o{i}", "payload": p}
                                  for i, p in enumerate(payloads)]})
    got = (await omniq.reserve_many("shapes", 10)).jobs
    assert {j.job_id: j.payload for j in got} == {f"o{i}": p for i, p in enumerate(payloads)}
    for j in got:
        await omniq.ack_success("shapes", j.job_id, j.lease_token)

    ids = await omniq.publish_many("shapes2", payloads)
    res = await official.arun({"commands": [{"op": "reserve", "queue": "shapes2"}] * 4})
    assert [json.loads(r["payload"]) for r in res] == payloads
    assert [r["job_id"] for r in res] == ids


@pytest.mark.parametrize("first", ["official", "omniq"])
async def test_group_limit_first_writer_wins_across(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, first: str
) -> None:
    """The first publisher that gives a limit fixes it (D20), whichever client it is; the
    other client's reserve honours it."""
    queue = f"limit-{first}"
    jobs = [{"job_id": f"{queue}-{i}", "payload": {"n": i}, "gid": "g", "group_limit": 2}
            for i in range(4)]
    if first == "official":
        await official.arun({"op": "publish", "queue": queue,
                             "jobs": interop.driver_jobs(jobs[:2])})
        await omniq.publish(queue, {"n": 9}, gid="g", group_limit=5)
    else:
        await omniq.publish_many(queue, interop.job_specs(jobs[:2]))
        await official.arun({"op": "publish", "queue": queue, "jobs": [
            {"payload": {"n": 9}, "gid": "g", "group_limit": 5}]})
    assert raw.get(interop.qk(queue, "g:g:limit")) == "2"
    if first == "official":
        got = (await omniq.reserve_many(queue, 10)).jobs
        assert len(got) == 2
    else:
        res = await official.arun({"commands": [{"op": "reserve", "queue": queue}] * 3})
        assert [r["status"] for r in res] == ["JOB", "JOB", "EMPTY"]
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["group_status"] == [
        {"gid": "g", "inflight": 2, "limit": 2, "ready": False, "waiting_count": 1}]


async def test_official_consumers_run_the_jobs_of_our_schedules(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis
) -> None:
    """A queue consumed by the official client: our scheduler publishes, their worker runs
    the jobs like any other (the schedule fields are extra hash fields to them)."""
    from omniq._protocol.schedules import schedule_job_id

    queue = "sched-o2"
    start = int(time.time() * 1000) - 3_500
    await omniq.schedule(queue, "plain", every_ms=1000, start_ms=start, misfire="all",
                         payload={"kind": "plain"})
    await omniq.schedule(queue, "grouped", every_ms=1000, start_ms=start, misfire="all",
                         gid="ga", payload={"kind": "grouped"})
    fired = await omniq.fire_schedules(queue)
    assert fired.published == 2 * 4  # start, +1 s, +2 s, +3 s of each
    ids = {schedule_job_id(queue, name, start + k * 1000)
           for name in ("plain", "grouped") for k in range(4)}
    res = await official.arun({"op": "reserve_ack", "queue": queue, "ledger": queue,
                               "max_seconds": 20})
    assert res["status"] == "EMPTY"
    assert {item["job_id"] for item in res["jobs"]} == ids
    assert all(item["outcome"] == "OK" for item in res["jobs"])
    for jid in ids:
        info = await omniq.get_job(queue, jid)
        assert info is not None
        assert info.state == "completed"
        assert info.schedule in ("plain", "grouped")
        assert info.occurrence_ms is not None
    await interop.check_monitors(official, omniq, raw, queue)
