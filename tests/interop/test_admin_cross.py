"""Admin operations across clients: one side fails or queues jobs, the other retries and
removes them; the monitors agree with the real containers after every step."""

from __future__ import annotations

from typing import Any

import interop_util as interop
import pytest
import redis

from omniq import AsyncOmniq, JobNotFound, LaneMismatch

pytestmark = pytest.mark.interop


def failing_mix(tag: str) -> list[dict[str, Any]]:
    """Jobs that fail on their first run and have one attempt: all end failed."""
    jobs: list[dict[str, Any]] = []
    for i, (name, gid) in enumerate([("f1", None), ("f2", None), ("g1", "gx"), ("g2", "gx"),
                                     ("f3", None), ("f4", None), ("k1", None)]):
        job: dict[str, Any] = {
            "job_id": f"{tag}-{name}", "max_attempts": 1, "backoff_ms": 0,
            "payload": {"n": i, "name": name, "fail": 1},
            "expect": "failed", "runs": 1,
        }
        if gid:
            job["gid"], job["group_limit"] = gid, 1
        jobs.append(job)
    return jobs


def after_admin(jobs: list[dict[str, Any]], retried: set[str]) -> list[dict[str, Any]]:
    """Expected ledger after the retried jobs ran again (and succeeded); the others ran
    once and failed (the removed ones too)."""
    return [
        {**j, "expect": "completed", "runs": 2, "admin_retried": True}
        if j["job_id"] in retried else j
        for j in jobs
    ]


def retried_state(mon: dict[str, Any], jid: str) -> None:
    info = mon["jobs"][jid]
    fields = ("state", "attempt", "failed_ms", "due_ms", "lease_token")
    assert {f: info[f] for f in fields} == {
        "state": "wait", "attempt": 0, "failed_ms": 0, "due_ms": 0, "lease_token": ""}, info
    assert info["last_error"].startswith("RuntimeError: planned failure"), info  # kept


async def test_omniq_retries_and_removes_what_official_failed(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str
) -> None:
    queue, jobs = "adm-o", failing_mix("adm-o")
    ids = [j["job_id"] for j in jobs]
    f1, f2, g1, g2, f3, f4, k1 = ids
    await official.arun({"op": "publish", "queue": queue, "jobs": interop.driver_jobs(jobs)})
    res = await official.arun({"op": "consume", "queue": queue, "ledger": queue, "drain": True})
    assert res["reason"] == "drained"
    assert res["handled"] == len(jobs)
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["failed"] == len(jobs)

    await omniq.retry_failed(queue, f1)
    batch = await omniq.retry_failed_batch(queue, [f2, g1, g2, "adm-o-nope"])
    assert [(b.job_id, b.status, b.reason) for b in batch] == [
        (f2, "OK", None), (g1, "OK", None), (g2, "OK", None),
        ("adm-o-nope", "ERR", "NO_JOB"),
    ]
    with pytest.raises(LaneMismatch):
        await omniq.retry_failed(queue, f1)  # waiting now: NOT_FAILED
    await omniq.remove_job(queue, f3, "failed")
    removed = await omniq.remove_jobs_batch(queue, "failed", [f4, k1, f1])
    assert [(b.job_id, b.status, b.reason) for b in removed] == [
        (f4, "OK", None), (k1, "OK", None), (f1, "ERR", "LANE_MISMATCH"),
    ]
    with pytest.raises(JobNotFound):
        await omniq.remove_job(queue, f3, "failed")

    mon = await interop.check_monitors(official, omniq, raw, queue, [f1, f2, g1, g2, f3, f4, k1])
    st = mon["stats"]
    assert (st["waiting"], st["group_waiting"], st["failed"], st["groups_ready"]) == (2, 2, 0, 1)
    for jid in (f1, f2, g1, g2):
        retried_state(mon, jid)
    assert all(mon["jobs"][j] is None for j in (f3, f4, k1))

    # the official consumer runs the retried jobs to completion
    res = await official.arun({"op": "consume", "queue": queue, "ledger": queue, "drain": True})
    assert res["handled"] == 4
    interop.Ledger(raw, queue).check_jobs(after_admin(jobs, {f1, f2, g1, g2}), side=None)
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["completed_kept"] == 4
    assert mon["stats"]["failed"] == 0


