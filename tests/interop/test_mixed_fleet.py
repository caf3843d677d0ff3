"""A mixed fleet: one official consumer process and one omniq worker process on the same
queue, 2,000 jobs (ungrouped, groups with limit 1 and 2, some failing once), checked against
an external ledger that both fleets' handlers write."""

from __future__ import annotations

import time
from typing import Any

import interop_util as interop
import pytest
import redis

from omniq import AsyncOmniq

pytestmark = pytest.mark.interop

TOTAL = 2000
GROUPS = 12


def fleet_jobs(tag: str) -> list[dict[str, Any]]:
    """40% ungrouped; the rest over 12 groups, even ones with limit 1, odd ones limit 2;
    every 7th job fails once and succeeds on its retry (backoff 0)."""
    jobs = []
    for n in range(TOTAL):
        fail = int(n % 7 == 3)
        job: dict[str, Any] = {
            "job_id": f"{tag}-{n:04d}",
            "payload": {"n": n, "fail": fail, "work_ms": 1},
            "max_attempts": 3, "backoff_ms": 0, "timeout_ms": 30_000,
            "expect": "completed", "runs": 1 + fail,
        }
        if n % 10 >= 4:
            g = n % GROUPS
            job["gid"], job["group_limit"] = f"g{g}", 1 + g % 2
        jobs.append(job)
    return jobs


async def test_mixed_fleet_every_job_completes_exactly_once(
    official: interop.Official, omniq: AsyncOmniq, raw: redis.Redis, omniq_redis_url: str
) -> None:
    queue = ledger_name = "fleet"
    jobs = fleet_jobs(queue)
    half = TOTAL // 2
    t0 = time.monotonic()
    # published in n order: the official client first, then us (FIFO per group = n order)
    res = await official.arun({"op": "publish", "queue": queue,
                               "jobs": interop.driver_jobs(jobs[:half])}, limit_s=120)
    assert len(res["ids"]) == half
    await omniq.publish_many(queue, interop.job_specs(jobs[half:]))
    stats = await omniq.stats(queue)
    assert stats.waiting_total == TOTAL
    t_publish = time.monotonic() - t0

    theirs = await official.spawn({"op": "consume", "queue": queue, "ledger": ledger_name,
                                   "until_done": TOTAL, "max_seconds": 50})
    ours = await interop.spawn_fleet_worker(omniq_redis_url, queue, ledger_name, TOTAL,
                                            concurrency=8, max_seconds=50)
    ours_res = await interop.finish(ours, 60)
    theirs_res = await interop.finish(theirs, 60)
    elapsed = time.monotonic() - t0
    assert not ours_res["timed_out"], ours_res
    assert not theirs_res["timed_out"], theirs_res
    assert theirs_res["reason"] == "until_done"

    ledger = interop.Ledger(raw, ledger_name)
    ledger.check_jobs(jobs, side=None)      # exactly once, no loss, FIFO, limits
    assert ledger.done() == TOTAL
    by = ledger.by()
    n_official = sum(1 for v in by.values() if v == "official")
    n_ours = sum(1 for v in by.values() if v == "omniq")
    assert n_official + n_ours == TOTAL
    assert min(n_official, n_ours) > 0, (n_official, n_ours)
    assert (ours_res["completed"], ours_res["lost"]) == (n_ours, 0), ours_res
    assert theirs_res["handled"] + ours_res["reserved"] == sum(j["runs"] for j in jobs)
    maxes = ledger.max_inflight()
    for g in range(GROUPS):
        assert maxes[f"g{g}"] <= 1 + g % 2, maxes

    # nothing left behind: only the last 100 completed jobs keep a hash
    for key in ("wait", "active", "delayed", "failed", "groups:ready", "leases"):
        assert not raw.exists(interop.qk(queue, key)), key
    assert raw.llen(interop.qk(queue, "completed")) == 100
    assert sum(1 for _ in raw.scan_iter(match=interop.qk(queue, "job:*"), count=1000)) == 100
    for gid in interop.group_ids(raw, queue):
        assert int(raw.get(interop.qk(queue, f"g:{gid}:inflight")) or 0) == 0, gid
        assert not raw.exists(interop.qk(queue, f"g:{gid}:wait")), gid
    mon = await interop.check_monitors(official, omniq, raw, queue)
    assert mon["stats"]["completed_kept"] == 100
    assert mon["stats"]["active"] == 0
    print(f"\nmixed fleet: published in {t_publish:.1f}s, drained in {elapsed:.1f}s; "
          f"official {n_official} / omniq {n_ours}; max inflight {maxes}")