async def test_official_retries_and_removes_what_omniq_failed(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str
) -> None:
    queue, jobs = "adm-a", failing_mix("adm-a")
    ids = [j["job_id"] for j in jobs]
    f1, f2, g1, g2, f3, f4, k1 = ids
    await omniq.publish_many(queue, interop.job_specs(jobs))
    handler = interop.LedgerHandler(omniq_redis_url, queue)
    try:
        await interop.consume_until_settled(omniq, queue, handler, raw, ids)
        mon = await interop.check_monitors(official, omniq, raw, queue)
        assert mon["stats"]["failed"] == len(jobs)

        res = await official.arun({"commands": [
            {"op": "retry_failed", "queue": queue, "job_ids": [f1]},
            {"op": "retry_failed", "queue": queue, "batch": True,
             "job_ids": [f2, g1, g2, "adm-a-nope"]},
            {"op": "retry_failed", "queue": queue, "job_ids": [f1]},
            {"op": "remove", "queue": queue, "lane": "failed", "job_ids": [f3]},
            {"op": "remove", "queue": queue, "lane": "failed", "batch": True,
             "job_ids": [f4, k1, f1]},
            {"op": "remove", "queue": queue, "lane": "failed", "job_ids": [f3]},
        ]})
        assert res[0]["items"] == [{"job_id": f1, "status": "OK", "reason": None}]
        assert res[1]["items"] == [
            {"job_id": f2, "status": "OK", "reason": None},
            {"job_id": g1, "status": "OK", "reason": None},
            {"job_id": g2, "status": "OK", "reason": None},
            {"job_id": "adm-a-nope", "status": "ERR", "reason": "NO_JOB"},
        ]
        assert res[2]["items"][0]["reason"] == "RETRY_FAILED failed: NOT_FAILED"
        assert res[3]["items"] == [{"job_id": f3, "status": "OK", "reason": None}]
        assert res[4]["items"] == [
            {"job_id": f4, "status": "OK", "reason": None},
            {"job_id": k1, "status": "OK", "reason": None},
            {"job_id": f1, "status": "ERR", "reason": "LANE_MISMATCH"},
        ]
        assert res[5]["items"][0]["reason"] == "REMOVE_JOB failed: NO_JOB"

        mon = await interop.check_monitors(official, omniq, raw, queue, ids)
        st = mon["stats"]
        assert (st["waiting"], st["group_waiting"], st["failed"], st["groups_ready"]) == \
            (2, 2, 0, 1)
        for jid in (f1, f2, g1, g2):
            retried_state(mon, jid)
        assert all(mon["jobs"][j] is None for j in (f3, f4, k1))

        # our worker runs what the official client retried
        await interop.consume_until_settled(omniq, queue, handler, raw, [f1, f2, g1, g2])
    finally:
        await handler.aclose()
    interop.Ledger(raw, queue).check_jobs(after_admin(jobs, {f1, f2, g1, g2}), side="omniq")
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["completed_kept"] == 4
    assert mon["stats"]["failed"] == 0


def lanes_mix(tag: str) -> list[dict[str, Any]]:
    """One job per removable lane, plus groups to check groups:ready after gwait removal."""
    def job(name: str, **kw: Any) -> dict[str, Any]:
        return {"job_id": f"{tag}-{name}", "payload": {"name": name}, "backoff_ms": 0, **kw}

    return [
        job("done"),                                   # reserved and completed below
        job("busy"),                                   # reserved and held: active
        job("w1"), job("w2"),
        job("gy1", gid="gy", group_limit=1), job("gy2", gid="gy", group_limit=1),
        job("gz1", gid="gz", group_limit=1),
        job("late", delay_ms=3_600_000),
    ]


async def _remove_everywhere(remover: str, official: interop.Official, omniq: AsyncOmniq,
                             queue: str, tag: str) -> list[tuple[str, str, str | None]]:
    """Remove one job of each lane with the given client; returns (job, status, reason)."""
    plan = [("done", "completed"), ("busy", "wait"), ("w1", "wait"), ("gy1", "wait"),
            ("gy1", "gwait"), ("gz1", "gwait"), ("late", "delayed"), ("w2", "gwait")]
    out: list[tuple[str, str, str | None]] = []
    if remover == "official":
        res = await official.arun({"commands": [
            {"op": "remove", "queue": queue, "lane": lane, "job_ids": [f"{tag}-{name}"]}
            for name, lane in plan
        ]})
        for (name, _lane), r in zip(plan, res, strict=True):
            item = r["items"][0]
            reason = item["reason"]
            if reason is not None:
                reason = reason.removeprefix("REMOVE_JOB failed: ")
            out.append((name, item["status"], reason))
        return out
    for name, lane in plan:
        batch = await omniq.remove_jobs_batch(queue, lane, [f"{tag}-{name}"])
        out.append((name, batch[0].status, batch[0].reason))
    return out


@pytest.mark.parametrize(("publisher", "remover"), [("omniq", "official"),
                                                    ("official", "omniq")])
async def test_remove_from_every_lane_across(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, publisher: str, remover: str
) -> None:
    queue = tag = f"rm-{publisher[0]}{remover[0]}"
    jobs = lanes_mix(tag)
    if publisher == "official":
        await official.arun({"op": "publish", "queue": queue, "jobs": interop.driver_jobs(jobs)})
    else:
        await omniq.publish_many(queue, interop.job_specs(jobs))
    # "done" completes, "busy" stays leased (ungrouped lane first: lane:rr is unset, but the
    # groups are served first only when grouped jobs are reservable; pick by id instead)
    leased = []
    while len(leased) < 5:
        job = await omniq.reserve(queue)
        assert job is not None
        leased.append(job)
    by_name = {j.job_id.removeprefix(tag + "-"): j for j in leased}
    assert {"done", "busy"} <= set(by_name), by_name
    await omniq.ack_success(queue, by_name["done"].job_id, by_name["done"].lease_token)
    for name, job in by_name.items():  # put the other leased jobs back where they were
        if name not in ("done", "busy"):
            await omniq.ack_fail(queue, job.job_id, job.lease_token, "requeue")
    await omniq.promote_delayed(queue)
    await interop.check_monitors(official, omniq, raw, queue)

    results = await _remove_everywhere(remover, official, omniq, queue, tag)
    assert results == [
        ("done", "OK", None),
        ("busy", "ERR", "ACTIVE"),
        ("w1", "OK", None),
        ("gy1", "ERR", "NOT_IN_LANE"),   # a grouped job is removed from "gwait", not "wait"
        ("gy1", "OK", None),
        ("gz1", "OK", None),
        ("late", "OK", None),
        ("w2", "ERR", "LANE_MISMATCH"),  # an ungrouped job is not in "gwait"
    ]
    mon = await interop.check_monitors(official, omniq, raw, queue)
    st = mon["stats"]
    assert (st["waiting"], st["group_waiting"], st["active"], st["delayed"],
            st["completed_kept"]) == (1, 1, 1, 0, 0)
    # gy still has a job and capacity: ready; gz is empty: not ready
    assert [g["gid"] for g in mon["groups_ready"]] == ["gy"]
    assert not raw.exists(interop.qk(queue, "g:gz:wait"))
